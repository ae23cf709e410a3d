"""Bodies built to crash or to leak: JSON the database or the parser cannot take is a 400, never a
500; a stored body never keeps the webhook challenge in clear; a webhook whose follow-up job
cannot be queued is a 503 so IntaSend delivers it again (API.md "Webhook")."""

from __future__ import annotations

import json
import socket

import pytest
from huey import RedisHuey

from billing.models import Payment, WebhookDelivery
from billing.tasks import confirm_payment_with_gateway
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

CHALLENGE = "webhook-challenge-1"


def post_webhook(client, raw: str | bytes, content_type: str = "application/json"):
    return client.post("/payments/webhook/", data=raw, content_type=content_type)


@pytest.fixture
def processing(gql, shop) -> Payment:
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert result["errors"] == []
    return Payment.objects.get(pk=result["payment"]["id"])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_webhook_with_non_finite_number_is_a_400(client, shop, processing, number):
    body = shop.intasend.webhook_body(processing.intasend_invoice_id, challenge=CHALLENGE)
    raw = json.dumps(body)[:-1] + f', "value": {number}}}'
    response = post_webhook(client, raw)
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "INVALID" and CHALLENGE not in delivery.raw_body


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_webhook_of_deeply_nested_arrays_is_a_400(client, db, depth):
    response = post_webhook(client, "[" * depth + "]" * depth)
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().outcome == "INVALID"


def test_graphql_variables_nested_30000_deep_are_a_400(client, db):
    variables = "[" * 30_000 + "]" * 30_000
    raw = '{"query": "query($x: JSON) { __typename }", "variables": {"x": ' + variables + "}}"
    response = client.post("/graphql/", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_graphql_variables_nested_in_a_get_query_string_are_a_400(client, db):
    variables = "[" * 5_000 + "]" * 5_000
    response = client.get("/graphql/", {"query": "{ __typename }", "variables": variables})
    assert response.status_code == 400


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_graphql_body_with_non_finite_number_is_a_400(client, db, number):
    raw = '{"query": "query($x: Float) { __typename }", "variables": {"x": ' + number + "}}"
    response = client.post("/graphql/", data=raw, content_type="application/json")
    assert response.status_code == 400


def test_ordinary_graphql_still_works(client, db):
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": "{ __typename }", "variables": {"a": [[1, 2.5]]}}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


def test_form_encoded_webhook_is_stored_with_the_challenge_redacted(client, shop, processing):
    raw = f"invoice_id={processing.intasend_invoice_id}&api_ref={processing.pk}&state=COMPLETE&challenge={CHALLENGE}"
    response = post_webhook(client, raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    stored = WebhookDelivery.objects.get().raw_body
    assert CHALLENGE not in stored and "redacted" in stored
    assert processing.intasend_invoice_id in stored  # the rest is kept for the support desk


def test_multipart_webhook_is_stored_with_the_challenge_redacted(client, shop, processing):
    response = client.post("/payments/webhook/", data={"api_ref": str(processing.pk), "challenge": CHALLENGE})
    assert response.status_code == 400
    assert CHALLENGE not in WebhookDelivery.objects.get().raw_body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_answers_503_when_the_confirmation_cannot_be_queued(client, shop, processing, monkeypatch):
    # Redis is down: a real Redis client against a closed loopback port.
    unreachable = RedisHuey("cloudpilot-test", url=f"redis://127.0.0.1:{closed_port()}/0", immediate=False)
    monkeypatch.setattr(confirm_payment_with_gateway, "huey", unreachable)
    shop.intasend.settle(processing.intasend_invoice_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(processing.intasend_invoice_id, challenge=CHALLENGE)

    response = post_webhook(client, json.dumps(body))

    assert response.status_code == 503  # IntaSend retries; a 200 would lose the news
    assert WebhookDelivery.objects.get().http_status == 503
    processing.refresh_from_db()
    assert processing.status == "PROCESSING"

    monkeypatch.undo()  # the queue is back: IntaSend's retry goes through
    assert post_webhook(client, json.dumps(body)).status_code == 200
    processing.refresh_from_db()
    assert processing.status == "COMPLETED"
