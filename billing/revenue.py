"""The operator's money over a range of days (revenueReport) and the same rows as a CSV behind a signed link.

Days are the operator's (OperatorProfile.time_zone), `from` and `to` inclusive. Three kinds of money, kept
apart: completed payments (by `completed_at`, with IntaSend's charges and net where it reported them),
vouchers redeemed (at their batch's price, on the day of redemption) and money IntaSend confirmed after
the payment had failed (by `paid_after_failure_at`). One SQL statement answers a whole report: the ORM's
UNION ALL of one grouped query per kind (and, for one router, a row proving the operator owns it), with the
day bounds computed here from the operator's zone and days/months cut by TruncDay/TruncMonth in that zone, so
the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    F,
    IntegerField,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDay, TruncMonth
from django.urls import reverse

from billing.models import OperatorProfile, Payment, Voucher
from network.models import Router
from project import signed_links
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.ids import as_pk

MAX_DAYS = 366  # a leap year: enough for a yearly report, small enough to answer quickly
CURRENCY = "KES"
ZERO = Decimal("0.00")
CSV_SALT = "billing.revenue.csv"
CSV_LINK_MAX_AGE_SECONDS = 10 * 60


class GroupBy(enum.Enum):
    DAY = "DAY"
    MONTH = "MONTH"
    ROUTER = "ROUTER"
    PACKAGE = "PACKAGE"


@dataclass(frozen=True)
class ReportInput:
    start: date
    end: date
    group_by: GroupBy = GroupBy.DAY
    router_id: object | None = None


@dataclass(frozen=True)
class ReportRow:
    key: str
    label: str
    amount: Decimal
    count: int


@dataclass(frozen=True)
class Report:
    currency: str
    total_amount: Decimal
    count: int
    charges: Decimal
    net: Decimal
    voucher_amount: Decimal
    paid_after_failure_amount: Decimal
    rows: list[ReportRow]


def _failures(data: ReportInput) -> list[ApplicationError]:
    if data.end < data.start:
        return [ApplicationError(ErrorCode.INVALID_INPUT, "to must not be before from", field="to")]
    if (data.end - data.start).days + 1 > MAX_DAYS:
        return [ApplicationError(ErrorCode.INVALID_INPUT, f"A report covers at most {MAX_DAYS} days", field="to")]
    return []


def _router_missing() -> ApplicationError:
    return ApplicationError(ErrorCode.ROUTER_NOT_FOUND, "Router not found", field="routerId")


def _checked(operator: AbstractBaseUser, data: ReportInput) -> int | None:
    """Every invalid field at once (the router's ownership costs a query: the report's own query checks it)."""
    checks = FieldChecks()
    checks.failures.extend(_failures(data))
    router_pk = as_pk(data.router_id) if data.router_id is not None else None
    if data.router_id is not None and (not router_pk or not _owns_router(operator, router_pk)):
        checks.failures.append(_router_missing())
    checks.raise_if_any()
    return router_pk


def _owns_router(operator: AbstractBaseUser, router_pk: int) -> bool:
    # Deleted routers included: their history stays readable.
    return Router.objects.filter(owner=operator, pk=router_pk).exists()


def _zone(operator: AbstractBaseUser) -> ZoneInfo:
    """The operator's zone. The profile comes with the signed-in user (project.auth selects it), so reading it
    costs no query there; a zone that no longer loads (a row edited by hand) falls back to Nairobi, never a 500."""
    try:
        profile = operator.operator
    except ObjectDoesNotExist:
        profile = None
    return OperatorProfile.zone_of(profile)


def _local_midnight_utc(day: date, zone: ZoneInfo, *, clamp: datetime) -> datetime:
    """The instant `day` starts in `zone`, in UTC; past the calendar's ends (0001-01-01 east of Greenwich,
    9999-12-31 + 1) the nearest representable instant, `clamp`."""
    try:
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return clamp


def _bounds(data: ReportInput, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `from`, start of the day after `to`) in the operator's zone, as UTC instants."""
    low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    start = _local_midnight_utc(data.start, zone, clamp=low if data.start.year == 1 else high)
    try:
        after = data.end + timedelta(days=1)
    except OverflowError:
        return start, high
    return start, _local_midnight_utc(after, zone, clamp=low if after.year == 1 else high)


_MONEY = DecimalField(max_digits=14, decimal_places=2)
_NO_MONEY = Value(ZERO, output_field=_MONEY)
_NO_LABEL = Value("", output_field=CharField())
# The union's columns (named apart from the models' own fields: Payment has `kind` and `amount`).
_COLUMNS = ("money_kind", "money_key", "money_label", "money_amount", "money_count", "money_charges", "money_net")


