"""The subscriptions of one process share their channel and their reads (issue 14 items 3 and 4).

One hint reaches every local subscriber of a payment through the process's one channel, the row
is read once for all of them, and each still gets its own view: the operator sees the phone whole,
a portal masked, a wrong client secret nothing. Operator streams of different operators stay apart,
and a credentials hint closes every socket of those credentials. (Reads are counted by wrapping
billing.subscriptions' own read functions; nothing is replaced.)
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing import services, subscriptions
from billing.models import Payment, PaymentEvent
from project.auth import CREDENTIALS_REVOKED, credentials_group
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) {"
    " paymentUpdates(paymentId: $id, clientSecret: $secret) { id status phoneNumber } }"
)
OPERATOR_SUBSCRIBE = "subscription { operatorPaymentUpdates { id status } }"

apply_state = sync_to_async(services.payment_apply_gateway_state)


@pytest.fixture
def application():
    from project.asgi import application

    return application


@pytest.fixture
def processing(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    return Payment.objects.get(pk=result["payment"]["id"])


def counting(monkeypatch, name: str) -> list[int]:
    """How many times billing.subscriptions' read `name` ran, and with how many ids."""
    calls: list[int] = []
    original = getattr(subscriptions, name)

    def counted(*args, **kwargs):
        calls.append(len(args[0]) if isinstance(args[0], list) else 1)
        return original(*args, **kwargs)

    monkeypatch.setattr(subscriptions, name, counted)
    return calls


async def subscribe(ws, operation_id: str, query: str, variables: dict) -> None:
    await ws.send_json_to(
        {"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )


async def frames(ws, count: int) -> dict[str, list[dict]]:
    """The next `count` frames, by operation id."""
    seen: dict[str, list[dict]] = {}
    for _ in range(count):
        frame = await ws.receive_json_from(timeout=5)
        seen.setdefault(frame.get("id"), []).append(frame)
    return seen


async def test_many_subscribers_of_one_payment_share_one_read_and_keep_their_own_view(
    application, shop, processing, monkeypatch
):
    reads = counting(monkeypatch, "_payments")
    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    operator = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    right = {"id": str(processing.pk), "secret": processing.client_secret}
    async with (
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal) as portals,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=operator) as console,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal) as stranger,
    ):
        for index in range(8):
            await subscribe(portals, f"p{index}", SUBSCRIBE, right)
        await subscribe(console, "o", SUBSCRIBE, {"id": str(processing.pk)})
        first = await frames(portals, 8)
        assert {frame["payload"]["data"]["paymentUpdates"]["phoneNumber"] for (frame,) in first.values()} == {
            "2547******78"
        }
        (operator_first,) = (await frames(console, 1))["o"]
        assert operator_first["payload"]["data"]["paymentUpdates"]["phoneNumber"] == "254712345678"

        # A wrong secret, asked for while the others follow the payment, still finds nothing.
        await subscribe(stranger, "w", SUBSCRIBE, {"id": str(processing.pk), "secret": "not-the-secret"})
        (refused,) = (await frames(stranger, 1))["w"]
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "PAYMENT_NOT_FOUND"

        reads.clear()
        await apply_state(
            payment_id=processing.pk, source=PaymentEvent.Source.WEBHOOK, state="FAILED", raw={}, failed_reason="x"
        )
        news = await frames(portals, 16)  # FAILED, then complete, for each of the 8
        assert all(
            [frame["type"] for frame in got] == ["next", "complete"]
            and got[0]["payload"]["data"]["paymentUpdates"]
            == {
                "id": str(processing.pk),
                "status": "FAILED",
                "phoneNumber": "2547******78",
            }
            for got in news.values()
        ), news
        operator_news = (await frames(console, 2))["o"]
        assert operator_news[0]["payload"]["data"]["paymentUpdates"]["phoneNumber"] == "254712345678"
        assert reads == [1], reads  # the 9 woken subscriptions read the row once


