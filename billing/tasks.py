"""Background jobs of billing. They only call services; enqueue them after commit."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.api import Task
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task
from huey.exceptions import CancelExecution

from billing import retention, services, webhooks
from billing.gateways.base import GatewayUnavailable
from billing.models import Payment, PaymentEvent
from network.activation import first_attempts_here
from project import log_context

logger = logging.getLogger(__name__)


@db_task(retries=5, retry_delay=2, retry_backoff=2, context=True)  # 2, 4, 8, 16, 32 s while IntaSend is unreachable
@log_context.scoped
def confirm_payment_with_gateway(payment_id: str, invoice_id: str | None, task: Task | None = None) -> None:
    """A webhook said something about this payment: let IntaSend's status API confirm it."""
    log_context.bind(payment_id=payment_id)
    webhooks.confirmation_started(payment_id)
    try:
        with first_attempts_here():  # confirmed paid: this worker puts the customer online at once
            services.payment_confirm_with_gateway(
                payment_id=payment_id, invoice_id=invoice_id, source=PaymentEvent.Source.WEBHOOK
            )
    except GatewayUnavailable as exc:
        # Expected while IntaSend is down or slow: one line, no traceback (Huey would log one).
        retries_left = task.retries if task is not None else 0
        attempt = (task.default_retries - retries_left + 1) if task is not None else 1
        if retries_left:
            logger.warning("IntaSend did not confirm payment %s on attempt %d (%s); retrying", payment_id, attempt, exc)
            raise CancelExecution(retry=True) from exc
        if Payment.objects.filter(pk=payment_id, status=Payment.Status.FAILED).exists():
            # The reconciler never asks about a FAILED payment again: money IntaSend may hold for
            # it would go unnoticed.
            logger.error(
                "IntaSend did not confirm payment %s after attempt %d (%s); the payment is FAILED, a webhook "
                "says it was paid: check it with IntaSend",
                payment_id,
                attempt,
                exc,
            )
        else:
            logger.warning(
                "IntaSend did not confirm payment %s after attempt %d (%s); the reconciler keeps asking",
                payment_id,
                attempt,
                exc,
            )


@db_periodic_task(crontab(minute="*"))
@lock_task("billing.reconcile_payments")
def reconcile_payments() -> int:
    """Ask IntaSend about payments whose webhook never came; give up on them past the cut-off."""
    due = services.payments_due_for_reconciliation()
    for payment_id in due:
        services.payment_reconcile(payment_id=payment_id)
    return len(due)


@db_periodic_task(crontab(hour="2", minute="30"))
@lock_task("billing.erase_personal_data")
def erase_expired_personal_data() -> retention.ErasureCounts:
    """Once a day: erase phones, MACs, IPs and raw bodies older than DATA_RETENTION_DAYS."""
    days = settings.DATA_RETENTION_DAYS
    counts = retention.personal_data_erase_expired(now=timezone.now(), retention_days=days)
    logger.info("Personal data older than %d days erased: %s", days, counts)
    return counts
