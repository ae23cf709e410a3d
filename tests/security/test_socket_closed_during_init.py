"""A socket that goes away while its connection_init is still being checked gives back everything
(red team, 2026-12-01: HIGH). The credentials lookup runs on a database thread; strawberry's
disconnect waits for the socket's handler, which then finished connection_init for a socket already
gone: it took a place under the per-key (or per-operator) cap and joined the credentials group after
`disconnect` had released and left them. About 1,000 handshakes with only the public key (printed on
every hotspot's login page) closed every portal of that operator out of WebSockets until a restart,
and each left its consumer in the process for good."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from project import consumers, metrics, socket_caps
from project.live_hub import LiveHub
from project.socket_caps import open_sockets

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_credentials(monkeypatch):
    """The credentials lookup waits until the test lets it go."""
    release = asyncio.Event()
    looked_up = asyncio.Event()
    real = consumers.socket_principal

    async def held(credentials):
        looked_up.set()
        await release.wait()
        return await real(credentials)

    monkeypatch.setattr(consumers, "socket_principal", held)
    return looked_up, release


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize("who", ["public key", "operator token"])
async def test_a_socket_closed_before_its_init_is_answered_leaves_nothing(operator, slow_credentials, protocol, who):
    from project.asgi import application

    looked_up, release = slow_credentials
    key, token = await sync_to_async(lambda: (operator.public_key, operator.tokens.access_token))()
    payload = {"X-Public-Key": key} if who == "public key" else {"Authorization": f"Bearer {token}"}
    opened_before = metrics.open_socket_count()

    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[protocol])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": payload})
    await asyncio.wait_for(looked_up.wait(), 5)
    await ws.send_input({"type": "websocket.disconnect", "code": 1006})  # the client is gone
    await asyncio.sleep(0.05)
    release.set()  # only now do the credentials come back
    await ws.wait(timeout=5)

    assert open_sockets() == ({}, {}), "the closed socket still holds a place under the caps"
    assert dict(socket_caps._open_by_operator_token.counts) == {}
    assert asyncio.get_running_loop() not in LiveHub._hubs, "a credentials group still holds the closed socket"
    assert metrics.open_socket_count() == opened_before


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_socket_that_never_sends_connection_init_is_closed_4408(protocol):
    """graphql-ws sockets that never authenticated stayed open for good (red team); both protocols
    now close them after connection_init_wait_timeout, as graphql-transport-ws says."""
    from datetime import timedelta

    from project.consumers import GraphQLConsumer
    from project.schema import schema

    application = GraphQLConsumer.as_asgi(schema=schema, connection_init_wait_timeout=timedelta(seconds=0.3))
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[protocol])
    assert (await ws.connect())[0]
    assert await ws.receive_output(timeout=3) == {
        "type": "websocket.close",
        "code": 4408,
        "reason": "Connection initialisation timeout",
    }
    await ws.disconnect()


async def test_a_slow_legacy_connection_init_is_not_cut_short(operator, slow_credentials):
    """The wait is for the init to arrive, not for its credentials to be checked."""
    from datetime import timedelta

    from project.consumers import GraphQLConsumer
    from project.schema import schema

    looked_up, release = slow_credentials
    key = await sync_to_async(lambda: operator.public_key)()
    application = GraphQLConsumer.as_asgi(schema=schema, connection_init_wait_timeout=timedelta(seconds=0.3))
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": {"X-Public-Key": key}})
    await asyncio.wait_for(looked_up.wait(), 5)
    await asyncio.sleep(0.5)  # past the timeout, the check still running
    release.set()
    assert await ws.receive_json_from(timeout=3) == {"type": "connection_ack"}
    await ws.disconnect()
