"""revenueReport and revenueReportCsvUrl: the operator's money over days of their time zone, in one query."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import revenue
from billing.models import OperatorProfile, Payment, Voucher, VoucherBatch
from billing.services import _reported_fees

pytestmark = pytest.mark.django_db

REPORT = """query($input: RevenueReportInput!) { revenueReport(input: $input) {
  currency totalAmount count charges net voucherAmount paidAfterFailureAmount rows { key label amount count } } }"""
CSV_URL = "query($input: RevenueReportInput!) { revenueReportCsvUrl(input: $input) }"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def paid(operator, router, package, at: datetime, amount: str = "25.00", **fields) -> Payment:
    payment = operator.add_paid_payment(router, package, **fields)
    Payment.objects.filter(pk=payment.pk).update(completed_at=at, amount=Decimal(amount))
    return payment


def redeemed(operator, package, at: datetime, price: str) -> Voucher:
    batch = VoucherBatch.objects.create(
        owner=operator.user, router=package.router, package=package, price=Decimal(price), count=1
    )
    return Voucher.objects.create(
        batch=batch, router=package.router, code=f"V{batch.pk:011d}", status=Voucher.Status.REDEEMED, redeemed_at=at
    )


@pytest.fixture
def books(operator, other_operator):
    """Alice's March in Nairobi (UTC+3): the day boundary is 21:00 UTC."""
    router = operator.add_router()
    kiosk = operator.add_router(name="Kiosk")
    hour = operator.add_package(router, price="25.00")
    day = operator.add_package(kiosk, name="1 Day", price="100.00", minutes=1440)
    paid(operator, router, hour, utc(2026, 3, 1, 20, 59), charges=Decimal("0.75"), net_amount=Decimal("24.25"))
    paid(operator, router, hour, utc(2026, 3, 1, 21, 0))  # 00:00 on 2 March in Nairobi; no fees reported
    paid(operator, kiosk, day, utc(2026, 3, 31, 20, 0), amount="100.00", charges=Decimal("3.00"), net_amount="97.00")
    paid(operator, kiosk, day, utc(2026, 3, 31, 21, 30), amount="100.00")  # 1 April in Nairobi: out of range
    paid(operator, router, hour, utc(2026, 2, 28, 20, 59))  # 28 February in Nairobi: out of range
    failed = operator.add_paid_payment(router, hour)
    Payment.objects.filter(pk=failed.pk).update(
        status=Payment.Status.FAILED,
        completed_at=None,
        paid_after_failure=True,
        paid_after_failure_at=utc(2026, 3, 10, 8, 0),
    )
    never = operator.add_paid_payment(router, hour)
    Payment.objects.filter(pk=never.pk).update(status=Payment.Status.FAILED, completed_at=utc(2026, 3, 5, 8, 0))
    redeemed(operator, hour, utc(2026, 3, 15, 12, 0), "20.00")
    redeemed(operator, day, utc(2026, 3, 16, 12, 0), "90.00")
    # Bob's money, the same days: never in Alice's report.
    bob_router = other_operator.add_router()
    paid(other_operator, bob_router, other_operator.add_package(bob_router), utc(2026, 3, 2, 10, 0), amount="999.00")
    return {"router": router, "kiosk": kiosk, "hour": hour, "day": day}


def test_a_day_report_counts_each_kind_of_money_apart_on_nairobi_days(operator, books, gql):
    data = gql(REPORT, {"input": {"from": "2026-03-01", "to": "2026-03-31"}}, **operator.auth)["data"]["revenueReport"]
    assert data == {
        "currency": "KES",
        "totalAmount": "150.00",
        "count": 3,
        "charges": "3.75",
        "net": "146.25",  # reported net where IntaSend gave one, else the amount
        "voucherAmount": "110.00",
        "paidAfterFailureAmount": "25.00",
        "rows": [
            {"key": "2026-03-01", "label": "2026-03-01", "amount": "25.00", "count": 1},
            {"key": "2026-03-02", "label": "2026-03-02", "amount": "25.00", "count": 1},
            {"key": "2026-03-31", "label": "2026-03-31", "amount": "100.00", "count": 1},
        ],
    }


