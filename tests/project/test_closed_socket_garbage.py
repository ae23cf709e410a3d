"""A closed GraphQL WebSocket is freed by reference counting, not left to the cyclic collector
(issue 14 item 2).

The collector never walks the frozen generation but when few sockets are open (project.gc_tuning),
so a closed socket whose consumer sat in a reference cycle stayed in memory until then, and made
that walk longer. Two cycles held the consumer: strawberry's
finished run task (it returns the consumer) and graphql-core's execution context (its
`async_helpers` are its own bound methods; its context value is the consumer). The same holds when
daphne cancels an application instance that has not finished within its close timeout. (What daphne,
twisted and autobahn leave of a closed socket: tests/project/test_daphne_closed_protocol.py.)"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from graphql.execution.executor import Executor
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing.models import Payment
from project import socket_caps
from project.consumers import GraphQLConsumer
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id } }"


async def _subscribed_socket(gql, shop) -> GraphQLWebsocketCommunicator:
    from project.asgi import application

    result = await sync_to_async(gql)(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)
    payment = await Payment.objects.aget(pk=result["data"]["initiatePayment"]["payment"]["id"])
    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    variables = {"id": str(payment.pk), "secret": payment.client_secret}
    socket = GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal)
    await socket.__aenter__()
    await socket.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}})
    assert (await socket.receive_json_from(timeout=5))["type"] == "next"
    return socket


async def _socket_objects_in_cycles_after(
    end: Callable[[GraphQLWebsocketCommunicator], Awaitable[None]], socket: GraphQLWebsocketCommunicator
) -> list[str]:
    """What of one socket the cyclic collector finds once `end` has ended it and it is gone."""
    sockets = [socket]
    del socket
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage for us to see
    try:
        await end(sockets.pop())  # the last reference goes with the call
        gc.collect()
        return sorted({type(o).__name__ for o in gc.garbage if isinstance(o, (GraphQLConsumer, Executor))})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def _disconnect(socket: GraphQLWebsocketCommunicator) -> None:
    await socket.disconnect()


async def _cancel(socket: GraphQLWebsocketCommunicator) -> None:
    socket.future.cancel()  # what daphne does to an instance still running after its close timeout
    await asyncio.wait([socket.future])
    assert socket.future.cancelled()
    assert socket_caps._cleanups  # the disconnect it never took runs on its own
    await asyncio.gather(*socket_caps._cleanups)


async def test_a_closed_subscribed_socket_leaves_no_consumer_or_execution_in_a_cycle(gql, shop):
    assert await _socket_objects_in_cycles_after(_disconnect, await _subscribed_socket(gql, shop)) == []


async def test_a_cancelled_socket_leaves_no_consumer_or_execution_in_a_cycle(gql, shop):
    assert await _socket_objects_in_cycles_after(_cancel, await _subscribed_socket(gql, shop)) == []


async def _operators_in_cycles_after_closing(socket: GraphQLWebsocketCommunicator) -> list[str]:
    from django.contrib.auth import get_user_model

    from billing.models import OperatorProfile

    sockets = [socket]
    del socket
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await sockets.pop().disconnect()
        gc.collect()
        return sorted({type(o).__name__ for o in gc.garbage if isinstance(o, (get_user_model(), OperatorProfile))})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("who", ["public key", "operator token"])
async def test_a_closed_socket_leaves_its_operator_in_no_cycle(gql, shop, who):
    """select_related cached the principal's User and OperatorProfile on each other: the one cycle
    each closed socket still left for the frozen generation's walk (issue 14 item 2)."""
    from project.asgi import application

    if who == "public key":
        params = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}
    else:
        params = {"Authorization": f"Bearer {await sync_to_async(lambda: shop.operator.tokens.access_token)()}"}
    socket = GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params)
    await socket.__aenter__()
    await socket.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": "query { __typename }"}})
    assert (await socket.receive_json_from(timeout=5))["type"] == "next"
    assert await _operators_in_cycles_after_closing(socket) == []
