"""Vouchers for cash sale: batches of printed codes, their stock, revocation, and the sheet's signed link.

Redeeming a voucher (``redeemCode``) lives with the other codes a customer may type; this module makes
and manages the codes an operator prints.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from billing.models import Voucher, VoucherBatch
from billing.services import checked_text
from network.models import Activation, Package
from project import audit, signed_links
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.ids import as_pk

logger = logging.getLogger(__name__)

# 12 characters of a 32-letter alphabet without 0/O, 1/I/L: 60 bits from `secrets`. Access codes drawn by
# network are 8 characters and M-Pesa receipts 10, so a code's length tells its kind.
VOUCHER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
VOUCHER_CODE_LENGTH = 12
MAX_BATCH_SIZE = 1000
NOTE_MAX_LENGTH = 200
# A concurrent batch on the same router may take a checked code before our insert (the unique
# constraint says so); each retry draws fresh codes. Two collisions in a row would mean a broken RNG.
CODE_ATTEMPTS = 3

SHEET_SALT = "billing.vouchers.sheet"
SHEET_LINK_MAX_AGE_SECONDS = 10 * 60
PAPERS = ("a4", "80mm", "58mm")

Status = Voucher.Status


# --- Creating a batch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherBatchInput:
    package_id: object
    count: object
    note: str | None = None
    valid_until: datetime | None = None


def voucher_batch_create(*, operator: AbstractBaseUser, data: VoucherBatchInput) -> VoucherBatch:
    """A batch of `count` fresh codes for one of the operator's active packages, at its current price.

    Every invalid field is reported at once; nothing is stored unless the whole batch is."""
    with transaction.atomic():
        package, count, note, valid_until = _validated(operator=operator, data=data, lock=True)
        batch = VoucherBatch.objects.create(
            owner=operator,
            router=package.router,
            package=package,
            price=package.price,
            count=count,
            note=note,
            valid_until=valid_until,
        )
        _issue_codes(batch, count)
        audit.record(
            operator=operator,
            actor=operator,
            action="createVoucherBatch",
            obj=batch,
            # The codes are what a customer pays for: the log names the batch, never its codes.
            changes={
                "package": package.pk,
                "price": batch.price,
                "count": count,
                "note": note,
                "validUntil": valid_until,
            },
        )
    return batch


def voucher_batch_validate(*, operator: AbstractBaseUser, data: VoucherBatchInput) -> None:
    """The checks voucher_batch_create makes, without creating anything (the admin's form shows them)."""
    _validated(operator=operator, data=data, lock=False)


def _validated(*, operator: AbstractBaseUser, data: VoucherBatchInput, lock: bool):
    checks = FieldChecks()
    package = count = note = valid_until = None
    with checks:
        package = _active_package(operator, data.package_id, lock=lock)
    with checks:
        count = _count(data.count)
    with checks:
        note = checked_text(data.note, "note", NOTE_MAX_LENGTH)
    with checks:
        valid_until = _valid_until(data.valid_until)
    checks.raise_if_any()
    return package, count, note, valid_until


def _active_package(operator: AbstractBaseUser, package_id: object, *, lock: bool) -> Package:
    pk = as_pk(package_id)
    packages = Package.objects.filter(router__owner=operator, pk=pk, is_active=True).select_related("router")
    if lock:
        # The price read here is the batch's: no concurrent price change slips in between.
        packages = packages.select_for_update(of=("self",))
    package = packages.first() if pk else None
    if package is None:
        # Someone else's package reads exactly like a missing one.
        raise ApplicationError(ErrorCode.PACKAGE_NOT_FOUND, "Package not found or not active", field="packageId")
    return package


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"count must be a whole number from 1 to {MAX_BATCH_SIZE}", field="count"
        )
    return value


def _valid_until(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59:59-23:59 has no UTC form
        instant = None
    if instant is None or instant <= timezone.now():
        raise ApplicationError(ErrorCode.INVALID_INPUT, "validUntil must be in the future", field="validUntil")
    return instant


def _draw_code() -> str:
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_CODE_LENGTH))


def _codes_taken(router_id: int, codes: set[str]) -> set[str]:
    """Which of `codes` the router already knows, as a voucher or as any grant's access code (one query)."""
    # Unordered: SQLite refuses ORDER BY inside a UNION's parts (both models have a default ordering).
    vouchers = Voucher.objects.filter(router_id=router_id, code__in=codes).order_by().values_list("code", flat=True)
    grants = (
        Activation.objects.filter(router_id=router_id, access_code__in=codes)
        .order_by()
        .values_list("access_code", flat=True)
    )
    return set(vouchers.union(grants))


def _fresh_codes(router_id: int, count: int) -> list[str]:
    """`count` distinct codes the router does not know yet, in the order drawn (never sorted: neighbours on a
    sheet must say nothing about each other)."""
    codes: dict[str, None] = {}
    while len(codes) < count:
        drawn = [code for code in dict.fromkeys(_draw_code() for _ in range(count - len(codes))) if code not in codes]
        taken = _codes_taken(router_id, set(drawn))
        codes.update((code, None) for code in drawn if code not in taken)
    return list(codes)


