"""Pacing of GraphQL WebSocket work per client address, before strawberry sees it (issue 9 item 5).

asyncio runs ready work first come, first served. One client opening hundreds of sockets and
sending thousands of `subscribe` frames at once made every `/healthz/` request and webhook push wait
behind seconds of handshakes, credential reads and strawberry's per-operation work (parse,
validate, extensions), all of which runs before any resolver could hold it back. So each client
address gets two token buckets:

- handshakes: `GRAPHQL_WS_HANDSHAKES_PER_SECOND_PER_ADDRESS` (burst twice that); a socket waits
  for its token before it is accepted, at most `HANDSHAKE_MAX_WAIT_SECONDS` (daphne drops a
  handshake unanswered for 5 s, the portal gives up on an ack after 5 s); when the wait would be
  longer the socket is closed with 4429 "Too many connections";
- subscriptions: `GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS` (burst twice that); a `subscribe`
  (`start`) frame waits for its token before it is handed on, at most
  `SUBSCRIBE_MAX_WAIT_SECONDS`; beyond that it is answered with a RATE_LIMITED error at once.

A waiting frame or handshake is one sleeping coroutine and costs no CPU; the longest wait bounds
how many can wait per address (rate x wait: 30 handshakes, 600 frames at the defaults; a socket's
frames are handled one after another, so at most one per socket waits here). A client retrying
what was refused costs more than one that waits, hence the long wait for frames: at the default
caps (250 sockets per address) one address's frames are never refused, only spread out. The
defaults are far above what a hotspot behind one NAT address needs (each customer's portal opens
one socket with one subscription after paying). Buckets live in this process's memory, like the
socket caps: N server processes allow N times the rate.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from project.frame_queue import FrameQueue

HANDSHAKE_MAX_WAIT_SECONDS = 3.0
SUBSCRIBE_MAX_WAIT_SECONDS = 30.0
_FORGET_AFTER = 4096  # buckets kept before the full (idle) ones are dropped


class _Bucket:
    """Tokens refill at `rate` a second up to `burst`; a taker that finds none borrows one
    (the balance goes negative) and sleeps until it would have been refilled."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, max_wait: float) -> float | None:
        """Seconds to wait for a token (0: take it now), or None when that would exceed `max_wait`."""
        self.refill(time.monotonic())
        wait = (1 - self.tokens) / self.rate if self.tokens < 1 else 0.0
        if wait > max_wait:
            return None
        self.tokens -= 1
        return wait


_buckets: dict[tuple[str, str], _Bucket] = {}


def _bucket(kind: str, address: str, rate: float) -> _Bucket:
    bucket = _buckets.get((kind, address))
    if bucket is None or bucket.rate != rate:
        if len(_buckets) >= _FORGET_AFTER:  # forget addresses that have been quiet long enough to be full
            now = time.monotonic()
            for key, idle in list(_buckets.items()):
                idle.refill(now)
                if idle.tokens >= idle.burst:
                    del _buckets[key]
        bucket = _buckets[(kind, address)] = _Bucket(rate, 2 * rate)
    return bucket


async def _take(
    kind: str, address: str | None, rate: float, max_wait: float, client: FrameQueue | None = None
) -> bool | None:
    """True: go on; False: refuse; None: the client left while waiting (`client`, its socket's
    incoming queue, has its disconnect)."""
    if address is None or rate <= 0:  # no address known (not over TCP), or pacing switched off
        return True
    wait = _bucket(kind, address, rate).reserve(max_wait)
    if wait is None:
        return False
    if wait > 0:
        if client is None:
            await asyncio.sleep(wait)
            return True
        try:
            await asyncio.wait_for(client.until_gone(), wait)
        except TimeoutError:
            return True  # its turn came
        return None
    return True


async def handshake_turn(address: str | None) -> bool:
    """Wait for this address's turn to open a socket; False: refuse it (4429)."""
    return await _take(
        "handshake", address, settings.GRAPHQL_WS_HANDSHAKES_PER_SECOND_PER_ADDRESS, HANDSHAKE_MAX_WAIT_SECONDS
    )


async def subscribe_turn(address: str | None, client: FrameQueue | None = None) -> bool | None:
    """Wait for this address's turn to start a subscription; False: refuse it (RATE_LIMITED); None:
    the client left meanwhile (`client`: its socket's incoming queue). A client that queued hundreds
    of frames and left kept its sockets counted, and their subscriptions starting for nobody, until
    every frame had had its turn (red team)."""
    rate = settings.GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS
    return await _take("subscribe", address, rate, SUBSCRIBE_MAX_WAIT_SECONDS, client)
