"""Database reads of long-lived WebSocket work, and GraphQL work that waits on routers, off the thread
every HTTP request waits for.

`sync_to_async` by default, the async ORM and channels' `database_sync_to_async` all run on one
thread-sensitive executor per process, shared with every HTTP request (`/healthz/`, the webhook,
GraphQL): thousands of subscriptions loading rows there starved them for tens of seconds (issue 9,
tests/benchmarks/subscription_flood.py). Subscription and socket reads run on a small pool of
their own instead; each of its threads keeps its own database connection, so a process holds at
most `WS_DB_THREADS` more connections. IntaSend's webhooks (`webhook_write`) run on a pool of
`WEBHOOK_DB_THREADS` that keep theirs too. Work that may wait seconds on a router (`router_io`) runs on
another pool, `ROUTER_IO_THREADS`, whose threads open and close connections as requests do.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _pool(size_setting: str, thread_name_prefix: str) -> ThreadPoolExecutor:
    """One pool per kind of work and process, sized by its setting when first used."""
    return ThreadPoolExecutor(max_workers=getattr(settings, size_setting), thread_name_prefix=thread_name_prefix)


def _with_fresh_connection_on_failure(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # No request cycle closes these threads' connections: one the server dropped (restart,
        # idle timeout) fails once here, and the read is tried again on a new connection.
        try:
            return fn(*args, **kwargs)
        except (InterfaceError, OperationalError):
            connection.close()
            return fn(*args, **kwargs)

    return run


def ws_database_read(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` (a read) as a coroutine run on the WebSocket pool, not on the shared request thread."""
    return sync_to_async(
        _with_fresh_connection_on_failure(fn), thread_sensitive=False, executor=_pool("WS_DB_THREADS", "ws-db")
    )


def _on_a_kept_connection(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # The connection outlives the call (opening one costs a PostgreSQL backend, ~8 ms): one the
        # database dropped meanwhile fails this check and is replaced before any write begins.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        return fn(*args, **kwargs)

    return run


def webhook_write(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` (a webhook's transaction) as a coroutine on a small pool whose threads keep their database
    connection (`WEBHOOK_DB_THREADS`): a payment's news is not held up by a new connection per request,
    nor by the thread every other HTTP request shares."""
    return sync_to_async(
        _on_a_kept_connection(fn), thread_sensitive=False, executor=_pool("WEBHOOK_DB_THREADS", "webhook-db")
    )


def _in_its_own_request(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # As Django does around each request: no connection the database dropped meanwhile is reused.
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def router_io(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` (a service that may talk to a router: seconds when it is slow) as a coroutine on a pool of
    its own (`ROUTER_IO_THREADS`), never on the thread every HTTP request shares."""
    return sync_to_async(
        _in_its_own_request(fn), thread_sensitive=False, executor=_pool("ROUTER_IO_THREADS", "router-io")
    )


class NoConnectionCleanupPerMessage:
    """Consumer mixin: channels' `AsyncConsumer.dispatch` runs `close_old_connections` on the shared
    thread-sensitive executor before every WebSocket frame, so 5,000 `subscribe` frames queued 5,000
    hops in front of every HTTP request. The GraphQL consumer reads the database only through
    `ws_database_read` (whose threads mend their own connections), so WebSocket frames skip it;
    channel-layer messages never had it (strawberry routes them first)."""

    async def dispatch(self, message: dict) -> None:
        if str(message.get("type", "")).startswith("websocket."):
            handler = getattr(self, get_handler_name(message), None)
            if handler is not None:
                await handler(message)
                return
        await super().dispatch(message)  # type: ignore[misc]
