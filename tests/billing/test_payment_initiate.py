"""initiatePayment: the STK push, validation in API.md's order, gateway failures, idempotency."""

from __future__ import annotations

import time

import pytest

from billing.models import Payment, PaymentEvent
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db


def initiate(gql, shop, *, auth=None, **overrides):
    auth = auth if auth is not None else shop.operator.auth
    return gql(INITIATE, {"input": shop.payment_input(**overrides)}, **auth)["data"]["initiatePayment"]


def test_initiate_sends_stk_push_and_records_processing_payment(gql, shop):
    result = initiate(gql, shop, phoneNumber="+254 712 345 678", macAddress="aa-bb-cc-dd-ee-ff", ipAddress="10.5.50.23")

    assert result["errors"] == []
    assert result["message"] == "STK push initiated successfully"
    payment = result["payment"]
    assert payment["status"] == "PROCESSING"
    assert payment["phoneNumber"] == "254712345678"
    assert payment["amount"] == "25.00"
    assert payment["paymentProvider"] == "INTASEND"
    assert payment["macAddress"] == "AA:BB:CC:DD:EE:FF"
    assert payment["ipAddress"] == "10.5.50.23"
    assert payment["activation"] is None
    assert result["intasend"]["invoiceId"] == payment["intasendInvoiceId"]
    assert result["intasend"]["state"] == "PENDING"
    assert result["intasend"]["message"] == "STK push sent successfully"

    sent = [r for r in shop.intasend.requests if r.path.endswith("mpesa-stk-push/")]
    assert len(sent) == 1
    body = sent[0].json
    assert body["phone_number"] == "254712345678"
    assert body["api_ref"] == payment["id"]
    assert str(body["amount"]) in {"25", "25.00"}

    events = list(PaymentEvent.objects.filter(payment_id=payment["id"]).values_list("old_status", "new_status"))
    assert events == [("", "PENDING"), ("PENDING", "PROCESSING")]


@pytest.mark.parametrize("phone", ["0712345678", "712345678", "+254712345678", "254712345678", "0112345678"])
def test_initiate_accepts_usual_kenyan_phone_forms(gql, shop, phone):
    result = initiate(gql, shop, phoneNumber=phone)
    assert result["errors"] == []
    expected = "254" + phone[-9:]
    assert result["payment"]["phoneNumber"] == expected


def _no_payment_and_no_push(shop):
    assert Payment.objects.count() == 0
    assert not [r for r in shop.intasend.requests if "mpesa-stk-push" in r.path]


@pytest.mark.parametrize(
    ("overrides", "code", "field", "message"),
    [
        ({"routerId": "999999"}, "ROUTER_NOT_FOUND", "routerId", "Router not found"),
        ({"routerId": "not-a-number"}, "ROUTER_NOT_FOUND", "routerId", "Router not found"),
        (
            {"packageId": "999999"},
            "PACKAGE_NOT_FOUND",
            "packageId",
            "Package not found or not active for this router",
        ),
        ({"phoneNumber": "0812345678"}, "INVALID_PHONE", "phoneNumber", "Invalid phone number format"),
        ({"phoneNumber": "07123"}, "INVALID_PHONE", "phoneNumber", "Invalid phone number format"),
        ({"phoneNumber": "+255712345678"}, "INVALID_PHONE", "phoneNumber", "Invalid phone number format"),
        ({"amount": "20.00"}, "AMOUNT_MISMATCH", "amount", "Amount must match package price: 25.00 KES"),
        ({"amount": "25.01"}, "AMOUNT_MISMATCH", "amount", "Amount must match package price: 25.00 KES"),
        ({"macAddress": "AA:BB:CC:DD:EE"}, "INVALID_MAC", "macAddress", "Invalid MAC address format"),
        ({"macAddress": "GG:BB:CC:DD:EE:FF"}, "INVALID_MAC", "macAddress", "Invalid MAC address format"),
        ({"ipAddress": "10.0.0.300"}, "INVALID_IP", "ipAddress", "Invalid IP address format"),
        ({"paymentMethod": "bitcoin"}, "INVALID_INPUT", "paymentMethod", None),
    ],
)
def test_initiate_rejects_bad_input_without_writing_or_sending(gql, shop, overrides, code, field, message):
    result = initiate(gql, shop, **overrides)
    assert result["payment"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, field)]
    if message:
        assert result["errors"][0]["message"] == message
    _no_payment_and_no_push(shop)


