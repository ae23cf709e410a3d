"""Personal data kept no longer than needed (Kenya's Data Protection Act 2019): ``DATA_RETENTION_DAYS``.

Once a payment is settled (COMPLETED or FAILED) and nothing has touched it for the retention period,
what identifies the customer goes: the phone number, the device's MAC and IP, the caller's IP, the
request fingerprint (a hash of those, reversible by trying every phone number), the raw gateway
answers in its events and the bodies and sender addresses of its webhooks. What the books need
stays: amount, currency, status, M-Pesa receipt, IntaSend invoice, failure reason, the events' states
and every timestamp. A payment whose activation is still PENDING or ACTIVE keeps everything: the
customer is online on it.

Rows are blanked, never deleted, and stamped ``personal_data_erased_at``: the job is idempotent and
the erasure is on record. Bodies that arrive after a payment was erased (a late webhook) are kept
for their own retention period, counted from their arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from billing.models import Payment, PaymentEvent, WebhookDelivery
from network import retention as network_retention
from network.models import Activation

# What an erased body reads as, in the admin and in a database dump.
REDACTED_BODY = {"redacted": "retention"}


@dataclass(frozen=True)
class ErasureCounts:
    """Rows whose personal data was erased (or, in a dry run, would be)."""

    payments: int
    payment_events: int
    webhook_deliveries: int
    activations: int

    def __str__(self) -> str:
        return (
            f"{self.payments} payments, {self.payment_events} payment events, "
            f"{self.webhook_deliveries} webhook deliveries, {self.activations} activations"
        )


def payments_with_expired_personal_data(*, before: datetime) -> QuerySet[Payment]:
    """Settled payments untouched since ``before``, not erased yet, with no activation still running."""
    return (
        Payment.objects.filter(
            status__in=sorted(Payment.FINAL_STATUSES),
            personal_data_erased_at__isnull=True,
            updated_at__lt=before,
        )
        .filter(Q(completed_at__isnull=True) | Q(completed_at__lt=before))
        .filter(Q(package_expiry_time__isnull=True) | Q(package_expiry_time__lt=before))
        .exclude(activation__status__in=[Activation.Status.PENDING, Activation.Status.ACTIVE])
    )


def _of_erased_payments(expiring: QuerySet[Payment]) -> Q:
    # `expiring` only matters in a dry run: a real run erases those payments before their bodies.
    return Q(payment__personal_data_erased_at__isnull=False) | Q(payment__in=expiring)


def payment_events_with_expired_bodies(*, before: datetime, expiring: QuerySet[Payment]) -> QuerySet[PaymentEvent]:
    return (
        PaymentEvent.objects.filter(created_at__lt=before, raw_payload__isnull=False)
        .filter(_of_erased_payments(expiring))
        .exclude(raw_payload=REDACTED_BODY)
    )


def webhook_deliveries_with_expired_bodies(
    *, before: datetime, expiring: QuerySet[Payment]
) -> QuerySet[WebhookDelivery]:
    """Deliveries received before ``before``: unmatched ones by age alone, the others once their payment is erased."""
    return WebhookDelivery.objects.filter(received_at__lt=before, personal_data_erased_at__isnull=True).filter(
        Q(payment__isnull=True) | _of_erased_payments(expiring)
    )


def personal_data_erase_expired(*, now: datetime, retention_days: int, dry_run: bool = False) -> ErasureCounts:
    """Erase the personal data older than ``retention_days`` before ``now``, in short batched UPDATEs.

    ``dry_run`` counts what would be erased and changes nothing.
    """
    if retention_days < 1:
        raise ValueError(f"DATA_RETENTION_DAYS must be at least 1, not {retention_days}")
    before = now - timedelta(days=retention_days)
    expiring = payments_with_expired_personal_data(before=before)
    events = payment_events_with_expired_bodies(before=before, expiring=expiring)
    deliveries = webhook_deliveries_with_expired_bodies(before=before, expiring=expiring)
    activations = network_retention.activations_erase_personal_data(before=before, now=now, dry_run=dry_run)
    if dry_run:
        return ErasureCounts(
            payments=expiring.count(),
            payment_events=events.count(),
            webhook_deliveries=deliveries.count(),
            activations=activations,
        )
    # updated_at moves too: the API documents it as the last change of any field.
    payments = network_retention.update_in_batches(
        expiring,
        phone_number="",
        mac_address="",
        ip_address=None,
        client_ip=None,
        request_fingerprint="",
        personal_data_erased_at=now,
        updated_at=now,
    )
    return ErasureCounts(
        payments=payments,
        payment_events=network_retention.update_in_batches(events, raw_payload=REDACTED_BODY),
        webhook_deliveries=network_retention.update_in_batches(
            deliveries, body=REDACTED_BODY, raw_body="", remote_addr=None, personal_data_erased_at=now
        ),
        activations=activations,
    )
