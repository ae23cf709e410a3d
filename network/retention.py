"""Personal data network holds, kept no longer than needed (Kenya's Data Protection Act 2019).

An access grant keeps the customer's phone number, the device's MAC and IP (for the automatic
login), and ``last_error`` keeps the router's words (a refused device login can quote the device's
IP or MAC). Once the grant is over (FAILED, EXPIRED or REVOKED) and nothing has touched it for the
retention period, those are blanked; source, status, access code, attempts and times stay.
billing.retention runs this next to its own erasure; network never needs billing for it.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from network.models import Activation

# Rows per UPDATE: a year of rows never holds one long lock on a busy table.
ERASE_BATCH_SIZE = 500


def update_in_batches(candidates: QuerySet, **values: object) -> int:
    """``candidates.update(**values)``, ``ERASE_BATCH_SIZE`` rows per statement; returns the rows changed.

    Walks the candidates in primary-key order, so each batch starts where the last ended instead of
    scanning past rows already done. Every UPDATE repeats the candidates' conditions: a row that
    changed since its batch was read (an operator retried an activation) is left alone.
    """
    changed = 0
    last_pk = None
    while True:
        batch = candidates.order_by("pk")
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        ids = list(batch.values_list("pk", flat=True)[:ERASE_BATCH_SIZE])
        if not ids:
            return changed
        changed += candidates.filter(pk__in=ids).update(**values)
        last_pk = ids[-1]


def activations_with_expired_personal_data(*, before: datetime) -> QuerySet[Activation]:
    """Finished activations untouched since ``before`` whose personal data has not been erased yet."""
    return Activation.objects.filter(
        status__in=[Activation.Status.FAILED, Activation.Status.EXPIRED, Activation.Status.REVOKED],
        personal_data_erased_at__isnull=True,
        updated_at__lt=before,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__lt=before))


def activations_erase_personal_data(*, before: datetime, now: datetime, dry_run: bool = False) -> int:
    """Blank the phone, MAC, IP and router error text of activations finished before ``before``;
    returns how many.

    ``dry_run`` only counts them.
    """
    candidates = activations_with_expired_personal_data(before=before)
    if dry_run:
        return candidates.count()
    return update_in_batches(
        candidates,
        last_error="",
        phone_number="",
        mac_address="",
        ip_address=None,
        personal_data_erased_at=now,
        updated_at=now,
    )
