"""Access grants made directly in tests, as billing makes them when a payment completes."""

from __future__ import annotations

from typing import Any

from billing.models import Payment
from network.models import Activation


def grant_for(payment: Payment, **fields: Any) -> Activation:
    """An activation for ``payment`` (its owner, router, package and customer's device), linked to it;
    ``fields`` set the rest (status, access code, ...). No job is enqueued."""
    values: dict[str, Any] = {
        "source": Activation.Source.PAYMENT,
        "owner_id": payment.owner_id,
        "router_id": payment.router_id,
        "package_id": payment.package_id,
        "reference": str(payment.pk),
        "phone_number": payment.phone_number,
        "mac_address": payment.mac_address,
        "ip_address": payment.ip_address,
        "expires_at": payment.package_expiry_time,
        "renews_id": payment.renews_id,
    }
    if payment.completed_at is not None:
        values["granted_at"] = payment.completed_at
    values.update(fields)
    activation = Activation.objects.create(**values)
    Payment.objects.filter(pk=payment.pk).update(activation=activation)
    payment.activation = activation
    return activation
