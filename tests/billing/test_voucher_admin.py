"""Vouchers in the admin: each operator's own batches with their stock, a print link that signs a fresh sheet
URL, batches added through the same service as createVoucherBatch, and revocation through revokeVoucher's rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import vouchers
from billing.models import Voucher, VoucherBatch
from tests.project.test_admin import make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(operator, other_operator, client):
    make_staff(operator)
    router = operator.add_router()
    package = operator.add_package(router, price="50.00", name="1 Day")
    batch = vouchers.voucher_batch_create(
        operator=operator.user, data=vouchers.VoucherBatchInput(package_id=package.pk, count=4, note="Kiosk")
    )
    used, cancelled, *_ = batch.vouchers.all()
    Voucher.objects.filter(pk=used.pk).update(status=Voucher.Status.REDEEMED, redeemed_at=timezone.now())
    vouchers.voucher_revoke(operator=operator.user, voucher_id=cancelled.pk)
    bobs_package = other_operator.add_package(other_operator.add_router("Bob's Cafe"))
    bobs = vouchers.voucher_batch_create(
        operator=other_operator.user, data=vouchers.VoucherBatchInput(package_id=bobs_package.pk, count=2)
    )
    client.force_login(operator.user)
    return type("Desk", (), dict(client=client, package=package, batch=batch, used=used, bobs=bobs,
                                 bobs_package=bobs_package, operator=operator))  # fmt: skip


def test_batch_list_shows_own_stock_only(desk):
    response = desk.client.get("/admin/billing/voucherbatch/")
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [row.pk for row in rows] == [desk.batch.pk]
    row = rows[0]
    assert (row.unused_count, row.redeemed_count, row.revoked_count, row.expired_count) == (2, 1, 1, 0)
    page = response.content.decode()
    assert "Kiosk" in page and f"/admin/billing/voucherbatch/{desk.batch.pk}/print/" in page
    assert desk.client.get(f"/admin/billing/voucherbatch/{desk.bobs.pk}/change/").status_code == 302


def test_expired_stock_in_the_list(desk):
    VoucherBatch.objects.filter(pk=desk.batch.pk).update(valid_until=timezone.now() - timedelta(hours=1))
    row = desk.client.get("/admin/billing/voucherbatch/").context["cl"].result_list[0]
    assert (row.unused_count, row.redeemed_count, row.revoked_count, row.expired_count) == (0, 1, 1, 2)


def test_print_link_signs_a_fresh_sheet_url(desk):
    response = desk.client.get(f"/admin/billing/voucherbatch/{desk.batch.pk}/print/")
    assert response.status_code == 302 and "no-store" in response["Cache-Control"]
    assert response["Location"].startswith("/vouchers/sheet/")
    sheet = desk.client.get(response["Location"])
    assert sheet.status_code == 200 and sheet.content.decode().count('<p class="code">') == 2
    # Someone else's batch, or none: nothing is signed.
    assert desk.client.get(f"/admin/billing/voucherbatch/{desk.bobs.pk}/print/").status_code == 404
    assert desk.client.get("/admin/billing/voucherbatch/999999/print/").status_code == 404


def test_print_link_needs_a_signed_in_operator(desk, client):
    client.logout()
    response = client.get(f"/admin/billing/voucherbatch/{desk.batch.pk}/print/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_add_a_batch_through_the_service(desk):
    response = desk.client.post(
        "/admin/billing/voucherbatch/add/", {"package": desk.package.pk, "count": 3, "note": "Shop 2"}
    )
    assert response.status_code == 302, response.content[:2000]
    batch = VoucherBatch.objects.exclude(pk__in=[desk.batch.pk, desk.bobs.pk]).get()
    assert (batch.owner, batch.router, batch.price, batch.count, batch.note) == (
        desk.operator.user, desk.package.router, desk.package.price, 3, "Shop 2",
    )  # fmt: skip
    assert batch.vouchers.count() == 3


def test_add_form_applies_the_api_rules(desk):
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    response = desk.client.post(
        "/admin/billing/voucherbatch/add/",
        {
            "package": desk.package.pk,
            "count": 5,
            "note": "bad\x07note",
            "valid_until_0": past,
            "valid_until_1": "10:00",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"note", "valid_until"}
    # Another operator's package is not even a choice.
    response = desk.client.post("/admin/billing/voucherbatch/add/", {"package": desk.bobs_package.pk, "count": 1})
    assert response.status_code == 200 and "package" in response.context["adminform"].form.errors
    assert VoucherBatch.objects.count() == 2


def test_revoke_action(desk):
    ids = list(desk.batch.vouchers.values_list("pk", flat=True)) + list(desk.bobs.vouchers.values_list("pk", flat=True))
    response = desk.client.post("/admin/billing/voucher/", {"action": "revoke", "_selected_action": ids}, follow=True)
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["Revoked 3 voucher(s).", "1 redeemed voucher(s) left as they are."]
    statuses = dict(Voucher.objects.values_list("pk", "status"))
    assert statuses[desk.used.pk] == Voucher.Status.REDEEMED
    assert {statuses[pk] for pk in desk.batch.vouchers.exclude(pk=desk.used.pk).values_list("pk", flat=True)} == {
        Voucher.Status.REVOKED
    }
    # Bob's vouchers were never in Alice's list: untouched.
    assert set(desk.bobs.vouchers.values_list("status", flat=True)) == {Voucher.Status.UNUSED}


def test_voucher_search_finds_a_printed_code(desk):
    code = desk.used.code
    printed = vouchers.grouped(code).lower()
    response = desk.client.get("/admin/billing/voucher/", {"q": printed})
    assert [v.pk for v in response.context["cl"].result_list] == [desk.used.pk]


def test_batch_and_voucher_pages_are_read_only(desk):
    page = desk.client.get(f"/admin/billing/voucherbatch/{desk.batch.pk}/change/")
    assert page.status_code == 200
    assert vouchers.grouped(desk.used.code) not in page.content.decode()  # stored form, not printed
    assert desk.used.code in page.content.decode()
    assert desk.client.get(f"/admin/billing/voucher/{desk.used.pk}/change/").status_code == 200
    before = Voucher.objects.get(pk=desk.used.pk)
    desk.client.post(f"/admin/billing/voucher/{desk.used.pk}/change/", {"code": "HACKEDHACKED", "status": "UNUSED"})
    after = Voucher.objects.get(pk=desk.used.pk)
    assert (after.code, after.status) == (before.code, before.status)
    assert desk.client.get("/admin/billing/voucher/add/").status_code == 403