def _issue_codes(batch: VoucherBatch, count: int) -> None:
    for attempt in range(1, CODE_ATTEMPTS + 1):
        codes = _fresh_codes(batch.router_id, count)
        try:
            with transaction.atomic():  # a savepoint: a collision undoes only this insert
                Voucher.objects.bulk_create(Voucher(batch=batch, router_id=batch.router_id, code=c) for c in codes)
            return
        except IntegrityError:
            if attempt == CODE_ATTEMPTS:
                raise
            logger.warning("voucher code collision on router %s; drawing again", batch.router_id)


# --- Revoking ---------------------------------------------------------------------------------------


def voucher_revoke(*, operator: AbstractBaseUser, voucher_id: object) -> Voucher:
    """An unused (or expired) voucher stops redeeming. Revoking it again changes nothing.

    A redeemed voucher is refused: its code is a customer's running grant now, which is ended as a
    grant (revokeAccess), not by pretending the voucher was never sold."""
    pk = as_pk(voucher_id)
    with transaction.atomic():
        # Locked: a redemption of the same voucher waits for us, or we for it.
        voucher = (
            Voucher.objects.select_for_update(of=("self",))
            .select_related("batch")
            .filter(batch__owner=operator, pk=pk)
            .first()
            if pk
            else None
        )
        if voucher is None:
            raise ApplicationError(ErrorCode.VOUCHER_NOT_FOUND, "Voucher not found", field="id")
        if voucher.status == Status.REDEEMED:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                "This voucher was already redeemed: end the customer's access instead",
                field="id",
            )
        if voucher.status == Status.UNUSED:
            voucher.status = Status.REVOKED
            voucher.revoked_at = timezone.now()
            voucher.save(update_fields=["status", "revoked_at"])
            audit.record(
                operator=operator,
                actor=operator,
                action="revokeVoucher",
                obj=voucher,
                changes={"status": [Status.UNUSED, Status.REVOKED]},
            )
    return voucher


# --- Stock ------------------------------------------------------------------------------------------


def with_stock(batches: QuerySet[VoucherBatch], now: datetime | None = None) -> QuerySet[VoucherBatch]:
    """Each batch with how many of its vouchers are unused, redeemed, revoked and expired (one query).

    EXPIRED is never stored: an UNUSED voucher of a batch whose valid_until has passed."""
    now = now or timezone.now()
    unused = Q(vouchers__status=Status.UNUSED)
    lapsed = Q(valid_until__isnull=False, valid_until__lte=now)
    return batches.annotate(
        unused_count=Count("vouchers", filter=unused & ~lapsed),
        redeemed_count=Count("vouchers", filter=Q(vouchers__status=Status.REDEEMED)),
        revoked_count=Count("vouchers", filter=Q(vouchers__status=Status.REVOKED)),
        expired_count=Count("vouchers", filter=unused & lapsed),
    )


def voucher_batches_for(operator: AbstractBaseUser) -> QuerySet[VoucherBatch]:
    """The operator's batches, newest first, with their stock."""
    # Explicit: Meta.ordering does not apply to a GROUP BY query.
    return with_stock(VoucherBatch.objects.filter(owner=operator)).order_by("-created_at", "-id")


def voucher_batch_find_for(*, operator: AbstractBaseUser, batch_id: object) -> QuerySet[VoucherBatch]:
    """The operator's batch with that id (with its stock), as a queryset: empty for unknown, foreign or
    malformed ids alike."""
    pk = as_pk(batch_id)
    return voucher_batches_for(operator).filter(pk=pk) if pk else VoucherBatch.objects.none()


# --- The printable sheet's link ---------------------------------------------------------------------


def sheet_token(batch: VoucherBatch) -> str:
    """A signed, timestamped token naming one batch; its own salt, so no other signed value passes."""
    return signed_links.sign({"batch": batch.pk}, salt=SHEET_SALT)


def sheet_path(batch: VoucherBatch) -> str:
    return reverse("voucher-sheet", args=[sheet_token(batch)])


def sheet_batch_id(token: str) -> int | None:
    """The batch a sheet token names, or None when it is tampered with, malformed or over 10 minutes old."""
    payload = signed_links.unsign(token, salt=SHEET_SALT, max_age=SHEET_LINK_MAX_AGE_SECONDS)
    batch_id = payload.get("batch") if payload is not None else None
    return batch_id if isinstance(batch_id, int) and not isinstance(batch_id, bool) else None


def sheet_vouchers(batch: VoucherBatch, *, include_all: bool, now: datetime | None = None) -> QuerySet[Voucher]:
    """What a sheet prints: the vouchers still for sale, or every one of the batch (?all=1)."""
    vouchers = batch.vouchers.order_by("id")
    if include_all:
        return vouchers
    now = now or timezone.now()
    if batch.valid_until is not None and batch.valid_until <= now:
        return vouchers.none()
    return vouchers.filter(status=Status.UNUSED)


def hotspot_login_url(hotspot_address: str, code: str) -> str:
    """The hotspot's login page with the code in the fragment: a fragment never reaches a server's log."""
    return f"http://{hotspot_address}/login#code={code}"


def grouped(code: str) -> str:
    """ABCDEFGHJKLM → ABCD-EFGH-JKLM, as printed (customers may type it either way)."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
