"""createPaymentLink and checkPaymentStatus against the loopback IntaSend."""

from __future__ import annotations

import pytest

from billing.models import Payment, PaymentEvent
from network.models import Activation
from tests.documents import CHECK_STATUS, CREATE_LINK, INITIATE

pytestmark = pytest.mark.django_db


def create_link(gql, shop, auth=None, **overrides):
    auth = auth if auth is not None else shop.operator.auth
    return gql(CREATE_LINK, {"input": shop.payment_input(**overrides)}, **auth)["data"]["createPaymentLink"]


def check(gql, shop, payment_id, auth=None):
    auth = auth if auth is not None else shop.operator.auth
    return gql(CHECK_STATUS, {"id": payment_id}, **auth)["data"]["checkPaymentStatus"]


def stk_payment(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert result["errors"] == []
    return result["payment"]


def test_payment_link_creates_pending_payment_with_checkout_url(gql, shop, settings):
    settings.INTASEND_CALLBACK_URL = None
    result = create_link(gql, shop, phoneNumber="")
    assert result["errors"] == []
    assert result["message"] == "Payment link created successfully"
    payment = result["payment"]
    assert payment["status"] == "PENDING"
    assert payment["paymentUrl"].startswith("http://127.0.0.1:")
    assert result["intasend"]["paymentUrl"] == payment["paymentUrl"]
    assert result["intasend"]["state"] == "PENDING"
    checkout = [r for r in shop.intasend.requests if r.path.endswith("/checkout/")][0].json
    assert checkout["api_ref"] == payment["id"]
    assert checkout["callback_url"] == "http://testserver/payments/webhook/"
    secret = Payment.objects.get(pk=payment["id"]).client_secret
    assert checkout["redirect_url"] == f"http://testserver/payment/success/{payment['id']}/?client_secret={secret}"


def test_payment_link_uses_configured_urls(gql, shop, settings):
    settings.INTASEND_CALLBACK_URL = "https://pay.example.com/payments/webhook/"
    settings.INTASEND_SUCCESS_URL_BASE = "https://pay.example.com/ok/"
    payment = create_link(gql, shop)["payment"]
    checkout = [r for r in shop.intasend.requests if r.path.endswith("/checkout/")][0].json
    assert checkout["callback_url"] == "https://pay.example.com/payments/webhook/"
    secret = payment["clientSecret"]
    assert checkout["redirect_url"] == f"https://pay.example.com/ok/{payment['id']}/?client_secret={secret}"


def test_payment_link_validates_like_stk_push(gql, shop):
    assert create_link(gql, shop, amount="1.00")["errors"][0]["code"] == "AMOUNT_MISMATCH"
    assert create_link(gql, shop, phoneNumber="12")["errors"][0]["code"] == "INVALID_PHONE"
    assert Payment.objects.count() == 0


def test_payment_link_gateway_failure_keeps_failed_payment(gql, shop):
    shop.intasend.fail_next("checkout/", status=503, body='{"detail": "maintenance"}')
    result = create_link(gql, shop)
    assert result["errors"][0]["code"] == "GATEWAY_UNAVAILABLE"
    assert result["payment"]["status"] == "FAILED"


def test_check_status_completes_payment_and_starts_activation_once(gql, shop):
    payment = stk_payment(gql, shop)
    shop.intasend.settle(payment["intasendInvoiceId"], state="COMPLETE", mpesa_reference="TDLE527E2G")

    result = check(gql, shop, payment["id"])
    assert result["errors"] == []
    assert result["message"] == "Payment completed successfully!"
    assert result["status"] == "COMPLETED"
    assert result["state"] == "COMPLETE"
    assert result["details"]["mpesaReference"] == "TDLE527E2G"
    assert result["details"]["amount"] in {"25", "25.00"}
    done = result["payment"]
    assert done["completedAt"] and done["packageExpiryTime"]
    assert done["activation"]["status"] == "PENDING"

    calls_before = len(shop.intasend.requests)
    again = check(gql, shop, payment["id"])
    assert again["message"] == "Payment completed successfully!"
    assert len(shop.intasend.requests) == calls_before  # final: answered from the database
    assert Activation.objects.filter(payment=payment["id"]).count() == 1
    completed = PaymentEvent.objects.filter(payment_id=payment["id"], new_status="COMPLETED")
    assert completed.count() == 1 and completed.get().source == "CHECK"


def test_check_status_while_pending_reports_processing(gql, shop):
    payment = stk_payment(gql, shop)
    result = check(gql, shop, payment["id"])
    assert result["message"] == "Payment status checked successfully"
    assert result["status"] == "PROCESSING"
    assert result["state"] == "PENDING"


def test_check_status_applies_failure_with_reason(gql, shop):
    payment = stk_payment(gql, shop)
    shop.intasend.settle(payment["intasendInvoiceId"], state="FAILED", failed_reason="Request cancelled by user")
    result = check(gql, shop, payment["id"])
    assert result["status"] == "FAILED"
    assert result["payment"]["failureReason"] == "Request cancelled by user"
    assert result["payment"]["activation"] is None


def test_check_status_on_failed_payment_does_not_call_intasend(gql, shop):
    shop.intasend.fail_next("mpesa-stk-push/", status=400)  # refused: FAILED (a 5xx leaves it PROCESSING)
    failed = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    calls = len(shop.intasend.requests)
    result = check(gql, shop, failed["payment"]["id"])
    assert result["status"] == "FAILED" and result["errors"] == []
    assert len(shop.intasend.requests) == calls


def test_check_status_gateway_outage_leaves_payment_unchanged(gql, shop):
    payment = stk_payment(gql, shop)
    shop.intasend.fail_next("payment/status/", status=502, body="<html>bad gateway</html>", content_type="text/html")
    result = check(gql, shop, payment["id"])
    assert result["errors"][0]["code"] == "GATEWAY_UNAVAILABLE"
    assert Payment.objects.get(pk=payment["id"]).status == "PROCESSING"


def test_check_status_never_completes_on_amount_mismatch(gql, shop):
    payment = stk_payment(gql, shop)
    shop.intasend.settle(payment["intasendInvoiceId"], state="COMPLETE", value="1.00")
    result = check(gql, shop, payment["id"])
    assert result["status"] == "PROCESSING"
    note = PaymentEvent.objects.filter(payment_id=payment["id"]).last().note
    assert "Not completed" in note


def test_check_status_of_paid_checkout_link(gql, shop):
    link = create_link(gql, shop)
    payment_id = link["payment"]["id"]
    assert check(gql, shop, payment_id)["status"] == "PENDING"  # nobody has paid yet
    stored = Payment.objects.get(pk=payment_id)
    shop.intasend.pay_checkout(stored.intasend_checkout_id, state="COMPLETE")
    result = check(gql, shop, payment_id)
    assert result["status"] == "COMPLETED"
    assert result["payment"]["intasendInvoiceId"]


def test_check_status_unknown_payment(gql, shop):
    result = check(gql, shop, "00000000-0000-0000-0000-000000000000")
    assert result["errors"] == [
        {"field": "paymentId", "code": "PAYMENT_NOT_FOUND", "message": "Payment not found or access denied"}
    ]


def test_check_status_of_non_intasend_payment(gql, shop):
    payment = stk_payment(gql, shop)
    Payment.objects.filter(pk=payment["id"]).update(payment_provider="KOPOKOPO")
    result = check(gql, shop, payment["id"])
    assert result["errors"][0]["code"] == "NOT_INTASEND_PAYMENT"
    assert result["errors"][0]["message"] == "This payment was not initiated through IntaSend"


def test_checkout_return_pages_show_what_the_database_knows(client, gql, shop):
    payment_id = create_link(gql, shop)["payment"]["id"]
    page = client.get(f"/payment/success/{payment_id}/")
    assert page.status_code == 200 and b"Payment in progress" in page.content  # the redirect proves nothing
    assert b"254712345678" not in page.content
    Payment.objects.filter(pk=payment_id).update(status="COMPLETED")
    assert b"Payment received" in client.get(f"/payment/success/{payment_id}/").content
    assert client.get("/payment/failed/00000000-0000-0000-0000-000000000000/").status_code == 404
