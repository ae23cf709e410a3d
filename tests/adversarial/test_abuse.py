"""Hostile portal visitors: oversized bodies, deep/wide queries, alias bombs, brute force, spam."""

from __future__ import annotations

import json

import pytest

from billing.models import Payment
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db


def test_oversized_graphql_body_is_refused_before_parsing(client, operator):
    body = json.dumps({"query": "{ me { id } }", "variables": {"pad": "x" * 400_000}})
    response = client.post(
        "/graphql/",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {operator.tokens.access_token}"},
    )
    assert response.status_code in (400, 413)


def test_deep_queries_are_refused_even_through_fragments(settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    from project.schema import build_schema

    shallow = build_schema(debug=True)
    for query in (
        "{ payments { results { package { router { id } } } } }",
        "{ payments { ...Page } } fragment Page on PaymentOffsetPaginated { results { package { router { id } } } }",
    ):
        result = shallow.execute_sync(query)
        assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


def test_alias_bomb_is_refused_without_running_resolvers(gql, operator, django_assert_max_num_queries):
    bomb = "{ " + " ".join(f"p{i}: paymentCredentials {{ id }}" for i in range(100)) + " }"
    with django_assert_max_num_queries(2):  # the auth lookup at most; no resolver runs
        body = gql(bomb, **operator.auth)
    assert body["data"] is None and "aliases" in body["errors"][0]["message"].lower()


def test_token_flood_is_refused(gql, operator):
    body = gql("{ me { " + "id " * 5000 + "} }", **operator.auth)
    assert body["data"] is None


def test_batched_requests_are_not_accepted(client, operator):
    batch = json.dumps([{"query": "{ me { id } }"}] * 50)
    response = client.post(
        "/graphql/",
        data=batch,
        content_type="application/json",
        headers={"Authorization": f"Bearer {operator.tokens.access_token}"},
    )
    assert response.status_code == 400


def test_mutations_over_get_are_refused(client, operator):
    response = client.get(
        "/graphql/",
        {"query": "mutation { rotatePublicKey { publicKey } }"},
        headers={"Authorization": f"Bearer {operator.tokens.access_token}"},
    )
    assert response.status_code in (400, 405)


def test_token_auth_brute_force_is_throttled_per_ip(gql, operator, settings):
    settings.LOGIN_RATE_LIMIT_PER_IP = 5
    query = 'mutation($u: String!) { tokenAuth(username: $u, password: "x") { errors { code } } }'
    codes = [gql(query, {"u": f"user{i}"})["data"]["tokenAuth"]["errors"][0]["code"] for i in range(8)]
    assert codes[:5] == ["AUTHENTICATION_FAILED"] * 5
    assert codes[5:] == ["RATE_LIMITED"] * 3


def test_stk_spam_to_one_phone_from_a_portal_is_throttled(gql, shop, settings):
    settings.PAYMENT_RATE_LIMIT_PER_PHONE = 3
    codes = []
    for _ in range(6):
        result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["initiatePayment"]
        codes.append(result["errors"][0]["code"] if result["errors"] else "OK")
        Payment.objects.update(status="FAILED")  # let the already-pending rule step aside
    assert codes[:3] == ["OK"] * 3 and codes[3:] == ["RATE_LIMITED"] * 3
    assert len(shop.intasend.requests_to("mpesa-stk-push/")) == 3


@pytest.mark.django_db(transaction=True)
async def test_websocket_subscribe_flood_is_refused_cheaply(gql, shop, settings):
    """Hundreds of subscribe frames on one socket: all past the cap are refused, the socket stays usable."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    key = await sync_to_async(lambda: shop.operator.public_key)()
    started = await sync_to_async(gql)(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)
    payment_id = started["data"]["initiatePayment"]["payment"]["id"]
    secret = started["data"]["initiatePayment"]["payment"]["clientSecret"]
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": {"X-Public-Key": key}})
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    query = "subscription($id: UUID!, $s: String) { paymentUpdates(paymentId: $id, clientSecret: $s) { id } }"
    flood = 300
    for index in range(flood):
        payload = {"query": query, "variables": {"id": payment_id, "s": secret}}
        await ws.send_json_to({"id": f"f{index}", "type": "subscribe", "payload": payload})
    replies = [await ws.receive_json_from(timeout=5) for _ in range(flood)]
    kinds = [reply["type"] for reply in replies]
    assert kinds.count("next") == settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS
    assert kinds.count("error") == flood - settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=3))["type"] == "pong"
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_without_connection_init_is_closed(shop, settings):
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": "subscription { x }"}})
    closed = await ws.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4401, "reason": "Unauthorized"}