def test_the_operators_time_zone_rules_the_days(operator, books, gql):
    OperatorProfile.objects.filter(user=operator.user).update(time_zone="UTC")
    data = gql(REPORT, {"input": {"from": "2026-03-01", "to": "2026-03-01"}}, **operator.auth)["data"]["revenueReport"]
    assert (data["totalAmount"], data["count"]) == ("50.00", 2)  # 20:59 and 21:00 UTC are both 1 March in UTC


def test_grouped_by_month_router_and_package(operator, books, gql):
    def rows(group_by: str, **extra) -> list[dict]:
        variables = {"input": {"from": "2026-02-01", "to": "2026-04-30", "groupBy": group_by, **extra}}
        return gql(REPORT, variables, **operator.auth)["data"]["revenueReport"]["rows"]

    assert rows("MONTH") == [
        {"key": "2026-02", "label": "2026-02", "amount": "25.00", "count": 1},
        {"key": "2026-03", "label": "2026-03", "amount": "150.00", "count": 3},
        {"key": "2026-04", "label": "2026-04", "amount": "100.00", "count": 1},
    ]
    by_router = {row["label"]: (row["key"], row["amount"], row["count"]) for row in rows("ROUTER")}
    assert by_router == {
        "Main Street": (str(books["router"].pk), "75.00", 3),
        "Kiosk": (str(books["kiosk"].pk), "200.00", 2),
    }
    by_package = {row["label"]: (row["amount"], row["count"]) for row in rows("PACKAGE")}
    assert by_package == {"1 Hour": ("75.00", 3), "1 Day": ("200.00", 2)}
    only_kiosk = rows("PACKAGE", routerId=str(books["kiosk"].pk))
    assert [(row["label"], row["amount"]) for row in only_kiosk] == [("1 Day", "200.00")]


def test_totals_match_the_payments_exactly(operator, books):
    router, hour = books["router"], books["hour"]
    for cents in range(1, 100):
        paid(operator, router, hour, utc(2026, 6, 1, 9, 0), amount=f"0.{cents:02d}")
    report = revenue.revenue_report(
        operator=operator.user,
        data=revenue.ReportInput(start=datetime(2026, 6, 1).date(), end=datetime(2026, 6, 1).date()),
    )
    assert report.total_amount == sum((Decimal(f"0.{c:02d}") for c in range(1, 100)), Decimal("0")) == Decimal("49.50")
    assert isinstance(report.total_amount, Decimal) and report.count == 99


@pytest.mark.parametrize("group_by", list(revenue.GroupBy))
@pytest.mark.parametrize("one_router", [False, True])
def test_one_sql_query_per_report(operator, books, group_by, one_router):
    data = revenue.ReportInput(
        start=datetime(2026, 3, 1).date(),
        end=datetime(2026, 3, 31).date(),
        group_by=group_by,
        router_id=books["kiosk"].pk if one_router else None,
    )
    with CaptureQueriesContext(connection) as queries:
        report = revenue.revenue_report(operator=operator.user, data=data)
    assert len(queries) == 1
    assert report.total_amount == (Decimal("100.00") if one_router else Decimal("150.00"))


def test_an_empty_range_is_zero_not_an_error(operator, gql):
    data = gql(REPORT, {"input": {"from": "2020-01-01", "to": "2020-01-02"}}, **operator.auth)["data"]["revenueReport"]
    assert data["totalAmount"] == "0.00" or Decimal(data["totalAmount"]) == 0
    assert (data["count"], data["rows"]) == (0, [])


@pytest.mark.parametrize("query", [REPORT, CSV_URL])
def test_bad_input_reports_every_field_at_once(operator, other_operator, gql, query):
    bobs = other_operator.add_router()
    for dates in ({"from": "2026-03-02", "to": "2026-03-01"}, {"from": "2025-01-01", "to": "2026-01-02"}):
        answer = gql(query, {"input": {**dates, "routerId": str(bobs.pk)}}, **operator.auth)
        assert answer["data"] is None
        (error,) = answer["errors"]
        assert {(e["field"], e["code"]) for e in error["extensions"]["errors"]} == {
            ("to", "INVALID_INPUT"),
            ("routerId", "ROUTER_NOT_FOUND"),
        }
    for router_id in (str(bobs.pk), "999999", "abc", "-1"):
        answer = gql(
            query, {"input": {"from": "2026-01-01", "to": "2026-01-01", "routerId": router_id}}, **operator.auth
        )
        assert answer["errors"][0]["extensions"]["code"] == "ROUTER_NOT_FOUND"
    answer = gql(query, {"input": {"from": "2026-02-30", "to": "2026-03-01"}}, **operator.auth)
    assert answer["errors"] and answer["data"] is None  # not a date: GraphQL refuses it


