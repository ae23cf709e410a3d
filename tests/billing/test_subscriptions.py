"""paymentUpdates / operatorPaymentUpdates in-process, through the ASGI app's WebSocket route."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from strawberry.channels.testing import GraphQLWebsocketCommunicator
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL

from billing import services
from billing.models import Payment, PaymentEvent
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) {"
    " paymentUpdates(paymentId: $id, clientSecret: $secret) { id status phoneNumber failureReason } }"
)
OPERATOR_SUBSCRIBE = "subscription($r: ID) { operatorPaymentUpdates(routerId: $r) { id status } }"


@pytest.fixture
def application():
    from project.asgi import application

    return application


@pytest.fixture
def portal(shop) -> dict[str, str]:
    return {"X-Public-Key": shop.operator.public_key}


@pytest.fixture
def processing(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    return Payment.objects.get(pk=result["payment"]["id"])


apply_state = sync_to_async(services.payment_apply_gateway_state)


async def test_portal_gets_current_state_then_changes_until_failed(application, portal, processing):
    params = portal
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(SUBSCRIBE, {"id": str(processing.pk), "secret": processing.client_secret})
        first = await stream.__anext__()
        assert first.data["paymentUpdates"]["status"] == "PROCESSING"
        assert first.data["paymentUpdates"]["phoneNumber"] == "2547******78"  # portal view
        await apply_state(
            payment_id=processing.pk,
            source=PaymentEvent.Source.WEBHOOK,
            state="FAILED",
            raw={},
            failed_reason="Request cancelled by user",
        )
        failed = await stream.__anext__()
        assert failed.data["paymentUpdates"]["status"] == "FAILED"
        assert failed.data["paymentUpdates"]["failureReason"] == "Request cancelled by user"
        with pytest.raises(StopAsyncIteration):  # the server completes the stream
            await stream.__anext__()


async def test_changes_without_a_hint_arrive_by_resync(application, shop, processing, settings):
    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.3
    params = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(SUBSCRIBE, {"id": str(processing.pk)})
        assert (await stream.__anext__()).data["paymentUpdates"]["phoneNumber"] == "254712345678"
        # A write that publishes nothing (as if the hint were lost) is still seen.
        await Payment.objects.filter(pk=processing.pk).aupdate(
            status="FAILED", failure_reason="lost hint", updated_at=timezone.now()
        )
        assert (await stream.__anext__()).data["paymentUpdates"]["failureReason"] == "lost hint"


async def test_someone_elses_payment_is_not_found(application, processing, other_operator):
    params = await sync_to_async(lambda: {"X-Public-Key": other_operator.public_key})()
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        result = await ws.subscribe(SUBSCRIBE, {"id": str(processing.pk)}).__anext__()
        assert result.errors[0].message == "Payment not found or access denied"


async def test_portal_key_cannot_watch_the_operator_stream(application, portal):
    params = portal
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        result = await ws.subscribe(OPERATOR_SUBSCRIBE, {}).__anext__()
        assert result.errors[0].extensions["code"] == "UNAUTHENTICATED"


async def test_operator_stream_follows_one_router(application, gql, shop):
    second_router = await sync_to_async(shop.operator.add_router)(name="Second")
    second_package = await sync_to_async(shop.operator.add_package)(second_router)
    params = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(OPERATOR_SUBSCRIBE, {"r": str(shop.router.pk)})
        # The stream yields only what changes after it started: subscribe before paying.
        seen = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.5)
        run = sync_to_async(gql)
        # A payment on the other router is not reported; one on the watched router is.
        await run(
            INITIATE,
            {"input": shop.payment_input(routerId=str(second_router.pk), packageId=str(second_package.pk))},
            **shop.operator.auth,
        )
        mine = await run(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)
        seen = await asyncio.wait_for(seen, 5)
        assert seen.data["operatorPaymentUpdates"]["id"] == mine["data"]["initiatePayment"]["payment"]["id"]


async def test_legacy_graphql_ws_protocol_with_header_credentials(application, portal, processing):
    # strawberry's test communicator only reads graphql-transport-ws frames: speak graphql-ws by hand.
    ws = WebsocketCommunicator(
        application,
        "/graphql/",
        headers=[(b"x-public-key", portal["X-Public-Key"].encode())],
        subprotocols=["graphql-ws"],
    )
    assert await ws.connect() == (True, "graphql-ws")
    await ws.send_json_to({"type": "connection_init"})
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    variables = {"id": str(processing.pk), "secret": processing.client_secret}
    await ws.send_json_to({"type": "start", "id": "1", "payload": {"query": SUBSCRIBE, "variables": variables}})
    message = await ws.receive_json_from(timeout=3)
    assert message["type"] == "data" and message["payload"]["data"]["paymentUpdates"]["status"] == "PROCESSING"
    await ws.disconnect()


@pytest.mark.parametrize("params", [{}, {"X-Public-Key": "0" * 32}, {"Authorization": "Bearer nope"}])
async def test_bad_credentials_close_with_4403(application, shop, params):
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": params})
    assert await ws.receive_output(timeout=3) == {
        "type": "websocket.close",
        "code": 4403,
        "reason": "Invalid or missing credentials",
    }


async def test_a_consumer_cancelled_at_once_still_ends(application, shop):
    """Daphne cancels a consumer whose client went away, often while its first channel-layer read is
    still being sent. On Python 3.11 redis-py's write timeout (asyncio.wait_for) could swallow that
    cancellation, and the consumer then read Redis forever (the CI hang of the 4403 tests)."""
    for _ in range(10):
        ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "connection_init", "payload": {}})
        assert (await ws.receive_output(timeout=3))["code"] == 4403
        ws.future.cancel()
        done, _ = await asyncio.wait({ws.future}, timeout=10)
        assert done, "the consumer ignored its cancellation"


async def test_operator_stream_resyncs_without_leaving_its_group(application, shop, processing, settings):
    """Resync ticks come from a timer, not from a timed-out read: the stream stays in its group
    (it once left and rejoined it every tick, through an asyncio.wait_for that can swallow a
    cancellation on Python 3.11), and a change nobody published still arrives."""
    from channels.layers import get_channel_layer

    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.3
    layer = get_channel_layer()
    discards = []
    original_discard = layer.group_discard

    async def counting_discard(group, channel):
        discards.append(group)
        await original_discard(group, channel)

    layer.group_discard = counting_discard
    try:
        earlier = timezone.now() - timedelta(minutes=1)
        await Payment.objects.filter(pk=processing.pk).aupdate(updated_at=earlier)  # not news to the stream
        params = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
        async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
            first = asyncio.ensure_future(ws.subscribe(OPERATOR_SUBSCRIBE, {}).__anext__())
            await asyncio.sleep(1)  # three ticks
            await Payment.objects.filter(pk=processing.pk).aupdate(
                status="FAILED", failure_reason="lost hint", updated_at=timezone.now()
            )
            seen = await asyncio.wait_for(first, 3)
            assert seen.data["operatorPaymentUpdates"] == {"id": str(processing.pk), "status": "FAILED"}
            assert discards == []
    finally:
        del layer.group_discard


async def test_subscriptions_per_connection_are_capped(application, portal, processing, settings):
    params = portal
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        for index in range(settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS + 1):
            await ws.send_json_to(
                {
                    "id": f"s{index}",
                    "type": "subscribe",
                    "payload": {
                        "query": SUBSCRIBE,
                        "variables": {"id": str(processing.pk), "secret": processing.client_secret},
                    },
                }
            )
        replies = [await ws.receive_json_from(timeout=3) for _ in range(settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS + 1)]
        assert sum(1 for reply in replies if reply["type"] == "next") == settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS
        refused = [reply for reply in replies if reply["type"] == "error"]
        assert [reply["id"] for reply in refused] == [f"s{settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS}"]
        # Coded like every error (strawberry's own refusal had no code)
        assert refused[0]["payload"][0]["extensions"] == {"code": "RATE_LIMITED"}
        assert "Subscription limit reached" in refused[0]["payload"][0]["message"]


async def test_subscriptions_per_connection_are_capped_on_the_legacy_protocol(
    application, portal, processing, settings
):
    cap = settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS
    # strawberry's test communicator only reads graphql-transport-ws frames: speak graphql-ws by hand.
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[GRAPHQL_WS_PROTOCOL])
    assert (await ws.connect())[0]
    try:
        await ws.send_json_to({"type": "connection_init", "payload": portal})
        assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
        payload = {"query": SUBSCRIBE, "variables": {"id": str(processing.pk), "secret": processing.client_secret}}
        for index in range(cap + 1):
            await ws.send_json_to({"id": f"s{index}", "type": "start", "payload": payload})
        replies = [await ws.receive_json_from(timeout=3) for _ in range(cap + 1)]
        assert sorted(reply["type"] for reply in replies) == ["data"] * cap + ["error"]
        refused = next(reply for reply in replies if reply["type"] == "error")
        assert refused["id"] == f"s{cap}"
        assert refused["payload"]["extensions"] == {"code": "RATE_LIMITED"}
        # A start reusing a running operation's id replaces it: the limit does not refuse it.
        await ws.send_json_to({"id": "s0", "type": "start", "payload": payload})
        replaced = [await ws.receive_json_from(timeout=3) for _ in range(2)]
        assert [(reply["id"], reply["type"]) for reply in replaced] == [("s0", "complete"), ("s0", "data")]
    finally:
        await ws.disconnect()


async def test_stream_ends_when_the_access_token_expires(application, shop, processing, settings):
    import time

    import jwt

    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.3
    now = int(time.time())
    short_lived = jwt.encode(
        {
            "sub": str(shop.operator.user.pk),
            "typ": "access",
            "iat": now,
            "exp": now + 2,
            "gen": 0,
            "jti": "short",
            "fam": "00000000-0000-0000-0000-000000000000",
        },
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    params = {"Authorization": f"Bearer {short_lived}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(SUBSCRIBE, {"id": str(processing.pk)})
        assert (await stream.__anext__()).data["paymentUpdates"]["status"] == "PROCESSING"
        ended = await stream.__anext__()  # within a resync tick of the expiry
        assert ended.errors[0].extensions["code"] == "UNAUTHENTICATED"
