"""Putting a paid customer online: the activation record a completed payment starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from network.models import Activation

if TYPE_CHECKING:
    from billing.models import Payment


def activation_start(payment: Payment) -> Activation:
    """Called once, inside the transaction that completes the payment."""
    activation, _ = Activation.objects.get_or_create(
        payment=payment, defaults={"expires_at": payment.package_expiry_time}
    )
    return activation
