"""At most ``HTTP_MAX_CONCURRENT_REQUESTS`` HTTP requests of this process are served at once; the rest wait
their turn in the event loop (a coroutine each), and one that waited ``HTTP_QUEUE_TIMEOUT_SECONDS`` is
answered 503 with ``Retry-After`` and the GraphQL error code SERVICE_UNAVAILABLE.

Why: Django serves each ASGI request's sync work on a thread of its own, and each such thread opens its own
database connection. A burst of 150 requests (anyone's: a tenant flooding their own router's code box)
asked PostgreSQL for 150 connections, past its ``max_connections``, and requests of every tenant failed
with 500s, ``/healthz/`` included. ``/healthz/`` and ``/metrics`` are never queued: they must say how the
process is, not wait behind it. A request that waits without needing a thread or a connection (a code
attempt waiting for its turn) gives its place back meanwhile (``released``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import weakref
from collections.abc import AsyncIterator

from django.conf import settings

from project.errors import ErrorCode

NOT_QUEUED = ("/healthz/", "/metrics")
BUSY_BODY = json.dumps(
    {
        "errors": [
            {
                "message": "The server is busy; try again shortly.",
                "extensions": {"code": ErrorCode.SERVICE_UNAVAILABLE.value},
            }
        ]
    }
).encode()

_current: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar("http_slot", default=None)


class ConcurrencyLimit:
    """ASGI middleware for the ``http`` scope (WebSockets have their own caps, project.socket_caps)."""

    def __init__(self, app) -> None:
        self.app = app
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(settings.HTTP_MAX_CONCURRENT_REQUESTS)
        return self._slots[loop]

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or not settings.HTTP_MAX_CONCURRENT_REQUESTS
            or scope.get("path", "").startswith(NOT_QUEUED)
        ):
            await self.app(scope, receive, send)
            return
        semaphore = self._semaphore()
        try:
            await asyncio.wait_for(semaphore.acquire(), timeout=settings.HTTP_QUEUE_TIMEOUT_SECONDS)
        except TimeoutError:
            await _busy(send)
            return
        token = _current.set(semaphore)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
            semaphore.release()


async def _busy(send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", b"1"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BUSY_BODY})


@contextlib.asynccontextmanager
async def released() -> AsyncIterator[None]:
    """Give this request's place to a waiting one while it waits for something that holds no thread or
    connection (an asyncio sleep), and take a place again after."""
    semaphore = _current.get()
    if semaphore is None:
        yield
        return
    semaphore.release()
    try:
        yield
    finally:
        await semaphore.acquire()
