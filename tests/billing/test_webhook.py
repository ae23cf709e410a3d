"""POST /payments/webhook/: API.md's rules, against the loopback IntaSend for the status checks."""

from __future__ import annotations

import json

import pytest

from billing.models import Payment, PaymentEvent, WebhookDelivery
from network.models import Activation
from tests.documents import INITIATE

# Real commits: the webhook enqueues its status check after the transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

CHALLENGE = "webhook-challenge-1"  # the shop fixture's credential


@pytest.fixture
def processing(gql, shop):
    """A PROCESSING STK payment and its invoice at the fake IntaSend."""
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert result["errors"] == []
    return Payment.objects.get(pk=result["payment"]["id"])


def post(client, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/payments/webhook/", data=data, content_type="application/json", **kwargs)


def deliver(client, shop, payment, **changes):
    body = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge=CHALLENGE)
    body.update(changes)
    return post(client, body)


def completions(payment):
    return PaymentEvent.objects.filter(payment=payment, new_status="COMPLETED").exclude(old_status="COMPLETED")


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2, 3]", '"a string"', json.dumps({"state": "COMPLETE"}), json.dumps({"api_ref": ""})]
)
def test_garbage_is_a_400_and_is_stored(client, db, body):
    response = post(client, body)
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().outcome == "INVALID"


def test_unknown_payment_is_ignored_with_200(client, shop):
    response = post(
        client,
        {
            "invoice_id": "NOPE123",
            "api_ref": "7e3f1c52-0000-4000-8000-000000000000",
            "state": "COMPLETE",
            "challenge": CHALLENGE,
        },
    )
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert WebhookDelivery.objects.get().outcome == "IGNORED"


def test_non_uuid_api_ref_is_ignored(client, shop):
    response = post(client, {"invoice_id": "NOPE123", "api_ref": "order-1", "state": "COMPLETE"})
    assert response.status_code == 200 and response.json() == {"status": "ignored"}


@pytest.mark.parametrize("challenge", ["wrong", "", None, 12345])
def test_challenge_mismatch_is_403_and_changes_nothing(client, shop, processing, challenge):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(processing.intasend_invoice_id, challenge=CHALLENGE)
    if challenge is None:
        body.pop("challenge")
    else:
        body["challenge"] = challenge
    response = post(client, body)
    assert response.status_code == 403
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"
    assert WebhookDelivery.objects.get().outcome == "REJECTED"


def test_complete_webhook_is_confirmed_with_the_status_api(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    status_calls = len(shop.intasend.requests_to("payment/status/"))
    response = deliver(client, shop, processing)
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"
    assert processing.mpesa_reference
    assert len(shop.intasend.requests_to("payment/status/")) == status_calls + 1
    assert completions(processing).get().source == "WEBHOOK"
    assert Activation.objects.filter(payment=processing).count() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "ACCEPTED" and delivery.payment_id == processing.pk
    assert delivery.body["challenge"] == "[redacted]"
    assert CHALLENGE not in json.dumps(delivery.body)


def test_forged_complete_is_not_applied_when_intasend_disagrees(client, shop, processing):
    response = deliver(client, shop, processing, state="COMPLETE")  # IntaSend still says PENDING
    assert response.status_code == 200
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"
    assert not completions(processing).exists()


def test_authenticated_failure_is_applied_directly(client, shop, processing):
    shop.intasend.settle(
        processing.intasend_invoice_id, "FAILED", failed_reason="Request cancelled by user", webhook=False
    )
    status_calls = len(shop.intasend.requests_to("payment/status/"))
    deliver(client, shop, processing)
    processing.refresh_from_db()
    assert processing.status == "FAILED"
    assert processing.failure_reason == "Request cancelled by user"
    assert len(shop.intasend.requests_to("payment/status/")) == status_calls
    assert PaymentEvent.objects.filter(payment=processing, new_status="FAILED").get().source == "WEBHOOK"


def test_without_a_challenge_every_webhook_is_only_a_hint(client, shop, processing):
    shop.credential.webhook_challenge_encrypted = ""
    shop.credential.save()
    # A forged FAILED: IntaSend says the invoice is still pending, so nothing changes.
    deliver(client, shop, processing, state="FAILED", challenge="anything")
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"
    # The real completion, reported without a challenge, is confirmed and applied.
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver(client, shop, processing, challenge=None)
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"


def test_amount_mismatch_never_completes(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", value="5.00", webhook=False)
    deliver(client, shop, processing)
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"
    assert "Not completed" in PaymentEvent.objects.filter(payment=processing).last().note


def test_replayed_webhook_x10_makes_one_transition(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    for _ in range(10):
        assert deliver(client, shop, processing).status_code == 200
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"
    assert completions(processing).count() == 1
    assert Activation.objects.filter(payment=processing).count() == 1
    assert PaymentEvent.objects.filter(payment=processing).count() == 3  # created, processing, completed
    assert WebhookDelivery.objects.filter(payment=processing).count() == 10


def test_failed_after_completed_is_recorded_and_ignored(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver(client, shop, processing)
    deliver(client, shop, processing, state="FAILED", failed_reason="late and wrong")
    deliver(client, shop, processing, state="PROCESSING")
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"
    ignored = PaymentEvent.objects.filter(payment=processing, note__startswith="Ignored")
    assert [e.gateway_state for e in ignored] == ["FAILED", "PROCESSING"]
    assert all(e.old_status == e.new_status == "COMPLETED" for e in ignored)


def test_payment_is_found_by_invoice_id_without_api_ref(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver(client, shop, processing, api_ref=None)
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"


def test_unknown_state_is_recorded_and_changes_nothing(client, shop, processing):
    deliver(client, shop, processing, state="RETRY")
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"
    assert "unknown IntaSend state 'RETRY'" in PaymentEvent.objects.filter(payment=processing).last().note


def test_checkout_link_completes_from_its_first_webhook(client, gql, shop):
    from tests.documents import CREATE_LINK

    result = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["createPaymentLink"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    invoice = shop.intasend.pay_checkout(payment.intasend_checkout_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(invoice.invoice_id, challenge=CHALLENGE)
    assert post(client, body).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "COMPLETED" and payment.intasend_invoice_id == invoice.invoice_id


def test_intasend_down_during_confirmation_leaves_it_to_the_retries(client, shop, processing):
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    shop.intasend.fail_next("payment/status/", status=503)
    assert deliver(client, shop, processing).status_code == 200  # IntaSend still gets its 200
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"


def test_oversized_body_is_refused(client, shop):
    response = post(client, json.dumps({"api_ref": "x", "pad": "y" * 70_000}))
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()


def test_get_is_not_allowed(client, db):
    assert client.get("/payments/webhook/").status_code == 405
