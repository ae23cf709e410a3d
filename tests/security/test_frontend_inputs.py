"""Found from outside after the frontend release: inputs that reached the database or strawberry's
internals and came back as a 500 or an INTERNAL error (API.md: bad input gets a clear error with a
stable code and changes nothing; no input produces a 500).

NUL and unpaired surrogates (``"\\u0000"``, ``"\\ud800"``) are text no database column stores; a JSON
body that is not an object, a non-string operationName, a subscription sent over HTTP or a query
started on the legacy graphql-ws protocol crashed strawberry's readers; a filter date with no UTC
form overflowed inside the query.
"""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from billing.models import Payment, PaymentCredential, WebhookDelivery
from network.models import Package
from tests.documents import INITIATE, PAYMENT, PAYMENTS

pytestmark = pytest.mark.django_db

TOKEN_AUTH = (
    "mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) { accessToken errors { code } } }"
)
ADD_CREDENTIAL = (
    "mutation($input: AddPaymentCredentialInput!) { addPaymentCredential(input: $input) {"
    " credential { id } errors { field code message } } }"
)
UNSTORABLE = ["a\u0000b", "\ud800", "x\udfff"]


def post_raw(client, body: str, **headers: str):
    return client.post(
        "/graphql/", data=body.encode("utf-8", "surrogatepass"), content_type="application/json", headers=headers
    )


def post(client, query: str, variables: dict, **headers: str):
    # json.dumps escapes lone surrogates as \ud800, exactly as a hostile client would send them.
    return post_raw(client, json.dumps({"query": query, "variables": variables}), **headers)


@pytest.mark.parametrize("text", UNSTORABLE)
def test_unstorable_text_in_variables_is_a_400_not_a_500(client, shop, text):
    portal = {"X-Public-Key": shop.operator.public_key}
    attempts = [
        post(client, TOKEN_AUTH, {"u": text, "p": "x"}),
        post(client, TOKEN_AUTH, {"u": "demo", "p": text}),
        post(client, INITIATE, {"input": shop.payment_input(idempotencyKey="k" * 32 + text)}, **portal),
        post(client, INITIATE, {"input": shop.payment_input(renewCode=text)}, **portal),
        post(client, PAYMENT, {"id": "00000000-0000-4000-8000-000000000000", "secret": text}, **portal),
    ]
    for answer in attempts:
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert not Payment.objects.exists()


@pytest.mark.parametrize("literal", ["zz\\u0000zz", "\\ud800"])
def test_unstorable_text_written_into_the_query_is_a_validation_error(client, operator, literal):
    router = operator.add_router()
    query = (
        f'mutation {{ createPackage(input: {{routerId: "{router.pk}", name: "{literal}", price: "25",'
        " durationMinutes: 30}) { package { id } errors { code } } }"
    )
    answer = post(client, query, {}, Authorization=f"Bearer {operator.tokens.access_token}")
    body = answer.json()
    assert body["data"] is None
    assert "extensions" not in body["errors"][0] or body["errors"][0]["extensions"].get("code") != "INTERNAL"
    assert not Package.objects.exists()


@pytest.mark.django_db(transaction=True)  # the webhook is recorded on its own thread and connection
@pytest.mark.parametrize("body", ['{"invoice_id": "A\\u0000"}', '{"api_ref": "\\ud800"}'])
def test_unstorable_text_in_a_webhook_is_a_400(client, body):
    answer = client.post("/payments/webhook/", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert not WebhookDelivery.objects.filter(http_status=500).exists()


@pytest.mark.parametrize("body", ['"str"', "null", "5", "true", "1.5", '""'])
def test_a_json_body_that_is_not_an_object_is_a_400(client, body):
    answer = post_raw(client, body)
    assert answer.status_code == 400
    graphql_response = post_raw(client, body, Accept="application/graphql-response+json")
    assert graphql_response.status_code == 400
    assert graphql_response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("operation_name", [5, ["x"], {"a": 1}])
def test_an_operation_name_that_is_not_a_string_is_a_400(client, operation_name):
    answer = post_raw(client, json.dumps({"query": "{ __typename }", "operationName": operation_name}))
    assert answer.status_code == 400


def test_a_subscription_over_http_is_refused_not_an_internal_error(client, operator):
    answer = post(
        client,
        "subscription { operatorPaymentUpdates { id } }",
        {},
        Authorization=f"Bearer {operator.tokens.access_token}",
    )
    assert answer.status_code == 400
    assert b"subscriptions are not allowed" in answer.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("document", ["{ __typename }", "mutation { revokeTokens { errors { code } } }"])
async def test_a_query_started_on_legacy_graphql_ws_gets_a_coded_refusal(shop, document):
    from project.asgi import application

    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}}
    )
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    await ws.send_json_to({"type": "start", "id": "1", "payload": {"query": document}})
    message = await ws.receive_json_from(timeout=3)
    assert message["type"] == "error"
    assert message["payload"]["extensions"]["code"] == "INVALID_INPUT"
    assert "graphql-transport-ws" in message["payload"]["message"]
    await ws.disconnect()


def test_credential_fields_over_their_length_say_so_and_store_nothing(gql, operator):
    answer = gql(
        ADD_CREDENTIAL,
        {
            "input": {
                "apiKey": "k" * 314,
                "privateKey": "p" * 2017,
                "environment": "SANDBOX",
                "webhookChallenge": "c" * 5000,
            }
        },
        **operator.auth,
    )["data"]["addPaymentCredential"]
    messages = {error["field"]: error["message"] for error in answer["errors"]}
    assert messages == {
        "apiKey": "apiKey must be at most 255 characters",
        "privateKey": "privateKey must be at most 1024 characters",
        "webhookChallenge": "webhookChallenge must be at most 255 characters",
    }
    assert not PaymentCredential.objects.exists()


@pytest.mark.parametrize("name", ["createdAfter", "createdBefore"])
@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"])
def test_a_filter_date_with_no_utc_form_is_invalid_input(gql, operator, name, instant):
    answer = gql(PAYMENTS, {"filters": {name: instant}}, **operator.auth)
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_a_filter_date_without_an_offset_is_read_as_utc(gql, operator):
    answer = gql(PAYMENTS, {"filters": {"createdAfter": "0001-01-01T00:00:00"}}, **operator.auth)
    assert answer["data"]["payments"]["totalCount"] == 0  # found by the fuzzer: year 0 out of range


def test_a_negative_page_size_is_invalid_input_like_a_negative_offset(gql, operator):
    for pagination in ({"limit": -1}, {"offset": -1}):
        answer = gql(PAYMENTS, {"pagination": pagination}, **operator.auth)
        assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_upload_limit_is_a_coded_413(client):
    answer = post(client, "{ __typename }", {"pad": "x" * 2000})
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert answer["Cache-Control"] == "private, no-store"


def test_a_scoped_ipv6_address_is_not_a_device_address(gql, shop):
    answer = gql(INITIATE, {"input": shop.payment_input(ipAddress="::ffff:127.0.0.1%eth0")}, **shop.operator.portal)
    assert [error["code"] for error in answer["data"]["initiatePayment"]["errors"]] == ["INVALID_IP"]
    assert not Payment.objects.exists()
