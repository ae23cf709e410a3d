"""Issue 11, item 2: vouchers for cash sale (createVoucherBatch, voucherBatches, voucherBatch, revokeVoucher)
and the printable sheet behind its signed, 10-minute printUrl."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import vouchers
from billing.models import OperatorProfile, Voucher, VoucherBatch
from network.models import Activation, Package, Router

pytestmark = pytest.mark.django_db

CREATE = """mutation($input: CreateVoucherBatchInput!) { createVoucherBatch(input: $input) {
  batch { id price count note validUntil printUrl package { id name }
          unusedCount redeemedCount revokedCount expiredCount vouchers { id code status redeemedAt activation { id } } }
  errors { field code message } } }"""
BATCHES = """{ voucherBatches { id count unusedCount redeemedCount revokedCount expiredCount
  vouchers { id code status redeemedAt activation { id accessCode } } package { name } } }"""
BATCH = """query($id: ID!) { voucherBatch(id: $id) { id price unusedCount vouchers { code status } } }"""
REVOKE = """mutation($id: ID!) { revokeVoucher(id: $id) { voucher { id status } errors { field code message } } }"""

CODE = re.compile(r"^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{12}$")


@pytest.fixture
def stall(operator):
    """Alice's router (with a hotspot address) and a 50-shilling day package."""
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(hotspot_address="hotspot.example.net")
    router.refresh_from_db()
    package = operator.add_package(router, price="50.00", minutes=24 * 60, name="1 Day")
    return type("Stall", (), {"router": router, "package": package, "operator": operator})


def create(gql, operator, **fields) -> dict:
    return gql(CREATE, {"input": fields}, **operator.auth)["data"]["createVoucherBatch"]


def make_batch(stall, count: int = 3, **fields) -> VoucherBatch:
    return vouchers.voucher_batch_create(
        operator=stall.operator.user,
        data=vouchers.VoucherBatchInput(package_id=stall.package.pk, count=count, **fields),
    )


# --- createVoucherBatch -------------------------------------------------------------------------------


def test_create_batch(gql, stall):
    until = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    result = create(gql, stall.operator, packageId=str(stall.package.pk), count=5, note="  For the kiosk ",
                    validUntil=until.isoformat())  # fmt: skip
    assert result["errors"] == []
    batch = result["batch"]
    assert batch["price"] == "50.00" and batch["count"] == 5 and batch["note"] == "For the kiosk"
    assert batch["package"] == {"id": str(stall.package.pk), "name": "1 Day"}
    assert batch["validUntil"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S"))
    assert (batch["unusedCount"], batch["redeemedCount"], batch["revokedCount"], batch["expiredCount"]) == (5, 0, 0, 0)
    codes = [v["code"] for v in batch["vouchers"]]
    assert len(set(codes)) == 5 and all(CODE.match(code) for code in codes)
    assert {(v["status"], v["redeemedAt"], v["activation"]) for v in batch["vouchers"]} == {("UNUSED", None, None)}
    url = urlsplit(batch["printUrl"])
    assert (url.scheme, url.netloc) == ("http", "testserver") and url.path.startswith("/vouchers/sheet/")
    stored = VoucherBatch.objects.get(pk=batch["id"])
    assert stored.owner == stall.operator.user and stored.router == stall.router
    assert set(Voucher.objects.filter(batch=stored).values_list("router", flat=True)) == {stall.router.pk}


def test_every_invalid_field_is_reported_at_once_and_nothing_is_made(gql, stall):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    result = create(gql, stall.operator, packageId="nope", count=0, note="a\x07b", validUntil=past)
    assert result["batch"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("packageId", "PACKAGE_NOT_FOUND"),
        ("count", "INVALID_INPUT"),
        ("note", "INVALID_INPUT"),
        ("validUntil", "INVALID_INPUT"),
    ]
    assert not VoucherBatch.objects.exists() and not Voucher.objects.exists()


@pytest.mark.parametrize("count", [0, -1, 1001, 2**31 - 1])
def test_count_out_of_range(gql, stall, count):
    result = create(gql, stall.operator, packageId=str(stall.package.pk), count=count)
    assert result["errors"] == [
        {"field": "count", "code": "INVALID_INPUT", "message": "count must be a whole number from 1 to 1000"}
    ]


def test_count_beyond_a_graphql_int_is_a_request_error(gql, stall):
    body = gql(CREATE, {"input": {"packageId": str(stall.package.pk), "count": 2**40}}, **stall.operator.auth)
    assert body["data"] is None and body["errors"]
    assert not VoucherBatch.objects.exists()


@pytest.mark.parametrize("note", ["x" * 201, "line\nbreak", "\x1b[31mred", "tab\there", "\u0085"])
def test_bad_note(gql, stall, note):
    result = create(gql, stall.operator, packageId=str(stall.package.pk), count=1, note=note)
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("note", "INVALID_INPUT")]