def _key(group_by: GroupBy, at: str, router: str, package: str, zone: ZoneInfo):
    """The key each kind of money is grouped by (a column, never a caller's text) and its label column."""
    if group_by is GroupBy.DAY:
        return TruncDay(at, tzinfo=zone), _NO_LABEL
    if group_by is GroupBy.MONTH:
        return TruncMonth(at, tzinfo=zone), _NO_LABEL
    if group_by is GroupBy.ROUTER:
        return F(f"{router}_id"), F(f"{router}__name")
    return F(f"{package}_id"), F(f"{package}__name")


def _part(queryset: QuerySet, kind: str, at: str, group_by, zone, *, router: str, package: str, amount: str, **sums):
    """One kind of money grouped by key: kind, key, label, amount, count, charges, net (the union's columns,
    in this order in every part; no ORDER BY, which SQLite refuses inside a compound statement)."""
    key, label = _key(group_by, at, router, package, zone)
    return (
        queryset.annotate(money_kind=Value(kind, output_field=CharField()), money_key=key, money_label=label)
        .values("money_kind", "money_key", "money_label")
        .annotate(
            money_amount=Coalesce(Sum(amount, output_field=_MONEY), _NO_MONEY),
            money_count=Count("pk"),
            money_charges=sums.get("charges", _NO_MONEY),
            money_net=sums.get("net", _NO_MONEY),
        )
        .order_by()
    )


def _query(operator: AbstractBaseUser, data: ReportInput, router_pk: int | None, zone: ZoneInfo) -> QuerySet:
    """The whole report as one UNION ALL: completed payments, redeemed vouchers and money paid after a failure,
    each grouped by key, plus a row saying whether the operator owns the router asked about."""
    start, end = _bounds(data, zone)
    group_by = data.group_by
    one_router = {"router_id": router_pk} if router_pk is not None else {}
    payments = Payment.objects.filter(owner=operator, **one_router)
    completed = _part(
        payments.filter(status=Payment.Status.COMPLETED, completed_at__gte=start, completed_at__lt=end),
        "P",
        "completed_at",
        group_by,
        zone,
        router="router",
        package="package",
        amount="amount",
        charges=Coalesce(Sum("charges", output_field=_MONEY), _NO_MONEY),
        net=Coalesce(Sum(Coalesce("net_amount", "amount"), output_field=_MONEY), _NO_MONEY),
    )
    vouchers = _part(
        Voucher.objects.filter(batch__owner=operator, redeemed_at__gte=start, redeemed_at__lt=end, **one_router),
        "V",
        "redeemed_at",
        group_by,
        zone,
        router="router",
        package="batch__package",
        amount="batch__price",
    )
    after_failure = _part(
        payments.filter(paid_after_failure=True, paid_after_failure_at__gte=start, paid_after_failure_at__lt=end),
        "F",
        "paid_after_failure_at",
        group_by,
        zone,
        router="router",
        package="package",
        amount="amount",
    )
    parts = [vouchers, after_failure]
    if router_pk is not None:
        # Deleted routers included: their history stays readable.
        key_type = DateTimeField() if group_by in (GroupBy.DAY, GroupBy.MONTH) else BigIntegerField()
        parts.append(
            Router.objects.filter(owner=operator, pk=router_pk)
            .annotate(
                money_kind=Value("R", output_field=CharField()),
                money_key=Value(None, output_field=key_type),
                money_label=_NO_LABEL,
                money_amount=_NO_MONEY,
                money_count=Value(0, output_field=IntegerField()),
                money_charges=_NO_MONEY,
                money_net=_NO_MONEY,
            )
            .values(*_COLUMNS)
            .order_by()
        )
    return completed.union(*parts, all=True)


def _money(value: object) -> Decimal:
    """A sum as cents. SQLite keeps decimals as floating point and Django returns its sums unrounded (25, or
    49.5000000000000 for 0.01 + … + 0.99): to the cent they are exact far beyond any operator's takings."""
    return Decimal(str(value or 0)).quantize(ZERO)


def _key_text(group_by: GroupBy, key: object, zone: ZoneInfo) -> str:
    if group_by in (GroupBy.DAY, GroupBy.MONTH):
        if isinstance(key, datetime) and key.tzinfo is not None:
            key = key.astimezone(zone)
        return key.strftime("%Y-%m-%d" if group_by is GroupBy.DAY else "%Y-%m")
    return str(key)