async def test_operator_streams_share_one_read_per_operator_and_never_see_another_operators(
    application, gql, shop, other_operator, monkeypatch
):
    reads = counting(monkeypatch, "_changes")
    bob_router = await sync_to_async(other_operator.add_router)()
    bob_package = await sync_to_async(other_operator.add_package)(bob_router)
    bob_payment = await Payment.objects.acreate(
        owner=other_operator.user,
        router=bob_router,
        package=bob_package,
        phone_number="254711111111",
        amount=bob_package.price,
        status=Payment.Status.PROCESSING,
    )
    alice_payment = await sync_to_async(
        lambda: Payment.objects.get(
            pk=gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"][
                "payment"
            ]["id"]
        )
    )()
    alice = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    bob = {"Authorization": f"Bearer {other_operator.tokens.access_token}"}
    async with (
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=alice) as alices,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=bob) as bobs,
    ):
        for index in range(5):
            await subscribe(alices, f"a{index}", OPERATOR_SUBSCRIBE, {})
            await subscribe(bobs, f"b{index}", OPERATOR_SUBSCRIBE, {})
        await asyncio.sleep(0.5)  # every stream is following (nothing is replayed)
        reads.clear()
        await apply_state(
            payment_id=bob_payment.pk, source=PaymentEvent.Source.WEBHOOK, state="FAILED", raw={}, failed_reason="x"
        )
        news = await frames(bobs, 5)
        assert {frame["payload"]["data"]["operatorPaymentUpdates"]["id"] for (frame,) in news.values()} == {
            str(bob_payment.pk)
        }
        await apply_state(
            payment_id=alice_payment.pk, source=PaymentEvent.Source.WEBHOOK, state="FAILED", raw={}, failed_reason="x"
        )
        # Alice's streams hear only of her payment: Bob's change was never hers to see.
        news = await frames(alices, 5)
        assert {frame["payload"]["data"]["operatorPaymentUpdates"]["id"] for (frame,) in news.values()} == {
            str(alice_payment.pk)
        }
        assert len(reads) == 2, reads  # one read per operator's hint, for its 5 streams
        assert await bobs.receive_nothing(timeout=0.5)


async def test_a_credentials_hint_closes_every_socket_of_those_credentials_only(application, shop):
    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    operator = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with (
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=operator) as first,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=operator) as second,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal) as kiosk,
    ):
        group = credentials_group(shop.operator.user.pk)
        await get_channel_layer().group_send(group, {"type": CREDENTIALS_REVOKED, "via": "jwt", "group": group})
        for socket in (first, second):
            closed = await socket.receive_output(timeout=3)
            assert closed == {"type": "websocket.close", "code": 4403, "reason": "Credentials revoked"}
        assert await kiosk.receive_nothing(timeout=0.3)


async def test_idle_operator_streams_cost_no_read_per_resync_and_a_change_without_hint_still_arrives(
    application, gql, shop, settings, monkeypatch
):
    """Red team, issue 14: a tenant's 23,000 operator streams, each woken every resync to scan the
    operator's recent rows, hung a process. The resync now reads one newest change per operator and
    wakes streams only when there is something they have not read."""
    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.2
    reads = counting(monkeypatch, "_changes")
    payment = await sync_to_async(
        lambda: Payment.objects.get(
            pk=gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"][
                "payment"
            ]["id"]
        )
    )()
    operator = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=operator) as console:
        for index in range(3):
            await subscribe(console, f"o{index}", OPERATOR_SUBSCRIBE, {})
        await asyncio.sleep(0.6)  # following, the first reads done
        settled = len(reads)
        await asyncio.sleep(1.2)  # six resync intervals with nothing new
        assert len(reads) == settled, reads
        # A change whose hint was lost (written without one) arrives through the resync.
        await Payment.objects.filter(pk=payment.pk).aupdate(status=Payment.Status.FAILED, updated_at=timezone.now())
        news = await frames(console, 3)
        assert {frame["payload"]["data"]["operatorPaymentUpdates"]["status"] for (frame,) in news.values()} == {
            "FAILED"
        }
