"""Tell live subscribers that a payment changed. Ids only: subscribers re-read the row."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from project.embedded import start_on_server_loop

logger = logging.getLogger(__name__)

PAYMENT_CHANGED = "payment.changed"
# A hint not sent by then is given up (and logged): Redis is down or stalled.
PUBLISH_TIMEOUT_SECONDS = 5
# What a channel layer raises while its backend (Redis) is down or restarting.
CHANNEL_LAYER_ERRORS: tuple[type[BaseException], ...] = (OSError, RedisError)


def payment_group(payment_id: object) -> str:
    return f"payment.{payment_id}"


def operator_group(operator_id: object) -> str:
    return f"operator.{operator_id}"


_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None
_publisher_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """An event loop on a thread of its own, one per process, for hints sent outside the server.

    `async_to_sync` would run each send on a brand-new event loop, and channels_redis keeps its
    connections per loop: every hint from a worker opened (and dropped) a Redis connection, about a
    quarter of a job's time (tests/benchmarks/). A forked child makes its own.
    """
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


def raise_if_cancelling(exc: BaseException) -> None:
    """redis-py can turn a task's cancellation into a ConnectionError: a retry loop that caught it
    would never end, and hang the shutdown of its event loop. Let the cancellation through."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from exc


def publish_payment_changed(*, payment_id: object, operator_id: object) -> None:
    """Queue the hint for after the current transaction commits (immediately when there is none)."""
    message = {"type": PAYMENT_CHANGED, "payment_id": str(payment_id)}
    publish_after_commit([payment_group(payment_id), operator_group(operator_id)], message)


def publish_after_commit(groups: list[str], message: dict) -> None:
    """Send `message` to `groups` after the current transaction commits; a message lost is logged.

    Sent in the background (on the server's loop, or this process's publisher loop): the writer does
    not wait for Redis, so a worker goes on to the router while its hint travels."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return

        async def send_all() -> None:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                for group in groups:
                    # The group rides along: each process reads its groups' hints from one channel.
                    await layer.group_send(group, {**message, "group": group})

        def log_if_lost(sending: asyncio.Future | concurrent.futures.Future) -> None:
            error = None if sending.cancelled() else sending.exception()
            if error is not None:  # recovered by the subscribers' resync; never fails the write
                logger.error("Could not publish %s to %s", message["type"], ", ".join(groups), exc_info=error)

        try:
            sending = start_on_server_loop(send_all)
            if sending is None:
                if isinstance(layer, InMemoryChannelLayer):
                    async_to_sync(send_all)()  # its queues belong to the caller's loop: stay on it
                    return
                sending = asyncio.run_coroutine_threadsafe(send_all(), _publisher_loop())
            sending.add_done_callback(log_if_lost)
        except Exception:  # e.g. the loop is closing at shutdown
            logger.exception("Could not publish %s to %s", message["type"], ", ".join(groups))

    transaction.on_commit(send, robust=True)