def revenue_report(*, operator: AbstractBaseUser, data: ReportInput) -> Report:
    """The report for `data` in one SQL query; every invalid field at once.

    `rows` split the completed payments (`totalAmount`, `count`) by the chosen key, ordered by it; a key with
    only voucher or paid-after-failure money has no row, its money is in those totals."""
    router_pk = as_pk(data.router_id) if data.router_id is not None else None
    if _failures(data) or (data.router_id is not None and not router_pk):
        _checked(operator, data)  # raises with every failure
    zone = _zone(operator)
    totals = {"P": ZERO, "V": ZERO, "F": ZERO}
    count, charges, net, router_ok, rows = 0, ZERO, ZERO, router_pk is None, []
    for fetched in _query(operator, data, router_pk, zone):
        kind = fetched["money_kind"]
        if kind == "R":
            router_ok = True
            continue
        amount = _money(fetched["money_amount"])
        totals[kind] += amount
        if kind == "P":
            count += fetched["money_count"]
            charges += _money(fetched["money_charges"])
            net += _money(fetched["money_net"])
            key = _key_text(data.group_by, fetched["money_key"], zone)
            rows.append(
                ReportRow(key=key, label=fetched["money_label"] or key, amount=amount, count=fetched["money_count"])
            )
    if not router_ok:
        raise _router_missing()
    rows.sort(key=lambda row: row.key)  # as text, as the report always ordered its keys
    return Report(
        currency=CURRENCY,
        total_amount=totals["P"],
        count=count,
        charges=charges,
        net=net,
        voucher_amount=totals["V"],
        paid_after_failure_amount=totals["F"],
        rows=rows,
    )


# --- The CSV ------------------------------------------------------------------------------------


def csv_token(*, operator: AbstractBaseUser, data: ReportInput) -> str:
    """A signed token for one report of `operator` (checked first: a link to an error is no use)."""
    router_pk = _checked(operator, data)
    return signed_links.sign(
        {
            "operator": operator.pk,
            "from": data.start.isoformat(),
            "to": data.end.isoformat(),
            "groupBy": data.group_by.value,
            "router": router_pk,
        },
        salt=CSV_SALT,
    )


def csv_path(*, operator: AbstractBaseUser, data: ReportInput) -> str:
    return reverse("revenue-csv", args=[csv_token(operator=operator, data=data)])


def csv_for_token(token: str) -> tuple[str, str] | None:
    """(file name, CSV text) of the report a link names; None when the link is bad or its operator gone."""
    request = csv_request(token)
    if request is None:
        return None
    operator = get_user_model().objects.select_related("operator").filter(pk=request[0], is_active=True).first()
    if operator is None:
        return None
    data = request[1]
    try:
        report = revenue_report(operator=operator, data=data)
    except ApplicationError:  # e.g. the router was given away since: as bad as a forged link
        return None
    return f"revenue-{data.start}-{data.end}-{data.group_by.value.lower()}.csv", report_csv(report, data.group_by)


def csv_request(token: str) -> tuple[int, ReportInput] | None:
    """The operator and report a token names; None when forged, altered or older than 10 minutes."""
    payload = signed_links.unsign(token, salt=CSV_SALT, max_age=CSV_LINK_MAX_AGE_SECONDS)
    if payload is None:
        return None
    try:
        return payload["operator"], ReportInput(
            start=date.fromisoformat(payload["from"]),
            end=date.fromisoformat(payload["to"]),
            group_by=GroupBy(payload["groupBy"]),
            router_id=payload["router"],
        )
    except (KeyError, TypeError, ValueError):
        return None


# A spreadsheet runs a cell that starts like a formula; a leading quote makes it text (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def report_csv(report: Report, group_by: GroupBy) -> str:
    """The report's rows, then its totals, as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([group_by.value.lower(), "label", f"amount ({report.currency})", "count"])
    for row in report.rows:
        writer.writerow([_cell(row.key), _cell(row.label), _cell(row.amount), _cell(row.count)])
    writer.writerow([])
    for name, value in (
        ("total amount", report.total_amount),
        ("payments", report.count),
        ("IntaSend charges", report.charges),
        ("net", report.net),
        ("vouchers redeemed", report.voucher_amount),
        ("paid after failure", report.paid_after_failure_amount),
    ):
        writer.writerow([name, "", _cell(value), ""])
    return out.getvalue()