@pytest.mark.parametrize(
    "valid_until", ["2020-01-01T00:00:00+00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]
)
def test_valid_until_in_the_past_or_off_the_calendar(gql, stall, valid_until):
    result = create(gql, stall.operator, packageId=str(stall.package.pk), count=1, validUntil=valid_until)
    assert result["errors"] == [
        {"field": "validUntil", "code": "INVALID_INPUT", "message": "validUntil must be in the future"}
    ]


def test_foreign_and_inactive_packages_look_missing(gql, stall, other_operator):
    bobs = other_operator.add_package(other_operator.add_router("Bob's Cafe"))
    inactive = stall.operator.add_package(stall.router, name="Old", active=False)
    answers = [
        create(gql, stall.operator, packageId=package_id, count=1)["errors"]
        for package_id in (str(bobs.pk), str(inactive.pk), "999999", "-3", "1e3", "99999999999999999999999")
    ]
    expected = [{"field": "packageId", "code": "PACKAGE_NOT_FOUND", "message": "Package not found or not active"}]
    assert answers == [expected] * 6
    assert not VoucherBatch.objects.exists()


def test_portal_key_and_strangers_are_refused(gql, stall):
    for credentials in ({"public_key": stall.operator.public_key}, {}):
        body = gql(CREATE, {"input": {"packageId": str(stall.package.pk), "count": 1}}, **credentials)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        body = gql(BATCHES, **credentials)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not VoucherBatch.objects.exists()


def test_price_is_frozen_when_the_package_price_changes(gql, stall):
    batch = make_batch(stall)
    Package.objects.filter(pk=stall.package.pk).update(price=Decimal("80.00"))
    body = gql(BATCH, {"id": str(batch.pk)}, **stall.operator.auth)["data"]["voucherBatch"]
    assert body["price"] == "50.00"
    assert make_batch(stall).price == Decimal("80.00")


# --- codes ------------------------------------------------------------------------------------------


def test_codes_are_unique_on_the_router_across_vouchers_and_access_codes(stall):
    first = make_batch(stall, count=1)
    taken_voucher = first.vouchers.get().code
    Activation.objects.create(
        owner=stall.operator.user, router=stall.router, package=stall.package, access_code="GRANTCODE234",
        source=Activation.Source.MANUAL,
    )  # fmt: skip
    # The draw repeats itself, hits a voucher's code and a grant's code, then runs fresh.
    draws = iter([taken_voucher, "GRANTCODE234", "AAAABBBBCCCC", "AAAABBBBCCCC", "DDDDEEEEFFFF", "GGGGHHHHJJJJ"])
    with mock.patch.object(vouchers, "_draw_code", lambda: next(draws)):
        batch = make_batch(stall, count=3)
    assert list(batch.vouchers.values_list("code", flat=True)) == ["AAAABBBBCCCC", "DDDDEEEEFFFF", "GGGGHHHHJJJJ"]


def test_a_code_taken_between_the_check_and_the_insert_is_drawn_again(stall):
    """Another batch on the same router may insert a code after our check: the constraint catches it."""
    taken = make_batch(stall, count=1).vouchers.get().code
    draws = iter([taken, "KKKKMMMMNNNN"])
    real_check, checks = vouchers._codes_taken, []

    def blind_once(router_id, codes):
        checks.append(set(codes))
        return set() if len(checks) == 1 else real_check(router_id, codes)  # the race: missed once

    with (
        mock.patch.object(vouchers, "_draw_code", lambda: next(draws)),
        mock.patch.object(vouchers, "_codes_taken", blind_once),
    ):
        batch = make_batch(stall, count=1)
    assert checks == [{taken}, {"KKKKMMMMNNNN"}]
    assert batch.vouchers.get().code == "KKKKMMMMNNNN"
    assert Voucher.objects.filter(code=taken).count() == 1


def test_the_same_code_may_exist_on_another_router(stall):
    other = stall.operator.add_router("Annex", host="10.0.0.2")
    other_package = stall.operator.add_package(other)
    draws = iter(["PPPPQQQQRRRR", "PPPPQQQQRRRR"])
    with mock.patch.object(vouchers, "_draw_code", lambda: next(draws)):
        make_batch(stall, count=1)
        vouchers.voucher_batch_create(
            operator=stall.operator.user, data=vouchers.VoucherBatchInput(package_id=other_package.pk, count=1)
        )
    assert Voucher.objects.filter(code="PPPPQQQQRRRR").count() == 2


def test_a_full_batch_of_a_thousand(stall):
    batch = make_batch(stall, count=1000)
    codes = list(batch.vouchers.order_by("id").values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 1000 and all(CODE.match(code) for code in codes)
    # In the order drawn: a sheet's neighbouring codes must not narrow each other down (as sorted ones would).
    assert codes != sorted(codes)


# --- revokeVoucher ----------------------------------------------------------------------------------


def revoke(gql, operator, voucher_id) -> dict:
    return gql(REVOKE, {"id": str(voucher_id)}, **operator.auth)["data"]["revokeVoucher"]


def test_revoke_an_unused_voucher_and_again(gql, stall):
    voucher = make_batch(stall, count=1).vouchers.get()
    assert revoke(gql, stall.operator, voucher.pk) == {"voucher": {"id": str(voucher.pk), "status": "REVOKED"},
                                                       "errors": []}  # fmt: skip
    voucher.refresh_from_db()
    revoked_at = voucher.revoked_at
    assert voucher.status == Voucher.Status.REVOKED and revoked_at is not None
    # Again (a retried request): the same answer, nothing changes.
    assert revoke(gql, stall.operator, voucher.pk)["errors"] == []
    voucher.refresh_from_db()
    assert voucher.revoked_at == revoked_at


def test_a_redeemed_voucher_is_not_revoked(gql, stall):
    voucher = make_batch(stall, count=1).vouchers.get()
    Voucher.objects.filter(pk=voucher.pk).update(status=Voucher.Status.REDEEMED, redeemed_at=timezone.now())
    result = revoke(gql, stall.operator, voucher.pk)
    assert result == {
        "voucher": None,
        "errors": [
            {
                "field": "id",
                "code": "INVALID_INPUT",
                "message": "This voucher was already redeemed: end the customer's access instead",
            }
        ],
    }
    assert Voucher.objects.get(pk=voucher.pk).status == Voucher.Status.REDEEMED


def test_revoking_someone_elses_or_nonsense_reads_as_missing(gql, stall, other_operator):
    voucher = make_batch(stall, count=1).vouchers.get()
    for voucher_id in (voucher.pk + 1000, "abc", "-1", "0", "99999999999999999999999", "1; DROP TABLE x"):
        assert revoke(gql, stall.operator, voucher_id)["errors"] == [
            {"field": "id", "code": "VOUCHER_NOT_FOUND", "message": "Voucher not found"}
        ]
    # Bob, signed in, cannot revoke Alice's voucher either, and learns nothing more.
    assert revoke(gql, other_operator, voucher.pk)["errors"][0]["code"] == "VOUCHER_NOT_FOUND"
    assert Voucher.objects.get(pk=voucher.pk).status == Voucher.Status.UNUSED


def test_an_expired_voucher_can_be_revoked(gql, stall):
    batch = make_batch(stall, count=1, valid_until=timezone.now() + timedelta(days=1))
    VoucherBatch.objects.filter(pk=batch.pk).update(valid_until=timezone.now() - timedelta(days=1))
    assert revoke(gql, stall.operator, batch.vouchers.get().pk)["voucher"]["status"] == "REVOKED"


# --- stock and reading --------------------------------------------------------------------------------


def test_stock_counts(gql, stall):
    live = make_batch(stall, count=6)
    first, second, *_ = live.vouchers.all()
    Voucher.objects.filter(pk=first.pk).update(status=Voucher.Status.REDEEMED, redeemed_at=timezone.now())
    vouchers.voucher_revoke(operator=stall.operator.user, voucher_id=second.pk)
    lapsed = make_batch(stall, count=4, valid_until=timezone.now() + timedelta(hours=1))
    lapsed_first = lapsed.vouchers.first()
    Voucher.objects.filter(pk=lapsed_first.pk).update(status=Voucher.Status.REDEEMED)
    VoucherBatch.objects.filter(pk=lapsed.pk).update(valid_until=timezone.now() - timedelta(minutes=1))
    batches = {b["id"]: b for b in gql(BATCHES, **stall.operator.auth)["data"]["voucherBatches"]}
    counts = {key: (b["unusedCount"], b["redeemedCount"], b["revokedCount"], b["expiredCount"])
              for key, b in batches.items()}  # fmt: skip
    assert counts == {str(live.pk): (4, 1, 1, 0), str(lapsed.pk): (0, 1, 0, 3)}
    assert list(batches) == [str(lapsed.pk), str(live.pk)]  # newest first
    statuses = sorted(v["status"] for v in batches[str(lapsed.pk)]["vouchers"])
    assert statuses == ["EXPIRED", "EXPIRED", "EXPIRED", "REDEEMED"]


def test_voucher_batch_of_someone_else_is_null(gql, stall, other_operator):
    batch = make_batch(stall, count=2)
    assert gql(BATCH, {"id": str(batch.pk)}, **other_operator.auth)["data"]["voucherBatch"] is None
    for batch_id in ("x", "-1", "99999999999999999999999"):
        assert gql(BATCH, {"id": batch_id}, **stall.operator.auth)["data"]["voucherBatch"] is None
    mine = gql(BATCH, {"id": str(batch.pk)}, **stall.operator.auth)["data"]["voucherBatch"]
    assert mine["unusedCount"] == 2 and len(mine["vouchers"]) == 2
    assert gql(BATCHES, **other_operator.auth)["data"]["voucherBatches"] == []


def test_listing_batches_costs_the_same_queries_whatever_their_number(gql, stall):
    """No N+1: vouchers, their grants and the package come in a fixed number of queries."""

    def queries_for_listing() -> int:
        with CaptureQueriesContext(connection) as captured:
            body = gql(BATCHES, **stall.operator.auth)
        assert "errors" not in body
        return len(captured)

    batch = make_batch(stall, count=3)
    redeemed = batch.vouchers.first()
    grant = Activation.objects.create(owner=stall.operator.user, router=stall.router, package=stall.package,
                                      access_code=redeemed.code, source=Activation.Source.VOUCHER)  # fmt: skip
    Voucher.objects.filter(pk=redeemed.pk).update(status=Voucher.Status.REDEEMED, activation=grant)
    one = queries_for_listing()
    for _ in range(3):
        make_batch(stall, count=5)
    assert queries_for_listing() == one


# --- the printable sheet ------------------------------------------------------------------------------


def sheet_url(batch: VoucherBatch, query: str = "") -> str:
    return vouchers.sheet_path(batch) + query


def test_print_url_opens_the_sheet(gql, client, stall):
    OperatorProfile.objects.filter(user=stall.operator.user).update(business_name="Mama Njeri WiFi")
    Package.objects.filter(pk=stall.package.pk).update(shared_users=3)
    batch = make_batch(stall, count=2)
    url = gql(BATCH.replace("price", "price printUrl"), {"id": str(batch.pk)}, **stall.operator.auth)["data"][
        "voucherBatch"
    ]["printUrl"]
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200
    page = response.content.decode()
    for voucher in batch.vouchers.all():
        grouped = f"{voucher.code[:4]}-{voucher.code[4:8]}-{voucher.code[8:]}"
        assert grouped in page
    assert "Mama Njeri WiFi" in page and "1 Day" in page and "KES 50<" in page and "3 devices" in page
    assert "1 day" in page
    assert page.count("<svg") == 2


def test_a_zone_edited_by_hand_does_not_break_the_sheet(client, stall):
    """The sheet printed its batch's end date in the operator's zone without the fallback the return
    page had: a zone name that no longer loads (edited in the database) made it a 500."""
    batch = make_batch(stall, count=1, valid_until=timezone.now() + timedelta(days=3))
    OperatorProfile.objects.filter(user=stall.operator.user).update(time_zone="Nowhere/Land")
    response = client.get(sheet_url(batch))
    assert response.status_code == 200


def test_sheet_headers_and_no_external_resources(client, stall):
    response = client.get(sheet_url(make_batch(stall, count=1)))
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    page = response.content.decode()
    assert "<script" not in page
    # Every resource is our own (a relative /static/ URL); the only absolute URL is none at all.
    assert re.findall(r'(?:src|href)="(?!/static/|\?)[^"]*"', page) == []
    assert "http://" not in page and "https://" not in page


def test_sheet_uses_no_inline_style_the_policy_would_block(client, stall):
    page = client.get(sheet_url(make_batch(stall, count=1))).content.decode()
    assert "<style" not in page and " style=" not in page


def test_qr_opens_the_hotspot_login_with_the_code_in_the_fragment(stall):
    assert vouchers.hotspot_login_url("hotspot.example.net", "ABCDEFGHJKLM") == (
        "http://hotspot.example.net/login#code=ABCDEFGHJKLM"
    )


def test_sheet_link_expires_after_ten_minutes(client, stall):
    url = sheet_url(make_batch(stall, count=1))
    now = time.time()
    with mock.patch("django.core.signing.time.time", return_value=now + 9 * 60):
        assert client.get(url).status_code == 200
    with mock.patch("django.core.signing.time.time", return_value=now + 10 * 60 + 5):
        expired = client.get(url)
    assert expired.status_code == 404
    assert expired["Cache-Control"] == "no-store"


def test_tampered_foreign_and_unknown_links_all_get_the_same_plain_404(client, stall):
    batch = make_batch(stall, count=1)
    token = vouchers.sheet_token(batch)
    other = make_batch(stall, count=1)
    payload, rest = token.split(":", 1)
    forged_payload = signing.b64_encode(f'{{"batch":{other.pk}}}'.encode()).decode()
    candidates = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature changed
        f"{forged_payload}:{rest}",  # another batch's id under this signature
        signing.dumps({"batch": batch.pk}),  # signed with the default salt (another feature's links)
        signing.dumps({"batch": batch.pk}, salt="something else"),
        signing.dumps({"batch": 999999}, salt=vouchers.SHEET_SALT),  # no such batch
        signing.dumps({"batch": "1"}, salt=vouchers.SHEET_SALT),
        signing.dumps([1], salt=vouchers.SHEET_SALT),
        "x",
        "a" * 5000,
    ]
    bodies = set()
    for candidate in candidates:
        response = client.get(f"/vouchers/sheet/{candidate}/")
        assert response.status_code == 404, candidate
        assert response["Referrer-Policy"] == "no-referrer"
        bodies.add(response.content)
    assert len(bodies) == 1
    assert b"Link not valid" in bodies.pop()


def test_sheet_prints_unused_by_default_and_everything_on_request(client, stall):
    batch = make_batch(stall, count=3)
    used, cancelled, left = batch.vouchers.all()
    Voucher.objects.filter(pk=used.pk).update(status=Voucher.Status.REDEEMED)
    vouchers.voucher_revoke(operator=stall.operator.user, voucher_id=cancelled.pk)
    page = client.get(sheet_url(batch)).content.decode()
    printed = set(re.findall(r'<p class="code">([A-Z0-9-]+)</p>', page))
    assert printed == {vouchers.grouped(left.code)}
    page = client.get(sheet_url(batch, "?all=1")).content.decode()
    assert len(re.findall(r'<p class="code">', page)) == 3
    assert "Already used" in page and "Cancelled" in page


def test_sheet_of_an_expired_batch_prints_nothing_for_sale(client, stall):
    batch = make_batch(stall, count=2, valid_until=timezone.now() + timedelta(days=1))
    VoucherBatch.objects.filter(pk=batch.pk).update(valid_until=timezone.now() - timedelta(days=1))
    page = client.get(sheet_url(batch)).content.decode()
    assert '<p class="code">' not in page and "No unused vouchers left" in page
    assert client.get(sheet_url(batch, "?all=1")).content.decode().count("Expired") == 2


@pytest.mark.parametrize(("query", "sheet"), [("", "a4"), ("?paper=80mm", "80mm"), ("?paper=58mm", "58mm"),
                                              ("?paper=<script>", "a4"), ("?paper=" + "x" * 3000, "a4")])  # fmt: skip
def test_paper_sizes(client, stall, query, sheet):
    page = client.get(sheet_url(make_batch(stall, count=1), query)).content.decode()
    assert f'class="paper-{sheet}"' in page
    assert re.search(rf'href="/static/billing/voucher_sheet_{sheet}\.[0-9a-f]+\.css"', page)
    assert "<script" not in page


def test_router_without_hotspot_address_prints_no_qr_and_says_why(client, stall):
    Router.objects.filter(pk=stall.router.pk).update(hotspot_address="")
    page = client.get(sheet_url(make_batch(stall, count=2))).content.decode()
    assert "<svg" not in page
    assert "set the router's hotspot address" in page


def test_business_name_falls_back_to_the_router_name(client, stall):
    page = client.get(sheet_url(make_batch(stall, count=1))).content.decode()
    assert f'<p class="business">{stall.router.name}</p>' in page


def test_business_name_is_escaped(client, stall):
    OperatorProfile.objects.filter(user=stall.operator.user).update(business_name="<img src=x onerror=alert(1)>")
    page = client.get(sheet_url(make_batch(stall, count=1))).content.decode()
    assert "<img" not in page and "&lt;img src=x" in page


def test_sheet_speaks_the_operators_language(client, stall):
    OperatorProfile.objects.filter(user=stall.operator.user).update(language="SW")
    page = client.get(sheet_url(make_batch(stall, count=1))).content.decode()
    assert '<html lang="sw">' in page
    assert "Siku 1" in page and "Print it with your browser" not in page
    english = client.get(sheet_url(make_batch(stall, count=1), "?lang=en")).content.decode()
    assert '<html lang="en">' in english and "1 day" in english


def test_the_sheet_is_not_a_post_target(client, stall):
    assert client.post(sheet_url(make_batch(stall, count=1))).status_code == 405
