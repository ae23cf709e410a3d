"""A subscription cancelled mid-read closes its inner generators in its own task.

Found from outside: portals closing their sockets made the server log ERROR lines ("Task exception was
never retrieved ... aclose(): asynchronous generator is already running"). A cancellation landing
while `paymentUpdates` awaited its database read left the wake-up generator suspended; the garbage
collector's finalizer then closed it and the channel-listening generators it holds concurrently, each
`aclose()` finding another still running. That only shows when a collection runs at the wrong moment,
so this test checks the cause directly: right after the cancellation, with no collection, the wake-up
generator must already be closed. (It wraps billing.subscriptions' own `_wake_ups` and `load` to see
the generator and to hold the read open; nothing else is replaced.)
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing import services, subscriptions
from billing.models import Payment, PaymentEvent
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { status } }"
)


@pytest.fixture
def processing(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    return Payment.objects.get(pk=result["payment"]["id"])


async def test_a_stream_cancelled_during_its_read_has_closed_its_wake_up_generator(monkeypatch, shop, processing, gql):
    from project.asgi import application

    generators = []
    original_wake_ups = subscriptions._wake_ups

    def recording_wake_ups(*args, **kwargs):
        generator = original_wake_ups(*args, **kwargs)
        generators.append(generator)
        return generator

    monkeypatch.setattr(subscriptions, "_wake_ups", recording_wake_ups)

    reads, read_started, release = 0, asyncio.Event(), asyncio.Event()
    original_load = subscriptions._PaymentLoads.load

    async def held_second_read(self, *args, **kwargs):
        nonlocal reads
        reads += 1
        if reads == 2:  # the first read answers; the one a change wakes is held open
            read_started.set()
            await release.wait()
        return await original_load(self, *args, **kwargs)

    monkeypatch.setattr(subscriptions._PaymentLoads, "load", held_second_read)

    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    ws = GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal)
    await ws.__aenter__()
    stream = ws.subscribe(SUBSCRIBE, {"id": str(processing.pk), "secret": processing.client_secret})
    assert (await stream.__anext__()).data["paymentUpdates"]["status"] == "PROCESSING"
    await sync_to_async(services.payment_apply_gateway_state)(
        payment_id=processing.pk, source=PaymentEvent.Source.WEBHOOK, state="FAILED", raw={}, failed_reason="x"
    )
    await asyncio.wait_for(read_started.wait(), 5)

    await ws.__aexit__(None, None, None)  # the socket goes: strawberry cancels the operation's task
    await asyncio.sleep(0.2)

    assert generators, "the subscription made no wake-up generator"
    assert all(generator.ag_frame is None for generator in generators), "left for the garbage collector"
    release.set()
