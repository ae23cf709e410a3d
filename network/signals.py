"""News the network side gives about access grants, for whoever listens (billing tells the payment's
subscribers). Network never calls anyone's code directly: the listener owns what it does with it."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from network.models import Activation

# Sent (sender: the Activation model) after the transaction that changed an activation commits (at
# once outside one), with ``activation_id``, ``owner_id`` (the operator) and what the grant was made
# from, ``source`` and ``reference`` (a paid grant's is its payment's id). A hint, like the live
# updates it feeds: receivers re-read what they need. A receiver that raises is logged (by Django's
# send_robust) and neither undoes the change nor keeps the other receivers from hearing it.
activation_changed = Signal()


def activation_changed_after_commit(activation: Activation) -> None:
    """Queue ``activation_changed`` about ``activation`` for after the current transaction commits."""
    news = {
        "activation_id": activation.pk,
        "owner_id": activation.owner_id,
        "source": activation.source,
        "reference": activation.reference,
    }

    def send() -> None:
        activation_changed.send_robust(sender=Activation, **news)

    transaction.on_commit(send, robust=True)
