"""daphne's queue of ASGI events per connection is a FrameQueue (project.frame_queue), not an
asyncio.Queue: ~3 KiB less per idle socket (issue 14 item 4).

daphne 4.2 makes the queue inside `Server.create_application` and only ever calls `put_nowait`
on it (its protocols) and `get` (the application's `receive`). This is that method with the
lighter queue; tests/project/test_daphne_app_queue.py fails if daphne's own method changes.
"""

from __future__ import annotations

import asyncio
from functools import partial

from daphne.server import Server

from project.frame_queue import FrameQueue

DAPHNE_CREATE_APPLICATION = Server.create_application
# The scope key of a socket's incoming queue (project.ws_pacing stops waiting once the client is gone).
CLIENT_FRAMES = "cloudpilot.client_frames"


def _create_application(self: Server, protocol, scope):
    assert "application_instance" not in self.connections[protocol]
    input_queue = FrameQueue()
    scope.setdefault("asgi", {"version": "3.0"})
    scope[CLIENT_FRAMES] = input_queue  # the consumer's pacing waits end when the client leaves
    application_instance = self.application(
        scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
    )
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop()
    )
    return input_queue


def install() -> None:
    Server.create_application = _create_application
