"""Manual access grants (grantAccess, and the admin's "Grant the paid package" action): a cash sale,
goodwill, or money that arrived after a payment failed.

A manual grant is an ``Activation`` of source MANUAL made through ``network.activation.activation_grant``,
the same path as payments and vouchers (network puts it on the router, retries, expires and revokes it).
It lives in billing because it may link a payment: ``paymentId`` names one of the operator's payments on
that router, settled and without a grant (``Payment.activation`` is one-to-one: at most one grant per
payment), typically a FAILED payment flagged ``paidAfterFailure``. The link is written through the
payment's one state machine, so it leaves a ``PaymentEvent``.

``idempotencyKey`` makes a double click grant once: the same key with the same input returns the grant
already made; with a different input, IDEMPOTENCY_MISMATCH.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from billing.input_rules import normalise_ip, normalise_phone
from billing.models import Payment, PaymentEvent
from billing.services import _record_change
from network.activation import activation_grant
from network.destinations import has_control_characters
from network.devices import normalise_mac
from network.grants import clean_reason
from network.models import Activation, Package, Router
from network.selectors import router_get_for
from project import audit
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.ids import as_pk
from project.models import AuditEntry

IDEMPOTENCY_KEY_MAX_LENGTH = 128
PAID_AFTER_FAILURE_REASON = "Paid after failure"


@dataclass(frozen=True)
class GrantInput:
    router_id: object
    package_id: object
    reason: str
    phone_number: str | None = None
    mac_address: str | None = None
    ip_address: str | None = None
    payment_id: object = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class _Clean:
    router: Router
    package: Package
    reason: str
    phone_number: str
    mac_address: str
    ip_address: str | None
    payment_id: uuid.UUID | None
    idempotency_key: str | None


def _package(router: Router | None, package_id: object) -> Package:
    """A package of that router (on sale or not: an operator may give any of its packages by hand)."""
    pk = as_pk(package_id)
    package = Package.objects.filter(router=router, pk=pk, deleted_at__isnull=True).first() if pk and router else None
    if package is None:
        raise ApplicationError(ErrorCode.PACKAGE_NOT_FOUND, "Package not found for this router", field="packageId")
    return package


def _payment_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.PAYMENT_NOT_FOUND, "Payment not found or access denied", field="paymentId")


def _payment_pk(raw: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise _payment_not_found() from None


def _idempotency_key(raw: str | None) -> str | None:
    key = (raw or "").strip()
    if not key:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or has_control_characters(key):
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"The idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters without control characters",
            field="idempotencyKey",
        )
    return key


def _clean(operator: AbstractBaseUser, data: GrantInput) -> _Clean:
    """Every field checked, every failure reported at once."""
    checks = FieldChecks()
    router = package = None
    with checks:
        router = router_get_for(operator=operator, router_id=data.router_id)
        if router.deleted_at is not None:
            raise ApplicationError(ErrorCode.ROUTER_NOT_FOUND, "Router not found", field="routerId")
    with checks:
        package = _package(router if router is not None and router.deleted_at is None else None, data.package_id)
    with checks:
        reason = clean_reason(data.reason)
    phone = mac = ""
    ip = None
    with checks:
        phone = normalise_phone(data.phone_number) if (data.phone_number or "").strip() else ""
    with checks:
        mac = normalise_mac(data.mac_address)
    with checks:
        ip = normalise_ip(data.ip_address)
    payment_id = None
    with checks:
        if data.payment_id is not None and str(data.payment_id).strip():
            payment_id = _payment_pk(data.payment_id)
    with checks:
        key = _idempotency_key(data.idempotency_key)
    checks.raise_if_any()
    return _Clean(router, package, reason, phone, mac, ip, payment_id, key)  # type: ignore[arg-type]


def _same_grant(activation: Activation, clean: _Clean) -> bool:
    linked = Payment.objects.filter(activation=activation).values_list("pk", flat=True).first()
    return (
        activation.router_id == clean.router.pk
        and activation.package_id == clean.package.pk
        and activation.reason == clean.reason
        and activation.phone_number == clean.phone_number
        and activation.mac_address == clean.mac_address
        and (activation.ip_address or None) == clean.ip_address
        and linked == clean.payment_id
    )


def _replayed(operator: AbstractBaseUser, clean: _Clean) -> Activation | None:
    """The grant this idempotency key made already, if the input is the same; a different input is refused."""
    if clean.idempotency_key is None:
        return None
    existing = Activation.objects.filter(owner=operator, idempotency_key=clean.idempotency_key).first()
    if existing is None:
        return None
    if not _same_grant(existing, clean):
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_MISMATCH,
            "This idempotency key was used for a different grant",
            field="idempotencyKey",
        )
    return existing


def _payment_to_link(operator: AbstractBaseUser, clean: _Clean) -> Payment | None:
    if clean.payment_id is None:
        return None
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .filter(owner=operator, router=clean.router, pk=clean.payment_id)
        .first()
    )
    if payment is None:
        raise _payment_not_found()
    if payment.activation_id is not None:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "This payment already has an access grant", field="paymentId")
    if not payment.is_final:
        # Its completion would make a grant of its own: one payment, one grant.
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, "This payment is still in progress; wait until it is settled", field="paymentId"
        )
    return payment


def grant_access(
    *, operator: AbstractBaseUser, actor: AbstractBaseUser | None, data: GrantInput, via: str = AuditEntry.Via.API
) -> Activation:
    """Make a manual grant (PENDING; the customer is put online in the background). See the module doc."""
    clean = _clean(operator, data)
    try:
        with transaction.atomic():
            replayed = _replayed(operator, clean)
            if replayed is not None:
                return replayed
            payment = _payment_to_link(operator, clean)
            activation = activation_grant(
                source=Activation.Source.MANUAL,
                owner=operator,
                router=clean.router,
                package=clean.package,
                phone_number=clean.phone_number,
                mac_address=clean.mac_address,
                ip_address=clean.ip_address,
                reference=str(payment.pk) if payment else "",
            )
            activation.reason = clean.reason
            activation.idempotency_key = clean.idempotency_key
            activation.save(update_fields=["reason", "idempotency_key", "updated_at"])
            if payment is not None:
                _record_change(
                    payment,
                    new_status=payment.status,
                    source=PaymentEvent.Source.API if via == AuditEntry.Via.API else PaymentEvent.Source.SYSTEM,
                    note=f"Access granted by hand (activation {activation.pk}): {clean.reason}",
                    updates={"activation": activation},
                )
            changes: dict[str, object] = {
                "router": clean.router.pk,
                "package": clean.package.pk,
                "reason": clean.reason,
            }
            if payment is not None:
                changes["payment"] = payment.pk
            audit.record(operator=operator, actor=actor, action="grantAccess", obj=activation, changes=changes, via=via)
    except IntegrityError:
        # The same key in a concurrent request won the race: answer as its replay (or its mismatch).
        replayed = _replayed(operator, clean)
        if replayed is None:
            raise
        return replayed
    return activation
