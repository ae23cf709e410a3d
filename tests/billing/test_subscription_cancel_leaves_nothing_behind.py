"""A subscription cancelled mid-read leaves nothing of itself in the process's live hub.

Portals close their sockets at any moment, often while their subscription waits for the read a
hint started. The subscription's watch, the followed payment, the process's group membership and
its hub must all be gone once the socket is, or every portal that ever connected would stay in
memory and its payment's group would be joined forever. (It wraps billing.subscriptions' own batched
read to hold it open; nothing else is replaced.)
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing import services, subscriptions
from billing.models import Payment, PaymentEvent
from project.live_hub import LiveHub
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { status } }"
)


@pytest.fixture
def processing(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    return Payment.objects.get(pk=result["payment"]["id"])


async def test_a_stream_cancelled_during_its_read_leaves_the_hub(monkeypatch, shop, processing, gql):
    from project.asgi import application

    reads, read_started, release = 0, asyncio.Event(), asyncio.Event()
    original_read = subscriptions._LiveUpdates._batched

    async def held_second_read(self, *args, **kwargs):
        nonlocal reads
        reads += 1
        if reads == 2:  # the first read answers; the one a change wakes is held open
            read_started.set()
            await release.wait()
        return await original_read(self, *args, **kwargs)

    monkeypatch.setattr(subscriptions._LiveUpdates, "_batched", held_second_read)

    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    ws = GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal)
    await ws.__aenter__()
    stream = ws.subscribe(SUBSCRIBE, {"id": str(processing.pk), "secret": processing.client_secret})
    assert (await stream.__anext__()).data["paymentUpdates"]["status"] == "PROCESSING"
    loop = asyncio.get_running_loop()
    assert str(processing.pk) in subscriptions._LiveUpdates._here[loop].payments
    await sync_to_async(services.payment_apply_gateway_state)(
        payment_id=processing.pk, source=PaymentEvent.Source.WEBHOOK, state="FAILED", raw={}, failed_reason="x"
    )
    await asyncio.wait_for(read_started.wait(), 5)

    await ws.__aexit__(None, None, None)  # the socket goes: strawberry cancels the operation's task
    await asyncio.sleep(0.2)

    assert loop not in subscriptions._LiveUpdates._here, "the followed payment outlived its last subscriber"
    assert loop not in LiveHub._hubs, "the process still listens for a socket that is gone"
    release.set()
