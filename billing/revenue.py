"""The operator's money over a range of days (revenueReport) and the same rows as a CSV behind a signed link.

Days are the operator's (OperatorProfile.time_zone), `from` and `to` inclusive. Three kinds of money, kept
apart: completed payments (by `completed_at`, with IntaSend's charges and net where it reported them),
vouchers redeemed (at their batch's price, on the day of redemption) and money IntaSend confirmed after
the payment had failed (by `paid_after_failure_at`). One SQL statement answers a whole report.
"""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.urls import reverse

from billing.models import DEFAULT_TIME_ZONE, OperatorProfile, Payment, Voucher, VoucherBatch
from network.models import Package, Router
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


# The key each kind of money is grouped by, in the operator's zone (a column, never a caller's text).
_KEYS = {
    GroupBy.DAY: "to_char(money.at AT TIME ZONE (SELECT zone FROM bounds), 'YYYY-MM-DD')",
    GroupBy.MONTH: "to_char(money.at AT TIME ZONE (SELECT zone FROM bounds), 'YYYY-MM')",
    GroupBy.ROUTER: "money.router_id::text",
    GroupBy.PACKAGE: "money.package_id::text",
}
_LABELS = {
    GroupBy.DAY: "keyed.money_key",
    GroupBy.MONTH: "keyed.money_key",
    GroupBy.ROUTER: f"(SELECT name FROM {Router._meta.db_table} WHERE id = keyed.money_key::bigint)",
    GroupBy.PACKAGE: f"(SELECT name FROM {Package._meta.db_table} WHERE id = keyed.money_key::bigint)",
}


def _sql(group_by: GroupBy, one_router: bool) -> str:
    """The whole report in one statement: the operator's zone and day bounds, the router's ownership, three
    kinds of money in one UNION ALL, conditional sums per key. At least one row, even with no money."""
    payment, voucher, batch = Payment._meta.db_table, Voucher._meta.db_table, VoucherBatch._meta.db_table
    profile, router = OperatorProfile._meta.db_table, Router._meta.db_table
    router_filter = "AND {}.router_id = %(router)s" if one_router else ""
    router_ok = (
        f"EXISTS (SELECT 1 FROM {router} WHERE id = %(router)s AND owner_id = %(owner)s)" if one_router else "true"
    )
    in_range = "{0} >= (SELECT start_at FROM bounds) AND {0} < (SELECT end_at FROM bounds)"
    return f"""
WITH zone AS (
    SELECT COALESCE((SELECT time_zone FROM {profile} WHERE user_id = %(owner)s), %(default_zone)s) AS zone
), bounds AS (
    SELECT zone, {router_ok} AS router_ok,
        %(start)s::date::timestamp AT TIME ZONE zone AS start_at,
        (%(end)s::date + 1)::timestamp AT TIME ZONE zone AS end_at
    FROM zone
), money AS (
    SELECT 'P' AS kind, p.completed_at AS at, p.router_id, p.package_id, p.amount, p.charges, p.net_amount
    FROM {payment} p
    WHERE p.owner_id = %(owner)s AND p.status = %(completed)s AND {in_range.format("p.completed_at")}
      {router_filter.format("p")}
    UNION ALL
    SELECT 'V', v.redeemed_at, v.router_id, b.package_id, b.price, NULL, NULL
    FROM {voucher} v JOIN {batch} b ON b.id = v.batch_id
    WHERE b.owner_id = %(owner)s AND {in_range.format("v.redeemed_at")} {router_filter.format("v")}
    UNION ALL
    SELECT 'F', p.paid_after_failure_at, p.router_id, p.package_id, p.amount, NULL, NULL
    FROM {payment} p
    WHERE p.owner_id = %(owner)s AND p.paid_after_failure AND {in_range.format("p.paid_after_failure_at")}
      {router_filter.format("p")}
), keyed AS (
    SELECT {_KEYS[group_by]} AS money_key, money.* FROM money
)
SELECT bounds.router_ok, keyed.money_key, {_LABELS[group_by]},
    COALESCE(SUM(keyed.amount) FILTER (WHERE keyed.kind = 'P'), 0),
    COUNT(*) FILTER (WHERE keyed.kind = 'P'),
    COALESCE(SUM(keyed.charges) FILTER (WHERE keyed.kind = 'P'), 0),
    COALESCE(SUM(COALESCE(keyed.net_amount, keyed.amount)) FILTER (WHERE keyed.kind = 'P'), 0),
    COALESCE(SUM(keyed.amount) FILTER (WHERE keyed.kind = 'V'), 0),
    COALESCE(SUM(keyed.amount) FILTER (WHERE keyed.kind = 'F'), 0)
FROM bounds LEFT JOIN keyed ON true
GROUP BY bounds.router_ok, keyed.money_key
ORDER BY keyed.money_key
"""


def revenue_report(*, operator: AbstractBaseUser, data: ReportInput) -> Report:
    """The report for `data` in one SQL query; every invalid field at once.

    `rows` split the completed payments (`totalAmount`, `count`) by the chosen key, ordered by it; a key with
    only voucher or paid-after-failure money has no row, its money is in those totals."""
    router_pk = as_pk(data.router_id) if data.router_id is not None else None
    if _failures(data) or (data.router_id is not None and not router_pk):
        _checked(operator, data)  # raises with every failure
    params = {
        "owner": operator.pk,
        "default_zone": DEFAULT_TIME_ZONE,
        "completed": Payment.Status.COMPLETED,
        "start": data.start,
        "end": data.end,
        "router": router_pk,
    }
    with connection.cursor() as cursor:
        cursor.execute(_sql(data.group_by, router_pk is not None), params)
        fetched = cursor.fetchall()
    if not fetched[0][0]:
        raise _router_missing()
    rows, totals = [], [ZERO, 0, ZERO, ZERO, ZERO, ZERO]
    for _, key, label, amount, count, charges, net, vouchers, after_failure in fetched:
        for index, value in enumerate((amount, count, charges, net, vouchers, after_failure)):
            totals[index] += value
        if count:
            rows.append(ReportRow(key=key, label=label or key, amount=amount, count=count))
    amount, count, charges, net, vouchers, after_failure = totals
    return Report(
        currency=CURRENCY,
        total_amount=amount,
        count=count,
        charges=charges,
        net=net,
        voucher_amount=vouchers,
        paid_after_failure_amount=after_failure,
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
    operator = get_user_model().objects.filter(pk=request[0], is_active=True).first()
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
