"""Webhook, checkPaymentStatus and the reconciler hitting one payment at once: one completion.

Real threads, each with its own database connection; on PostgreSQL the row lock decides, on
SQLite the IMMEDIATE write transaction does.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from billing import services
from billing.models import Payment, PaymentEvent
from network.models import Activation
from tests.documents import CHECK_STATUS, INITIATE

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*actions, rounds: int = 1) -> list[BaseException]:
    barrier = threading.Barrier(len(actions) * rounds)
    errors: list[BaseException] = []

    def runner(action):
        try:
            barrier.wait(timeout=10)
            action()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(a,)) for a in actions * rounds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.parametrize("attempt", range(3))
def test_webhook_check_and_reconciler_race_completes_once(gql, shop, attempt):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    body = json.dumps(shop.intasend.webhook_body(payment.intasend_invoice_id, challenge="webhook-challenge-1"))
    token = shop.operator.tokens.access_token

    def webhook():
        response = Client().post("/payments/webhook/", data=body, content_type="application/json")
        assert response.status_code == 200

    def check():
        response = Client().post(
            "/graphql/",
            data=json.dumps({"query": CHECK_STATUS, "variables": {"id": str(payment.pk)}}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.json()["data"]["checkPaymentStatus"]["status"] == "COMPLETED"

    def reconcile():  # what the reconciler job does for each due payment
        services.payment_reconcile(payment_id=payment.pk)

    errors = run_together(webhook, check, reconcile, rounds=2)
    assert errors == []
    payment.refresh_from_db()
    assert payment.status == "COMPLETED"
    completed = PaymentEvent.objects.filter(payment=payment, new_status="COMPLETED").exclude(old_status="COMPLETED")
    assert completed.count() == 1
    assert Activation.objects.filter(payment=payment).count() == 1


def test_concurrent_pushes_to_one_phone_make_one_payment(gql, shop):
    token = shop.operator.tokens.access_token

    def push():
        Client().post(
            "/graphql/",
            data=json.dumps({"query": INITIATE, "variables": {"input": shop.payment_input()}}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert run_together(push, rounds=4) == []
    assert Payment.objects.count() == 1
    assert len(shop.intasend.requests_to("mpesa-stk-push/")) == 1


def test_concurrent_retries_with_one_idempotency_key_make_one_payment(gql, shop):
    token = shop.operator.tokens.access_token
    variables = {"input": shop.payment_input(idempotencyKey="retry-storm")}
    answers: list[str] = []

    def push():
        response = Client().post(
            "/graphql/",
            data=json.dumps({"query": INITIATE, "variables": variables}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        answers.append(response.json()["data"]["initiatePayment"]["payment"]["id"])

    assert run_together(push, rounds=4) == []
    assert Payment.objects.count() == 1
    assert set(answers) == {str(Payment.objects.get().pk)}
