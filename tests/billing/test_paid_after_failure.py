"""Money IntaSend confirms after we had FAILED the payment: FAILED stays final, the payment is flagged
for the support desk (admin filter, `paidAfterFailure`), once, and only on IntaSend's word."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Payment, PaymentEvent
from billing.tasks import reconcile_payments
from network.models import Activation
from tests.billing.test_webhook import CHALLENGE, post
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

PAID_AFTER_FAILURE = "query($id: UUID!) { payment(id: $id) { status paidAfterFailure } }"


@pytest.fixture
def abandoned(gql, shop):
    """An STK payment nobody answered for 31 minutes, failed by the reconciler's cut-off."""
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    Payment.objects.filter(pk=result["payment"]["id"]).update(created_at=timezone.now() - timedelta(minutes=31))
    reconcile_payments.call_local()
    payment = Payment.objects.get(pk=result["payment"]["id"])
    assert payment.status == "FAILED" and "abandoned" in payment.failure_reason
    return payment


def late_notes(payment):
    return list(PaymentEvent.objects.filter(payment=payment, note__startswith="Paid after it had failed"))


def test_confirmed_late_money_flags_the_failed_payment_once(client, gql, shop, abandoned):
    shop.intasend.settle(abandoned.intasend_invoice_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(abandoned.intasend_invoice_id, challenge=CHALLENGE)
    for _ in range(3):  # IntaSend retries; each is one more status check at most, one flag in all
        assert post(client, body).status_code == 200
    abandoned.refresh_from_db()
    assert abandoned.status == "FAILED" and abandoned.paid_after_failure
    [event] = late_notes(abandoned)
    assert (event.old_status, event.new_status, event.source) == ("FAILED", "FAILED", "WEBHOOK")
    assert not Activation.objects.filter(payment=abandoned).exists()  # nobody went online by surprise
    seen = gql(PAID_AFTER_FAILURE, {"id": str(abandoned.pk)}, **shop.operator.auth)["data"]["payment"]
    assert seen == {"status": "FAILED", "paidAfterFailure": True}
    assert abandoned.mpesa_reference  # the receipt the support desk refunds against


def test_a_claim_intasend_does_not_confirm_flags_nothing(client, shop, abandoned):
    body = shop.intasend.webhook_body(abandoned.intasend_invoice_id, challenge=CHALLENGE)
    body["state"] = "COMPLETE"  # IntaSend itself still says PENDING
    assert post(client, body).status_code == 200
    abandoned.refresh_from_db()
    assert not abandoned.paid_after_failure and not late_notes(abandoned)


def test_late_money_of_another_amount_flags_nothing(client, shop, abandoned):
    shop.intasend.settle(abandoned.intasend_invoice_id, "COMPLETE", value="1.00", webhook=False)
    post(client, shop.intasend.webhook_body(abandoned.intasend_invoice_id, challenge=CHALLENGE))
    abandoned.refresh_from_db()
    assert not abandoned.paid_after_failure
    assert "IntaSend now says COMPLETE" in PaymentEvent.objects.filter(payment=abandoned).last().note


def test_push_that_timed_out_here_but_reached_the_phone_still_completes(client, gql, shop, settings):
    """IntaSend answered the STK push too late for us (GATEWAY_UNAVAILABLE), yet the customer got
    the prompt and paid: the payment was left PROCESSING, so the webhook completes it."""
    settings.INTASEND_READ_TIMEOUT = 0.5
    shop.intasend.hang_next("payment/mpesa-stk-push/", 1.5)
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert [e["code"] for e in result["errors"]] == ["GATEWAY_UNAVAILABLE"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    assert payment.status == "PROCESSING" and payment.outcome_unknown and not payment.intasend_invoice_id

    deadline = timezone.now() + timedelta(seconds=5)
    while not shop.intasend.invoices_by_api_ref(str(payment.pk)) and timezone.now() < deadline:
        pass  # the fake finishes the push once its hang is over
    [invoice] = shop.intasend.invoices_by_api_ref(str(payment.pk))
    shop.intasend.settle(invoice.invoice_id, "COMPLETE", webhook=False)
    assert post(client, shop.intasend.webhook_body(invoice.invoice_id, challenge=CHALLENGE)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "COMPLETED" and not payment.paid_after_failure and not payment.outcome_unknown
    assert payment.intasend_invoice_id == invoice.invoice_id


def test_admin_finds_them_with_a_filter(admin_client, client, shop, abandoned):
    shop.intasend.settle(abandoned.intasend_invoice_id, "COMPLETE", webhook=False)
    post(client, shop.intasend.webhook_body(abandoned.intasend_invoice_id, challenge=CHALLENGE))
    page = admin_client.get("/admin/billing/payment/?paid_after_failure__exact=1")
    assert page.status_code == 200 and str(abandoned.pk) in page.content.decode()
    others = admin_client.get("/admin/billing/payment/?paid_after_failure__exact=0")
    assert str(abandoned.pk) not in others.content.decode()
