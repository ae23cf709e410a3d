"""The IntaSend simulator inside the app: one ledger per process, and what the phone and checkout
pages do to it (settle an invoice, then deliver IntaSend's webhook).

Accounts are open: any ``ISPubKey_…``/``ISSecretKey_…`` pair works (each public key is its own
account), so an operator's stored credential works as soon as it is added, and the seeded demo
credential (``ISPubKey_test_demo``) is nothing special.

Webhooks go the way IntaSend sends them: a real HTTP POST of the flat invoice body, to the
checkout's ``callback_url``, else ``INTASEND_CALLBACK_URL``, else this server's own
``/payments/webhook/``. They are posted from a background thread so that the page's request never
waits on a request to its own server (a single-threaded dev server would deadlock), and failed
deliveries are retried a few times. The ``challenge`` is the one IntaSend would know: the webhook
challenge of the credential the invoice's payment was made with (its operator's, never that of
another operator who stored the same public key) — SANDBOX credentials only, so a simulator
switched on by mistake can never vouch for news about a LIVE account.

One process, one ledger: in the scaled-out setup (several servers behind a balancer) the
simulator's invoices live in whichever process created them. It is a development tool.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing.simulator.api import IntaSendAPI
from billing.simulator.ledger import IntaSendLedger, Invoice, webhook_json
from billing.simulator.webhooks import WebhookDelivery, WebhookSender
from project.errors import ApplicationError

logger = logging.getLogger(__name__)

# What IntaSend reported for a cancelled prompt in 2025 payloads (code "-1"; the ledger's default).
DECLINED_REASON = "Request cancelled by user"
WEBHOOK_RETRIES = 3


@dataclass(frozen=True)
class IntaSendSimulator:
    ledger: IntaSendLedger
    api: IntaSendAPI
    webhooks: WebhookSender


_lock = threading.Lock()
_simulator: IntaSendSimulator | None = None


def intasend() -> IntaSendSimulator:
    """The process-wide simulator (created on first use)."""
    global _simulator
    with _lock:
        if _simulator is None:
            ledger = IntaSendLedger(open_accounts=True, max_requests=1000)
            _simulator = IntaSendSimulator(
                ledger=ledger, api=IntaSendAPI(ledger), webhooks=WebhookSender(max_deliveries=500)
            )
        return _simulator


def reset() -> None:
    """Forget every invoice, checkout, request and delivery (tests)."""
    simulator = intasend()
    simulator.ledger.reset()
    simulator.webhooks.clear()


def invoice_challenge(invoice: Invoice) -> str | None:
    """The webhook challenge IntaSend would hold for this invoice: that of the credential its
    payment (``api_ref`` = our payment id) was made with, when that credential has the invoice's
    public key and is SANDBOX. Never another operator's, even one who stored the same public key."""
    from billing.models import Payment, PaymentCredential, PaymentProvider

    try:
        payment_id = uuid.UUID(invoice.api_ref or "")
    except ValueError:
        return None
    payment = Payment.objects.select_related("credential").filter(pk=payment_id).first()
    credential = payment.credential if payment is not None else None
    if (
        credential is None
        or credential.api_key != invoice.public_key
        or credential.provider != PaymentProvider.INTASEND
        or credential.environment != PaymentCredential.Environment.SANDBOX
    ):
        return None
    try:
        return credential.webhook_challenge()
    except ApplicationError:
        logger.warning("IntaSend simulator: the challenge of credential %s cannot be decrypted", credential.pk)
        return None


def default_webhook_url(request) -> str:
    """Where IntaSend's dashboard would send webhooks: INTASEND_CALLBACK_URL, else this server."""
    return settings.INTASEND_CALLBACK_URL or request.build_absolute_uri(reverse("intasend-webhook"))


def deliver_webhook(invoice: Invoice, *, default_url: str) -> None:
    """POST the webhook for this state of the invoice, in the background."""
    url = default_url
    if invoice.checkout_id:
        url = intasend().ledger.checkout(invoice.checkout_id).callback_url or default_url
    body = webhook_json(invoice, invoice_challenge(invoice))
    intasend().webhooks.post_in_background(url, body, retries=WEBHOOK_RETRIES)


def prompt_approve(invoice_id: str, *, webhook_url: str) -> Invoice:
    """The customer enters their PIN: the invoice COMPLETEs with an M-Pesa receipt.
    Raises KeyError (unknown invoice) or ValueError (already settled)."""
    invoice = intasend().ledger.settle(invoice_id, "COMPLETE")
    deliver_webhook(invoice, default_url=webhook_url)
    return invoice


def prompt_decline(invoice_id: str, *, webhook_url: str) -> Invoice:
    """The customer cancels the prompt: the invoice FAILs the way M-Pesa reports it."""
    invoice = intasend().ledger.settle(invoice_id, "FAILED", failed_reason=DECLINED_REASON)
    deliver_webhook(invoice, default_url=webhook_url)
    return invoice


def checkout_pay(checkout_id: str, *, phone_number: str | None, webhook_url: str) -> Invoice:
    """The customer pays on the checkout page (M-Pesa); raises KeyError/ValueError like the above."""
    invoice = intasend().ledger.pay_checkout(checkout_id, "COMPLETE", account=phone_number or None)
    deliver_webhook(invoice, default_url=webhook_url)
    return invoice


def checkout_cancel(checkout_id: str, *, webhook_url: str) -> Invoice:
    invoice = intasend().ledger.pay_checkout(checkout_id, "FAILED", failed_reason=DECLINED_REASON)
    deliver_webhook(invoice, default_url=webhook_url)
    return invoice


@dataclass(frozen=True)
class PromptView:
    """An STK push as the phone page shows it."""

    invoice: Invoice
    age_seconds: int
    created_epoch: int
    delivery: WebhookDelivery | None  # the latest webhook sent for it


def prompts(*, pending: bool, limit: int = 50) -> list[PromptView]:
    simulator = intasend()
    latest: dict[str, WebhookDelivery] = {}
    for delivery in simulator.webhooks.deliveries:
        latest[delivery.invoice_id] = delivery
    now = timezone.now()
    views = []
    for invoice in simulator.ledger.stk_prompts(pending=pending)[:limit]:
        created = datetime.fromisoformat(invoice.created_at)
        views.append(
            PromptView(
                invoice=invoice,
                age_seconds=max(0, int((now - created).total_seconds())),
                created_epoch=int(created.timestamp()),
                delivery=latest.get(invoice.invoice_id),
            )
        )
    return views
