"""IntaSend's webhook: authenticate, store, and turn the news into a status check or a state change.

IntaSend disables an endpoint after ~20 failed deliveries, so anything that is not our fault
(unknown payment) answers 200, and the slow part (asking IntaSend to confirm) runs as a job.
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from billing.models import Payment, PaymentEvent, WebhookDelivery
from billing.services import INTASEND_STATE_TO_STATUS, payment_apply_gateway_state
from project import log_context, metrics, safe_json, throttling
from project.errors import ApplicationError

logger = logging.getLogger(__name__)

# How long a queued status check stands for a payment's later hints, at most (see _enqueue_confirmation).
CONFIRMATION_QUEUED_SECONDS = 60

Outcome = WebhookDelivery.Outcome
REDACTED = "[redacted]"


@dataclass(frozen=True)
class WebhookAnswer:
    http_status: int
    body: dict[str, Any]


def _text(value: Any, limit: int) -> str:
    return str(value).strip()[:limit] if value is not None else ""


def _find_payment(api_ref: str, invoice_id: str) -> Payment | None:
    try:
        payment_id = uuid.UUID(api_ref) if api_ref else None
    except ValueError:
        payment_id = None
    payment = Payment.objects.select_related("credential").filter(pk=payment_id).first() if payment_id else None
    if payment is None and invoice_id:
        payment = Payment.objects.select_related("credential").filter(intasend_invoice_id=invoice_id).first()
    return payment


def _challenge_of(payment: Payment) -> str | None:
    if payment.credential is None:
        return None
    try:
        return payment.credential.webhook_challenge()
    except ApplicationError:
        # An unreadable challenge cannot vouch for anything: treat the body as a hint only.
        logger.error("Webhook challenge of credential %s cannot be decrypted", payment.credential_id)
        return None


# `"challenge": "…"`, `challenge=…`, `challenge: …` in a body that did not parse as usable JSON.
_CHALLENGE_VALUE = re.compile(
    r"""(["']?challenge["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^,&;}\]\s]*)""", re.IGNORECASE
)
# A multipart part named challenge: its headers, a blank line, then the value.
_CHALLENGE_PART = re.compile(r"""(name=["']?[^"'\r\n]*challenge[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n)([^\r\n]*)""", re.I)


def _redacted_raw(raw_body: bytes) -> str:
    """A body we could not use, as stored: never with the challenge in clear, whatever its type."""
    # NUL cannot be stored in PostgreSQL text (a raw one made this a 500): shown as U+FFFD, like bad UTF-8.
    text = raw_body[:4096].decode("utf-8", "replace").replace("\x00", "\ufffd")
    text = _CHALLENGE_VALUE.sub(rf"\1{REDACTED}", _CHALLENGE_PART.sub(rf"\1{REDACTED}", text))
    if "=" in text:
        # Form-encoded (or anything shaped like it): the key may be percent-encoded, so judge it decoded.
        pairs = parse_qsl(text, keep_blank_values=True)
        if any("challenge" in key.lower() for key, _ in pairs):
            text = urlencode([(k, REDACTED if "challenge" in k.lower() else v) for k, v in pairs])
    return text


def _keeps_unused_delivery(remote_addr: str | None) -> bool:
    """Whether to store a delivery that changes nothing (invalid, ignored, rejected). The endpoint is
    open to anyone: unbudgeted, such rows filled the database and a payment's admin page (2 MB from
    30 padded posts). A sender's first ones are kept for the support desk, the rest only counted."""
    try:
        return throttling.hit(
            "webhook-unused", remote_addr or "unknown", limit=settings.WEBHOOK_UNUSED_KEPT_PER_HOUR, window_seconds=3600
        )
    except ApplicationError:  # the cache is down: keep it, as before
        return True


@metrics.counts_webhook_outcomes
@log_context.scoped
def webhook_receive(*, raw_body: bytes, remote_addr: str | None) -> WebhookAnswer:
    """Store the delivery and decide what it may change (API.md "Webhook")."""
    try:
        # NaN/Infinity cannot be stored (PostgreSQL refuses them) and deep nesting crashes the parser.
        body = safe_json.loads(raw_body)
    except safe_json.UnsafeJSON:
        body = None
    api_ref = _text(body.get("api_ref"), 128) if isinstance(body, dict) else ""
    invoice_id = _text(body.get("invoice_id"), 64) if isinstance(body, dict) else ""
    if not isinstance(body, dict) or not (api_ref or invoice_id):
        if _keeps_unused_delivery(remote_addr):
            WebhookDelivery.objects.create(
                remote_addr=remote_addr,
                raw_body=_redacted_raw(raw_body),
                outcome=Outcome.INVALID,
                http_status=400,
            )
        return WebhookAnswer(400, {"status": "invalid", "detail": "Expected a JSON invoice with api_ref or invoice_id"})

    state = _text(body.get("state"), 20).upper()
    delivery = WebhookDelivery(
        remote_addr=remote_addr,
        invoice_id=invoice_id,
        api_ref=api_ref,
        state=state,
        body={**body, "challenge": REDACTED} if "challenge" in body else body,
    )
    payment = _find_payment(api_ref, invoice_id)
    if payment is None:
        delivery.outcome, delivery.http_status = Outcome.IGNORED, 200
        if _keeps_unused_delivery(remote_addr):
            delivery.save()
        return WebhookAnswer(200, {"status": "ignored"})

    delivery.payment = payment
    log_context.bind(payment_id=payment.pk)
    expected = _challenge_of(payment)
    if expected is not None:
        given = body.get("challenge")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            logger.warning("Webhook for payment %s rejected: challenge mismatch (from %s)", payment.pk, remote_addr)
            delivery.outcome, delivery.http_status = Outcome.REJECTED, 403
            if _keeps_unused_delivery(remote_addr):
                delivery.save()
            return WebhookAnswer(403, {"status": "rejected"})

    delivery.outcome, delivery.http_status = Outcome.ACCEPTED, 200
    confirm = False
    with transaction.atomic():
        delivery.save()
        target = INTASEND_STATE_TO_STATUS.get(state)
        if expected is not None and target != Payment.Status.COMPLETED:
            # Authenticated, and not a claim of money received: apply it as it stands
            # (an unknown state is recorded and changes nothing).
            payment_apply_gateway_state(
                payment_id=payment.pk,
                source=PaymentEvent.Source.WEBHOOK,
                state=state,
                raw=delivery.body,
                invoice_id=invoice_id or None,
                failed_reason=_text(body.get("failed_reason"), 500) or None,
                api_ref=api_ref or None,
            )
        elif not payment.is_final or (payment.status == Payment.Status.FAILED and target == Payment.Status.COMPLETED):
            # A completion claim (even one for a payment we had given up on), or a body nobody
            # vouched for: IntaSend's status API decides.
            confirm = True
    if confirm and not _enqueue_confirmation(payment, invoice_id):
        # Answering 200 would lose the news for good: IntaSend retries deliveries that fail.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(http_status=503)
        return WebhookAnswer(503, {"status": "unavailable", "detail": "Try again later"})
    return WebhookAnswer(200, {"status": "accepted"})


def _confirmation_queued_key(payment_id: object) -> str:
    return f"billing:confirmation-queued:{payment_id}"


def confirmation_started(payment_id: object) -> None:
    """A payment's status check began: news arriving from now on needs a check of its own."""
    _forget_queued_confirmation(payment_id)


def _forget_queued_confirmation(payment_id: object) -> None:
    try:
        cache.delete(_confirmation_queued_key(payment_id))
    except Exception:  # noqa: BLE001 - the cache is down: the mark lapses by itself
        logger.warning("Could not clear the queued-check mark of payment %s (cache unavailable)", payment_id)


def _enqueue_confirmation(payment: Payment, invoice_id: str) -> bool:
    """Queue the status check (after the delivery is committed); False when the queue is down.

    One check per payment waits in the queue at a time: it reads IntaSend's latest state, so news
    arriving before it starts needs no check of its own. Anyone can post hints for a payment whose
    credential has no webhook challenge, and a flood of them queued one check each, ahead of every
    other operator's confirmations (minutes of delay). The mark lives in the default cache, which
    the web processes and workers share (one process embedded, Redis scaled), and lapses after
    CONFIRMATION_QUEUED_SECONDS should its job be lost."""
    from billing.tasks import confirm_payment_with_gateway

    key = _confirmation_queued_key(payment.pk)
    try:
        if not cache.add(key, True, timeout=CONFIRMATION_QUEUED_SECONDS):
            return True  # the queued check will see this news too
    except Exception:  # noqa: BLE001 - the cache is down: queue the check anyway
        pass
    try:
        confirm_payment_with_gateway(str(payment.pk), invoice_id or None)
    except Exception as exc:  # Redis down, SQLite locked...: whatever the broker raises
        logger.error("Webhook for payment %s: confirmation job not queued (%s)", payment.pk, type(exc).__name__)
        _forget_queued_confirmation(payment.pk)
        return False
    return True