def test_366_days_is_the_longest_range(operator, gql):
    answer = gql(REPORT, {"input": {"from": "2024-01-01", "to": "2024-12-31"}}, **operator.auth)
    assert answer["data"]["revenueReport"]["count"] == 0


def test_intasend_fees_are_read_from_webhook_and_status_shapes():
    assert _reported_fees({"charges": 0, "net_amount": "20.00"}) == {
        "charges": Decimal("0.00"),
        "net_amount": Decimal("20.00"),
    }
    assert _reported_fees({"invoice": {"charges": "0.75", "net_amount": 24.25}}) == {
        "charges": Decimal("0.75"),
        "net_amount": Decimal("24.25"),
    }
    assert _reported_fees({"charges": None, "net_amount": "NaN"}) == {}
    assert _reported_fees({"charges": "1e30", "net_amount": [1]}) == {}
    assert _reported_fees(None) == {}


# --- The CSV -------------------------------------------------------------------------------------


def _download(client, gql, operator, variables):
    url = gql(CSV_URL, {"input": variables}, **operator.auth)["data"]["revenueReportCsvUrl"]
    return client.get(urlparse(url).path)


def test_the_csv_link_serves_the_same_rows_privately(client, operator, books, gql):
    response = _download(client, gql, operator, {"from": "2026-03-01", "to": "2026-03-31", "groupBy": "ROUTER"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == ["router", "label", "amount (KES)", "count"]
    assert [str(books["router"].pk), "Main Street", "50.00", "2"] in lines
    assert [str(books["kiosk"].pk), "Kiosk", "100.00", "1"] in lines
    assert ["vouchers redeemed", "", "110.00", ""] in lines


def test_csv_cells_that_could_be_formulas_are_neutralised(client, operator, gql):
    for name in ('=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)"):
        router = operator.add_router(name=name[:50])
        paid(operator, router, operator.add_package(router), utc(2026, 5, 1, 9, 0))
    response = _download(client, gql, operator, {"from": "2026-05-01", "to": "2026-05-01", "groupBy": "ROUTER"})
    labels = {line[1] for line in csv.reader(io.StringIO(response.content.decode())) if len(line) > 1}
    for dangerous in ("=", "+", "-", "@", "\t", "\r"):
        assert not any(label.startswith(dangerous) for label in labels)
    assert '\'=HYPERLINK("http://evil")' in labels
    # Names cannot hold control characters, but a cell starting with one is neutralised too.
    assert [revenue._cell(text) for text in ("\tx", "\rx", "x=1")] == ["'\tx", "'\rx", "x=1"]


def test_csv_links_are_signed_narrow_and_short_lived(client, operator, gql, settings):
    url = gql(CSV_URL, {"input": {"from": "2026-03-01", "to": "2026-03-31"}}, **operator.auth)["data"][
        "revenueReportCsvUrl"
    ]
    path = urlparse(url).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert client.get(path.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))).status_code == 404
    # A voucher sheet's token (another salt) does not open a report.
    from project import signed_links

    sheet = signed_links.sign(
        {"operator": operator.user.pk, "from": "2026-03-01", "to": "2026-03-31", "groupBy": "DAY", "router": None},
        salt="billing.vouchers.sheet",
    )
    assert client.get(f"/reports/revenue/{sheet}/").status_code == 404
    from unittest import mock

    later = revenue.CSV_LINK_MAX_AGE_SECONDS + 1
    with mock.patch("django.core.signing.time.time", return_value=__import__("time").time() + later):
        assert client.get(path).status_code == 404
    operator.user.is_active = False
    operator.user.save()
    assert client.get(path).status_code == 404


# --- Where the figures come from -----------------------------------------------------------------


def test_a_completion_keeps_intasends_charges_and_net(operator):
    from billing.models import PaymentEvent
    from billing.services import payment_apply_gateway_state

    router = operator.add_router()
    package = operator.add_package(router)
    payment = operator.add_paid_payment(router, package)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING, completed_at=None)
    raw = {"invoice": {"state": "COMPLETE", "charges": "0.75", "net_amount": "24.25", "value": 25}}
    payment_apply_gateway_state(
        payment_id=payment.pk,
        source=PaymentEvent.Source.POLL,
        state="COMPLETE",
        raw=raw,
        amount=Decimal("25.00"),
        api_ref=str(payment.pk),
    )
    payment.refresh_from_db()
    assert (payment.status, payment.charges, payment.net_amount) == ("COMPLETED", Decimal("0.75"), Decimal("24.25"))


