"""A socket whose instance daphne cancels gives back everything it held (red team, issue 14).

daphne cancels an application instance that has not taken its `websocket.disconnect` within
`application_close_timeout` (10 s): after a process stalled, thousands of sockets ended that way,
`disconnect` never ran, and their places under the socket caps stayed taken ("2,204 open" with
none left) along with their subscriptions."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing import subscriptions
from billing.models import Payment
from project.socket_caps import open_sockets
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id } }"


async def test_a_cancelled_instance_releases_its_caps_and_its_subscriptions(gql, shop):
    from project.asgi import application

    result = await sync_to_async(gql)(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)
    payment = await Payment.objects.aget(pk=result["data"]["initiatePayment"]["payment"]["id"])
    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    socket = GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal)
    await socket.__aenter__()  # connect and connection_init, without the exit (daphne does not disconnect)
    await socket.send_json_to(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": {"id": str(payment.pk), "secret": payment.client_secret}},
        }
    )
    assert (await socket.receive_json_from(timeout=5))["type"] == "next"
    assert open_sockets()[1] == {shop.operator.user.pk: 1}

    socket.future.cancel()  # what daphne's application checker does to a stalled instance
    for _ in range(100):
        live = subscriptions._LiveUpdates._here.values()
        if open_sockets() == ({}, {}) and not any(updates.payments for updates in live):
            break
        await asyncio.sleep(0.05)
    assert open_sockets() == ({}, {})
    assert not any(updates.payments for updates in subscriptions._LiveUpdates._here.values())
