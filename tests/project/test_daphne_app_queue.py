"""Issue 14 item 4: daphne's per-connection queue of ASGI events is a FrameQueue, not an asyncio.Queue."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

from daphne.server import Server

from project.daphne_app_queue import DAPHNE_CREATE_APPLICATION
from project.frame_queue import FrameQueue

# daphne 4.2.3's Server.create_application, which project.daphne_app_queue repeats with the lighter
# queue. If daphne changes it, re-read the new one and carry its changes over before updating this.
DAPHNE_SOURCE_SHA256 = "f1e300b4ecf636c85e1a66250e32af2ebb67728f01919678d43e80c794a79a87"


def test_daphnes_create_application_is_the_one_repeated():
    source = inspect.getsource(DAPHNE_CREATE_APPLICATION)
    assert hashlib.sha256(source.encode()).hexdigest() == DAPHNE_SOURCE_SHA256


async def test_the_server_gives_each_connection_a_frame_queue_that_feeds_its_application():
    import project.asgi  # noqa: F401  (the server installs the change)

    received: list[dict] = []

    async def application(scope, receive, send):
        received.append(await receive())
        received.append(await receive())

    server = Server.__new__(Server)
    server.application, server.connections = application, {}
    protocol = object()
    server.connections[protocol] = {}
    queue = server.create_application(protocol, {"type": "websocket"})
    assert isinstance(queue, FrameQueue)
    assert queue  # daphne's HTTP protocol tests `if self.application_queue:`
    queue.put_nowait({"type": "websocket.connect"})
    await asyncio.sleep(0)
    queue.put_nowait({"type": "websocket.receive", "text": "1"})
    await asyncio.wait_for(server.connections[protocol]["application_instance"], 1)
    assert received == [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "1"}]


async def test_a_frame_queue_keeps_order_and_survives_a_cancelled_get():
    queue = FrameQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    for frame in ("a", "b", "c"):
        queue.put_nowait(frame)
    assert [await queue.get(), await queue.get(), await queue.get()] == ["a", "b", "c"]
    later = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not later.done()
    queue.put_nowait("d")
    assert await asyncio.wait_for(later, 1) == "d"