def test_money_after_failure_is_dated_and_counted_apart(operator):
    from billing.models import PaymentEvent
    from billing.services import payment_apply_gateway_state

    router = operator.add_router()
    package = operator.add_package(router)
    payment = operator.add_paid_payment(router, package)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, completed_at=None)
    payment_apply_gateway_state(
        payment_id=payment.pk,
        source=PaymentEvent.Source.WEBHOOK,
        state="COMPLETE",
        raw={"charges": 0, "net_amount": "25.00"},
        amount=Decimal("25.00"),
        api_ref=str(payment.pk),
    )
    payment.refresh_from_db()
    assert payment.paid_after_failure and payment.paid_after_failure_at is not None
    today = payment.paid_after_failure_at.date()
    report = revenue.revenue_report(
        operator=operator.user, data=revenue.ReportInput(start=today - timedelta(days=1), end=today + timedelta(days=1))
    )
    assert (report.paid_after_failure_amount, report.total_amount, report.count) == (Decimal("25.00"), 0, 0)


@pytest.mark.parametrize(("start", "end"), [("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31")])
def test_the_calendars_ends_are_no_500(operator, gql, start, end):
    answer = gql(REPORT, {"input": {"from": start, "to": end}}, **operator.auth)
    assert answer["data"]["revenueReport"]["count"] == 0


def test_a_stored_zone_that_no_longer_loads_falls_back_to_nairobi(operator, books, gql):
    # Checked on save; a row edited by hand must not 500.
    OperatorProfile.objects.filter(user=operator.user).update(time_zone="Nowhere/Land")
    data = gql(REPORT, {"input": {"from": "2026-03-01", "to": "2026-03-31"}}, **operator.auth)["data"]["revenueReport"]
    assert (data["totalAmount"], data["count"]) == ("150.00", 3)


@pytest.mark.parametrize("group_by", list(revenue.GroupBy))
def test_a_zone_off_the_hour_keys_its_own_days(operator, books, group_by):
    """Kathmandu is UTC+5:45: 18:14 UTC on 1 May is 23:59 there, 18:15 is 2 May."""
    OperatorProfile.objects.filter(user=operator.user).update(time_zone="Asia/Kathmandu")
    operator.user.refresh_from_db()
    operator.user.operator.refresh_from_db()
    router, hour = books["router"], books["hour"]
    paid(operator, router, hour, utc(2026, 5, 1, 18, 14), amount="1.00")
    paid(operator, router, hour, utc(2026, 5, 1, 18, 15), amount="2.00")
    paid(operator, router, hour, utc(2026, 5, 2, 18, 15), amount="4.00")  # 3 May there: out of range
    paid(operator, router, hour, utc(2026, 4, 30, 18, 14), amount="8.00")  # 30 April there: out of range
    report = revenue.revenue_report(
        operator=operator.user,
        data=revenue.ReportInput(start=datetime(2026, 5, 1).date(), end=datetime(2026, 5, 2).date(), group_by=group_by),
    )
    assert (report.total_amount, report.count) == (Decimal("3.00"), 2)
    if group_by is revenue.GroupBy.DAY:
        assert [(row.key, row.amount) for row in report.rows] == [
            ("2026-05-01", Decimal("1.00")),
            ("2026-05-02", Decimal("2.00")),
        ]
