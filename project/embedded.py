"""The embedded mode: one server process that also runs the task consumer.

Two things make that work. The Huey consumer runs as threads inside the ASGI process (without
taking over the process's signal handlers, which belong to daphne). And since the in-memory
channel layer lives on the server's event loop, worker threads hand their group_send to that
loop instead of running it on a private one (asyncio queues are not thread-safe).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable

from channels.layers import InMemoryChannelLayer as _ChannelsInMemoryChannelLayer
from huey.consumer import Consumer, Worker

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_consumer: Consumer | None = None
_consumer_lock = threading.Lock()


# Set when this process enqueues a job, so an idle worker looks at once instead of finishing its
# poll back-off (Huey's idle workers sleep up to `max_delay` between polls of the SQLite queue).
_job_enqueued = threading.Event()


class _WakeableWorker(Worker):
    def sleep(self) -> None:
        self.delay = min(self.delay, self.max_delay)
        if _job_enqueued.wait(self.delay):
            _job_enqueued.clear()
            self.delay = self.default_delay
        else:
            self.delay *= self.backoff


class _InProcessConsumer(Consumer):
    worker_class = _WakeableWorker

    def _set_signal_handlers(self) -> None:
        """Signals stay daphne's; the consumer stops with the process (atexit)."""


def _wake_workers_on_enqueue(huey) -> None:
    enqueue = huey.storage.enqueue

    def enqueue_and_wake(data, priority=None):
        enqueue(data, priority)
        _job_enqueued.set()

    huey.storage.enqueue = enqueue_and_wake


def start_task_consumer() -> None:
    """Start the in-process Huey consumer once (workers + the periodic scheduler)."""
    global _consumer
    from django.conf import settings
    from django.utils.module_loading import autodiscover_modules
    from huey.contrib.djhuey import HUEY

    with _consumer_lock:
        if _consumer is not None or HUEY.immediate:
            return
        # Like run_huey: every app's tasks module registered before the first dequeue, or a job
        # queued by another process (seed_demo's profile syncs) is read, not found, and dropped.
        autodiscover_modules("tasks")
        _wake_workers_on_enqueue(HUEY)
        options = dict(settings.HUEY.get("consumer", {}))
        options.setdefault("workers", 2)
        options["worker_type"] = "thread"
        _consumer = _InProcessConsumer(HUEY, **options)
        _consumer.start()
        atexit.register(_consumer.stop)
        logger.info("Task consumer running inside the server process (%s workers)", options["workers"])


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def start_on_server_loop(make_coroutine) -> asyncio.Future | concurrent.futures.Future | None:
    """Start `make_coroutine()` on the server's loop, from any thread, without waiting for it: its
    future, or None when there is no server loop."""
    loop = _server_loop
    if loop is None or not loop.is_running():
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return loop.create_task(make_coroutine())
    return asyncio.run_coroutine_threadsafe(make_coroutine(), loop)


class LoopRecordingApp:
    """ASGI wrapper that notes the server's event loop on the first connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        if _server_loop is not loop:
            remember_server_loop(loop)
        return await self.app(scope, receive, send)


class InMemoryChannelLayer(_ChannelsInMemoryChannelLayer):
    """Channels' in-memory layer, sweeping for expired messages and memberships at most once a second.

    The original sweeps every channel and every group member on each `receive` and `group_send`:
    with N WebSockets open, each connection's first read and each published hint cost O(N), so
    connecting 10,000 subscribers took minutes (tests/benchmarks/). Messages live 60 s and
    memberships a day, so a sweep a second loses nothing.
    """

    SWEEP_INTERVAL_SECONDS = 1.0
    _swept_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < self.SWEEP_INTERVAL_SECONDS:
            return
        self._swept_at = now
        super()._clean_expired()
