"""Red team, issue 14: unauthenticated webhook hints flooded the queue with one status check each, and
a raw NUL in a body the endpoint could not use was a 500."""

from __future__ import annotations

import json

import pytest

import billing.tasks
from billing import webhooks
from billing.models import Payment, WebhookDelivery
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)  # webhooks are recorded on threads of their own


@pytest.fixture
def checks_queued(monkeypatch) -> list[str]:
    queued: list[str] = []
    monkeypatch.setattr(billing.tasks, "confirm_payment_with_gateway", lambda pid, invoice: queued.append(pid))
    return queued


def _pending_payment(gql, shop, phone: str = "0712345678") -> Payment:
    made = gql(INITIATE, {"input": shop.payment_input(phoneNumber=phone)}, **shop.operator.portal)
    return Payment.objects.get(pk=made["data"]["initiatePayment"]["payment"]["id"])


def _completion_claim(shop, payment: Payment) -> dict:
    """What anyone can post: "this payment is COMPLETE" (only IntaSend's status API can confirm it)."""
    body = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge="webhook-challenge-1")
    return {**body, "state": "COMPLETE"}


def _hint(client, body: dict) -> None:
    answer = client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {"status": "accepted"}


def test_a_flood_of_hints_for_one_payment_queues_one_check_at_a_time(client, gql, shop, checks_queued):
    payment = _pending_payment(gql, shop)
    body = _completion_claim(shop, payment)
    for _ in range(20):
        _hint(client, body)
    assert checks_queued == [str(payment.pk)]  # the queued check reads IntaSend's latest state anyway

    webhooks.confirmation_started(payment.pk)  # the job began: later news gets a check of its own
    _hint(client, body)
    assert checks_queued == [str(payment.pk)] * 2


def test_hints_for_other_payments_are_not_held_back(client, gql, shop, checks_queued):
    first, second = _pending_payment(gql, shop), _pending_payment(gql, shop, phone="0712345679")
    for payment in (first, second, first, second):
        _hint(client, _completion_claim(shop, payment))
    assert checks_queued == [str(first.pk), str(second.pk)]


@pytest.mark.parametrize("body", [b"\x00", b'{"invoice_id": "ABC\x00"}'])
def test_a_raw_nul_in_a_webhook_is_a_400_not_a_500(client, body):
    answer = client.post("/payments/webhook/", data=body, content_type="application/json")
    assert answer.status_code == 400
    [kept] = WebhookDelivery.objects.all()
    assert "\x00" not in kept.raw_body and "\ufffd" in kept.raw_body


def test_with_the_cache_and_the_queue_down_a_completion_claim_is_a_503_not_a_500(client, gql, shop, monkeypatch):
    """Scaled, both are the one Redis: IntaSend must be told to deliver again, not shown a crash."""
    payment = _pending_payment(gql, shop)

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(webhooks.cache, "add", down)
    monkeypatch.setattr(webhooks.cache, "delete", down)
    monkeypatch.setattr(billing.tasks, "confirm_payment_with_gateway", down)
    body = _completion_claim(shop, payment)
    answer = client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 503
