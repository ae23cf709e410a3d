"""Reads with access rules: someone else's payment or credential looks exactly like a missing one."""

from __future__ import annotations

import hmac
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from billing.models import Payment, PaymentCredential, PaymentProvider
from project.auth import Principal
from project.errors import ApplicationError, ErrorCode


def payments_for(operator: AbstractBaseUser) -> QuerySet[Payment]:
    return Payment.objects.filter(owner=operator)


def _own_payment(operator: AbstractBaseUser, payment_id: object) -> Payment | None:
    try:
        pk = uuid.UUID(str(payment_id))
    except ValueError:
        return None
    return payments_for(operator).select_related("router", "package", "activation").filter(pk=pk).first()


def _payment_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.PAYMENT_NOT_FOUND, "Payment not found or access denied", field="paymentId")


def payment_get_for(*, operator: AbstractBaseUser, payment_id: object) -> Payment:
    payment = _own_payment(operator, payment_id)
    if payment is None:
        raise _payment_not_found()
    return payment


def payment_secret_matches(payment: Payment, client_secret: str | None) -> bool:
    """Constant-time: the secret is the only thing a public-key caller holds over a payment."""
    if not payment.client_secret or not client_secret:
        return False
    return hmac.compare_digest(payment.client_secret.encode(), client_secret.encode())


def payment_find_for_caller(*, principal: Principal, payment_id: object, client_secret: str | None) -> Payment | None:
    """One payment as its caller may see it: operators read their own; a public-key caller also
    needs the payment's client secret (the key is printed in every router's login page, so it
    proves nothing). Absent, wrong and foreign all look like a missing payment."""
    payment = _own_payment(principal.operator, payment_id)
    if payment is None or not (principal.is_operator or payment_secret_matches(payment, client_secret)):
        return None
    return payment


def payment_get_for_caller(*, principal: Principal, payment_id: object, client_secret: str | None) -> Payment:
    payment = payment_find_for_caller(principal=principal, payment_id=payment_id, client_secret=client_secret)
    if payment is None:
        raise _payment_not_found()
    return payment


def credentials_for(operator: AbstractBaseUser) -> QuerySet[PaymentCredential]:
    """The operator's credentials, deleted ones left out: no new payment uses them and the operator no
    longer manages them. Payments reach theirs through ``Payment.credential``, deleted or not."""
    return PaymentCredential.objects.filter(owner=operator, deleted_at__isnull=True)


def credential_newest_active(
    *, operator: AbstractBaseUser, provider: str = PaymentProvider.INTASEND
) -> PaymentCredential:
    credential = (
        credentials_for(operator).filter(provider=provider, is_active=True).order_by("-created_at", "-id").first()
    )
    if credential is None:
        raise ApplicationError(
            ErrorCode.NO_CREDENTIALS,
            "No active IntaSend credentials found. Please add your IntaSend API credentials first.",
        )
    return credential
