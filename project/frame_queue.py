"""A queue for one socket's incoming messages that costs nothing while it is empty.

An asyncio.Queue holds four deques and an Event from the start, ~3 KiB, and an idle socket had
two of them (issue 14 item 4): strawberry's queue of frames and daphne's queue of ASGI events.
Both are only ever fed with `put_nowait` and drained by one task with `get`, which is all this
does: the deque exists only while messages wait, the future only while the reader waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class FrameQueue:
    __slots__ = ("_frames", "_waiter", "_gone")

    def __init__(self) -> None:
        self._frames: deque | None = None
        self._waiter: asyncio.Future | None = None
        # As daphne's queue: True once the client's disconnect is queued, or a future someone waits on.
        self._gone: bool | asyncio.Future = False

    def put_nowait(self, frame: Any) -> None:
        if self._frames is None:
            self._frames = deque()
        self._frames.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if isinstance(frame, dict) and frame.get("type") == "websocket.disconnect":
            if isinstance(self._gone, asyncio.Future) and not self._gone.done():
                self._gone.set_result(None)
            self._gone = True

    async def until_gone(self) -> None:
        """Returns once the client's disconnect is in the queue (frames before it are still to be
        handled): a socket's handler waiting its turn need not wait for a client that left."""
        if self._gone is True:
            return
        if not isinstance(self._gone, asyncio.Future):
            self._gone = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._gone)

    async def get(self) -> Any:
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self._frames.popleft()
        if not self._frames:
            self._frames = None
        return frame
