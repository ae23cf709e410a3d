"""routerUpdates over the ASGI app's real WebSocket route: a router's health changes reach its operator only."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from network import health
from network.routeros import RouterUnreachable

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = "subscription($r: ID) { routerUpdates(routerId: $r) { id status lastError } }"


@pytest.fixture
def application(settings):
    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.2
    from project.asgi import application

    return application


def _bearer(operator) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator.tokens.access_token}"}


async def test_a_status_change_is_pushed_to_its_operator_only(application, operator, other_operator):
    router = await sync_to_async(operator.add_router)()
    other = await sync_to_async(operator.add_router)(name="Second")
    async with (
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=_bearer(operator)) as alice,
        GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=_bearer(other_operator)) as bob,
    ):
        watched = alice.subscribe(SUBSCRIBE, {"r": str(router.pk)})
        everything = bob.subscribe(SUBSCRIBE, {})
        seen = asyncio.ensure_future(watched.__anext__())
        bob_saw = asyncio.ensure_future(everything.__anext__())
        await asyncio.sleep(0.5)
        # The other router changes first: not in the watched stream.
        await sync_to_async(health.router_failed)(other.pk, RouterUnreachable("down"))
        await asyncio.sleep(0.5)
        await sync_to_async(health.router_failed)(router.pk, RouterUnreachable("down"))
        result = await asyncio.wait_for(seen, 5)
        assert result.data["routerUpdates"] == {
            "id": str(router.pk),
            "status": "OFFLINE",
            "lastError": "The router's API did not answer (unreachable or timed out)",
        }
        await asyncio.sleep(0.5)
        assert not bob_saw.done()
        bob_saw.cancel()
        await sync_to_async(health.router_answered)(router.pk)
        again = await asyncio.wait_for(watched.__anext__(), 5)
        assert again.data["routerUpdates"]["status"] == "ONLINE"


async def test_a_portal_key_is_refused(application, operator):
    params = {"X-Public-Key": await sync_to_async(lambda: operator.public_key)()}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        result = await ws.subscribe(SUBSCRIBE, {}).__anext__()
        assert result.errors[0].extensions["code"] == "UNAUTHENTICATED"
