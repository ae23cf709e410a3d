"""A push whose answer never came may still be on the customer's phone (API.md "Unknown outcomes"):
it stays PROCESSING, blocks a second (double-charging) push, and the reconciler settles it with
IntaSend by our api_ref before it may fail."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Payment
from billing.tasks import reconcile_payments
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

CHALLENGE = "webhook-challenge-1"


def initiate(gql, shop, **overrides) -> dict:
    return gql(INITIATE, {"input": shop.payment_input(**overrides)}, **shop.operator.auth)["data"]["initiatePayment"]


def timed_out_push(gql, shop, settings) -> Payment:
    """A push our side gave up on (read timeout) that IntaSend still sent to the phone."""
    settings.INTASEND_READ_TIMEOUT = 0.5
    shop.intasend.hang_next("payment/mpesa-stk-push/", 1.5)
    result = initiate(gql, shop)
    assert [e["code"] for e in result["errors"]] == ["GATEWAY_UNAVAILABLE"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    deadline = time.monotonic() + 5
    while not shop.intasend.invoices_by_api_ref(str(payment.pk)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the fake finishes the push once its hang is over
    return payment


def age(payment: Payment, **delta) -> None:
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(**delta), next_reconcile_at=None)


def pushes(shop) -> int:
    return len(shop.intasend.requests_to("payment/mpesa-stk-push/"))


def test_push_timeout_stays_processing_and_refuses_a_second_push(gql, shop, settings):
    payment = timed_out_push(gql, shop, settings)
    assert payment.status == "PROCESSING" and payment.outcome_unknown and payment.failure_reason == ""

    assert [e["code"] for e in initiate(gql, shop)["errors"]] == ["PAYMENT_ALREADY_PENDING"]
    age(payment, minutes=4)  # past the usual 2 minutes, inside the 5 of an unknown outcome
    assert [e["code"] for e in initiate(gql, shop)["errors"]] == ["PAYMENT_ALREADY_PENDING"]
    assert pushes(shop) == 1

    age(payment, minutes=6)  # an M-Pesa prompt has long expired
    assert initiate(gql, shop)["errors"] == []
    assert pushes(shop) == 2


def test_reconciler_completes_a_timed_out_push_found_by_api_ref(gql, shop, settings):
    payment = timed_out_push(gql, shop, settings)
    [invoice] = shop.intasend.invoices_by_api_ref(str(payment.pk))
    shop.intasend.settle(invoice.invoice_id, "COMPLETE", webhook=False)  # the webhook got lost too
    age(payment, minutes=3)

    reconcile_payments.call_local()

    payment.refresh_from_db()
    assert payment.status == "COMPLETED" and not payment.outcome_unknown
    assert payment.intasend_invoice_id == invoice.invoice_id
    [lookup] = shop.intasend.requests_to("payment/collection/")
    assert lookup.method == "GET" and lookup.authenticated_as is not None


def test_payment_whose_process_died_before_learning_its_invoice_is_not_failed_when_paid(gql, shop):
    result = initiate(gql, shop)
    payment = Payment.objects.get(pk=result["payment"]["id"])
    invoice_id = payment.intasend_invoice_id
    # The push went out, the process died before it saved what IntaSend answered.
    Payment.objects.filter(pk=payment.pk).update(intasend_invoice_id="", status="PENDING", intasend_state="")
    shop.intasend.settle(invoice_id, "COMPLETE", webhook=False)
    age(payment, minutes=45)  # past the give-up cut-off

    reconcile_payments.call_local()

    payment.refresh_from_db()
    assert payment.status == "COMPLETED" and payment.intasend_invoice_id == invoice_id


def test_unknown_push_that_intasend_never_saw_fails_after_the_cutoff(gql, shop, settings):
    settings.INTASEND_READ_TIMEOUT = 0.5
    shop.intasend.fail_next("payment/mpesa-stk-push/", status=502)  # nothing reached IntaSend
    payment = Payment.objects.get(pk=initiate(gql, shop)["payment"]["id"])
    assert payment.status == "PROCESSING"

    age(payment, minutes=10)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert payment.status == "PROCESSING"  # not found yet, still inside the cut-off: asked again later

    age(payment, minutes=45)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert payment.status == "FAILED"


def test_unknown_push_is_not_failed_while_intasend_cannot_be_asked(gql, shop, settings):
    payment = timed_out_push(gql, shop, settings)
    age(payment, minutes=45)
    shop.intasend.fail_next("payment/collection/", status=503)

    reconcile_payments.call_local()

    payment.refresh_from_db()
    assert payment.status == "PROCESSING" and payment.next_reconcile_at is not None


def test_money_for_a_failed_payment_without_invoice_id_is_flagged(client, gql, shop):
    """It died before learning its invoice id and was failed; the webhook names it: flagged, not dropped."""
    from tests.billing.test_webhook import post

    result = initiate(gql, shop)
    payment = Payment.objects.get(pk=result["payment"]["id"])
    invoice_id = payment.intasend_invoice_id
    Payment.objects.filter(pk=payment.pk).update(
        intasend_invoice_id="", status="FAILED", failure_reason="abandoned before this fix"
    )
    shop.intasend.settle(invoice_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(invoice_id, challenge=CHALLENGE)
    body.pop("invoice_id")  # only our api_ref names it: found by api_ref at IntaSend

    assert post(client, body).status_code == 200

    payment.refresh_from_db()
    assert payment.status == "FAILED" and payment.paid_after_failure
    assert payment.intasend_invoice_id == invoice_id
