"""One channel-layer channel per process (per event loop) for every live WebSocket it serves.

Each socket used to have a channel of its own, a task reading it and a group membership per
subscription: a hint to a payment's 1,000 subscribers was 1,000 channel-layer messages read one by
one, and every idle socket paid for its reader (issue 14). Now the process joins a group once while
any local listener wants it, reads each hint once, and hands it to the local listeners of that
group: plain callables that only wake their subscription or close their socket.

Publishers name the group in the message (`billing.notifications.publish_after_commit`), since a
channel-layer message does not say which group brought it. Hints stay at-most-once: a listener
that must not miss a change re-reads after `join` returns, and the resyncs catch a lost hint.
When the layer is down the hub keeps its listeners, retries its read with backoff and joins its
groups again once the layer answers (a restarted Redis forgot them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from channels.layers import get_channel_layer

from billing.notifications import CHANNEL_LAYER_ERRORS, raise_if_cancelling

logger = logging.getLogger(__name__)

Listener = Callable[[dict], None]


class LiveHub:
    _hubs: dict[asyncio.AbstractEventLoop, LiveHub] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.layer = get_channel_layer()
        self.listeners: dict[str, set[Listener]] = {}
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.joining: dict[str, asyncio.Task] = {}  # group → its group_add (done once joined)
        # group → its group_discard, still running: a join of that group waits for it, or Redis could
        # apply the discard after the add (two connections of the pool) and the group would go deaf.
        self.leaving: dict[str, asyncio.Task] = {}

    @classmethod
    def here(cls) -> LiveHub:
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls(loop)
        return hub

    async def join(self, group: str, listener: Listener) -> None:
        """From now on `listener` hears the hints sent to `group` (unless the layer is down: then
        nothing is heard until it is back, and the callers' resyncs cover the gap)."""
        members = self.listeners.setdefault(group, set())
        members.add(listener)
        joining = self.joining.get(group)
        if joining is None:  # the first listener joins the group; later ones wait until it has
            joining = self.joining[group] = self.loop.create_task(self._join(group, after=self.leaving.get(group)))
        await asyncio.shield(joining)

    async def _join(self, group: str, *, after: asyncio.Task | None = None) -> None:
        if self.layer is None:
            return
        if after is not None:
            await asyncio.wait([after])
        try:
            if self.channel is None:
                self.channel = await self.layer.new_channel()  # no I/O: no other join runs meanwhile
                self.reader = self.loop.create_task(self._read())
            await self.layer.group_add(group, self.channel)
        except CHANNEL_LAYER_ERRORS as exc:
            logger.warning("Channel layer unavailable for %s (%s); resync only", group, exc)

    async def leave(self, group: str, listener: Listener) -> None:
        members = self.listeners.get(group)
        if members is None or listener not in members:
            return
        members.discard(listener)
        if members:
            return
        del self.listeners[group]
        joined = self.joining.pop(group, None)
        if not self.listeners:  # a loop that ends (tests, shutdown) leaves no reader behind
            if self.reader is not None:
                self.reader.cancel()
            if self._hubs.get(self.loop) is self:
                del self._hubs[self.loop]
        if self.layer is not None and self.channel is not None:
            leaving = self.leaving[group] = self.loop.create_task(self._discard(group, after=joined))
            leaving.add_done_callback(lambda done: self.leaving.get(group) is done and self.leaving.pop(group))
            await asyncio.shield(leaving)

    async def _discard(self, group: str, *, after: asyncio.Task | None) -> None:
        if after is not None:  # an add still on its way must not land after the discard
            await asyncio.wait([after])
        try:
            await self.layer.group_discard(group, self.channel)
        except CHANNEL_LAYER_ERRORS as exc:
            raise_if_cancelling(exc)

    async def _read(self) -> None:
        delay = 0.0
        while True:
            try:
                if delay:  # the layer failed: it may be a restarted Redis that forgot our groups
                    for group in list(self.listeners):
                        await self.layer.group_add(group, self.channel)
                    delay = 0.0
                message = await self.layer.receive(self.channel)
            except CHANNEL_LAYER_ERRORS as exc:
                raise_if_cancelling(exc)
                delay = min(max(delay * 2, 0.2), 5.0)
                logger.warning("Channel layer read failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for listener in list(self.listeners.get(message.get("group"), ())):
                try:
                    listener(message)
                except Exception:  # one listener's bug must not deafen the others
                    logger.exception("Live hint listener failed")