def test_validation_order_router_before_package_before_phone_before_amount(gql, shop):
    everything_wrong = {
        "packageId": "999999",
        "phoneNumber": "nope",
        "amount": "1",
        "macAddress": "x",
        "ipAddress": "y",
    }
    assert initiate(gql, shop, routerId="999999", **everything_wrong)["errors"][0]["code"] == "ROUTER_NOT_FOUND"
    assert initiate(gql, shop, **everything_wrong)["errors"][0]["code"] == "PACKAGE_NOT_FOUND"
    everything_wrong.pop("packageId")
    assert initiate(gql, shop, **everything_wrong)["errors"][0]["code"] == "INVALID_PHONE"
    everything_wrong.pop("phoneNumber")
    assert initiate(gql, shop, **everything_wrong)["errors"][0]["code"] == "AMOUNT_MISMATCH"
    everything_wrong.pop("amount")
    assert initiate(gql, shop, **everything_wrong)["errors"][0]["code"] == "INVALID_MAC"
    everything_wrong.pop("macAddress")
    assert initiate(gql, shop, **everything_wrong)["errors"][0]["code"] == "INVALID_IP"
    _no_payment_and_no_push(shop)


def test_inactive_package_is_not_for_sale(gql, shop):
    shop.package.is_active = False
    shop.package.save()
    assert initiate(gql, shop)["errors"][0]["code"] == "PACKAGE_NOT_FOUND"
    _no_payment_and_no_push(shop)


def test_package_of_another_router_is_not_found(gql, shop):
    second_router = shop.operator.add_router(name="Second")
    elsewhere = shop.operator.add_package(second_router)
    assert initiate(gql, shop, packageId=str(elsewhere.pk))["errors"][0]["code"] == "PACKAGE_NOT_FOUND"


def test_without_credentials_nothing_is_sent(gql, shop):
    shop.credential.is_active = False
    shop.credential.save()
    result = initiate(gql, shop)
    assert result["errors"] == [
        {
            "field": None,
            "code": "NO_CREDENTIALS",
            "message": "No active IntaSend credentials found. Please add your IntaSend API credentials first.",
        }
    ]
    _no_payment_and_no_push(shop)


def test_undecryptable_credentials_report_decryption_failed(gql, shop, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the stored key is now unreadable
    assert initiate(gql, shop)["errors"][0]["code"] == "DECRYPTION_FAILED"
    _no_payment_and_no_push(shop)


def test_newest_active_credential_is_used(gql, shop):
    from tests.conftest import OTHER_PUBLIC_KEY, OTHER_SECRET_KEY

    newest = shop.operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)
    result = initiate(gql, shop)
    assert result["errors"] == []
    assert Payment.objects.get(pk=result["payment"]["id"]).credential_id == newest.pk
    push = [r for r in shop.intasend.requests if "mpesa-stk-push" in r.path][-1]
    assert push.json["public_key"] == OTHER_PUBLIC_KEY


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, '{"type": "validation_error", "errors": [{"code": "invalid", "detail": "bad", "attr": "amount"}]}'),
        (401, '{"detail": "Invalid token."}'),
    ],
)
def test_gateway_refusal_keeps_a_failed_payment(gql, shop, status, body):
    shop.intasend.fail_next("mpesa-stk-push/", status=status, body=body, content_type="application/json")
    result = initiate(gql, shop)

    assert [e["code"] for e in result["errors"]] == ["GATEWAY_ERROR"]
    assert "Invalid token" not in result["errors"][0]["message"]  # raw gateway text is for logs only
    payment = result["payment"]
    assert payment["status"] == "FAILED"
    assert payment["failureReason"]
    stored = Payment.objects.get(pk=payment["id"])
    assert stored.status == "FAILED"
    assert list(stored.events.values_list("new_status", flat=True)) == ["PENDING", "FAILED"]


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, '{"detail": "Server error"}', "application/json"),
        (503, '{"detail": "Down for maintenance"}', "application/json"),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        (200, "this is not json", "text/plain"),
    ],
)
def test_gateway_without_an_answer_leaves_the_payment_processing(gql, shop, status, body, content_type):
    # The prompt may have reached the phone (API.md "Unknown outcomes"): not FAILED, the reconciler settles it.
    shop.intasend.fail_next("mpesa-stk-push/", status=status, body=body, content_type=content_type)
    result = initiate(gql, shop)

    assert [e["code"] for e in result["errors"]] == ["GATEWAY_UNAVAILABLE"]
    assert "Bad Gateway" not in result["errors"][0]["message"]
    assert result["payment"]["status"] == "PROCESSING"
    stored = Payment.objects.get(pk=result["payment"]["id"])
    assert stored.status == "PROCESSING" and stored.outcome_unknown
    assert list(stored.events.values_list("new_status", flat=True)) == ["PENDING", "PROCESSING"]


