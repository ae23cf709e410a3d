"""Background jobs of billing. They only call services; enqueue them after commit."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from billing import services
from billing.models import PaymentEvent


@db_task(retries=5, retry_delay=2, retry_backoff=2)  # 2, 4, 8, 16, 32 s while IntaSend is unreachable
def confirm_payment_with_gateway(payment_id: str, invoice_id: str | None) -> None:
    """A webhook said something about this payment: let IntaSend's status API confirm it."""
    services.payment_confirm_with_gateway(
        payment_id=payment_id, invoice_id=invoice_id, source=PaymentEvent.Source.WEBHOOK
    )


@db_periodic_task(crontab(minute="*"))
@lock_task("billing.reconcile_payments")
def reconcile_payments() -> int:
    """Ask IntaSend about payments whose webhook never came; give up on them past the cut-off."""
    due = services.payments_due_for_reconciliation()
    for payment_id in due:
        services.payment_reconcile(payment_id=payment_id)
    return len(due)
