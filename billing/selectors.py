"""Reads with access rules: someone else's payment or credential looks exactly like a missing one."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from billing.models import Payment, PaymentCredential, PaymentProvider
from project.errors import ApplicationError, ErrorCode


def payments_for(operator: AbstractBaseUser) -> QuerySet[Payment]:
    return Payment.objects.filter(owner=operator)


def payment_get_for(*, operator: AbstractBaseUser, payment_id: object) -> Payment:
    try:
        pk = uuid.UUID(str(payment_id))
    except ValueError:
        pk = None
    payment = payments_for(operator).filter(pk=pk).first() if pk else None
    if payment is None:
        raise ApplicationError(ErrorCode.PAYMENT_NOT_FOUND, "Payment not found or access denied", field="paymentId")
    return payment


def credentials_for(operator: AbstractBaseUser) -> QuerySet[PaymentCredential]:
    return PaymentCredential.objects.filter(owner=operator)


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