def test_hung_gateway_times_out_into_an_unknown_outcome(gql, shop, settings):
    settings.INTASEND_READ_TIMEOUT = 0.5
    shop.intasend.hang_next("mpesa-stk-push/", seconds=3)
    started = time.monotonic()
    result = initiate(gql, shop)
    assert time.monotonic() - started < 2.5
    assert [e["code"] for e in result["errors"]] == ["GATEWAY_UNAVAILABLE"]
    assert result["payment"]["status"] == "PROCESSING"


def test_same_idempotency_key_and_input_returns_the_same_payment_without_a_second_push(gql, shop):
    first = initiate(gql, shop, idempotencyKey="order-77")
    second = initiate(gql, shop, idempotencyKey="order-77", phoneNumber="+254712345678")
    assert second["errors"] == []
    assert second["payment"]["id"] == first["payment"]["id"]
    assert second["intasend"]["invoiceId"] == first["intasend"]["invoiceId"]
    assert len([r for r in shop.intasend.requests if "mpesa-stk-push" in r.path]) == 1
    assert Payment.objects.count() == 1


def test_same_idempotency_key_with_different_input_is_a_mismatch(gql, shop):
    initiate(gql, shop, idempotencyKey="order-78")
    result = initiate(gql, shop, idempotencyKey="order-78", phoneNumber="0722000111")
    assert [e["code"] for e in result["errors"]] == ["IDEMPOTENCY_MISMATCH"]
    assert Payment.objects.count() == 1


def test_second_push_to_the_same_phone_while_processing_is_refused(gql, shop):
    first = initiate(gql, shop)
    second = initiate(gql, shop, phoneNumber="+254712345678")
    assert [e["code"] for e in second["errors"]] == ["PAYMENT_ALREADY_PENDING"]
    assert second["payment"] is None  # the pending one belongs to whoever started it
    assert Payment.objects.filter(pk=first["payment"]["id"]).count() == Payment.objects.count() == 1
    # Another phone on the same router is fine.
    assert initiate(gql, shop, phoneNumber="0722000111")["errors"] == []


def test_pending_rule_lapses_after_two_minutes(gql, shop):
    first = initiate(gql, shop)
    Payment.objects.filter(pk=first["payment"]["id"]).update(
        created_at=Payment.objects.get(pk=first["payment"]["id"]).created_at.replace(year=2020)
    )
    assert initiate(gql, shop)["errors"] == []


def test_portal_callers_are_rate_limited_per_phone(gql, shop, settings):
    settings.PAYMENT_RATE_LIMIT_PER_PHONE = 2
    portal = shop.operator.portal
    for _ in range(2):
        result = initiate(gql, shop, auth=portal)
        assert result["errors"] == []
        Payment.objects.filter(pk=result["payment"]["id"]).update(status="FAILED")
    assert [e["code"] for e in initiate(gql, shop, auth=portal)["errors"]] == ["RATE_LIMITED"]
    # Operators (JWT) are not throttled by the portal limits.
    assert initiate(gql, shop)["errors"] == []


def test_portal_callers_are_rate_limited_per_client_ip(gql, shop, settings):
    settings.PAYMENT_RATE_LIMIT_PER_IP = 2
    portal = shop.operator.portal
    for phone in ("0711000001", "0711000002"):
        assert initiate(gql, shop, auth=portal, phoneNumber=phone)["errors"] == []
    assert initiate(gql, shop, auth=portal, phoneNumber="0711000003")["errors"][0]["code"] == "RATE_LIMITED"


def test_portal_sees_the_phone_number_masked(gql, shop):
    result = initiate(gql, shop, auth=shop.operator.portal)
    assert result["payment"]["phoneNumber"] == "2547******78"
