"""News the network side gives about access grants, for whoever listens (billing tells the payment's
subscribers). Network never calls anyone's code directly: the listener owns what it does with it."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from network.models import Activation

# Sent (sender: the Activation model) after the transaction that changed an activation commits (at
# once outside one), with ``activation_id`` and ``owner_id`` (the operator). A hint, like the live
# updates it feeds: receivers re-read what they need. A receiver that raises is logged (by Django's
# send_robust) and neither undoes the change nor keeps the other receivers from hearing it.
activation_changed = Signal()


def activation_changed_after_commit(*, activation_id: int, owner_id: int) -> None:
    """Queue ``activation_changed`` for after the current transaction commits."""

    def send() -> None:
        activation_changed.send_robust(sender=Activation, activation_id=activation_id, owner_id=owner_id)

    transaction.on_commit(send, robust=True)
