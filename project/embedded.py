"""The embedded mode: one server process that also runs the task consumer.

Two things make that work. The Huey consumer runs as threads inside the ASGI process (without
taking over the process's signal handlers, which belong to daphne). And since the in-memory
channel layer lives on the server's event loop, worker threads hand their group_send to that
loop instead of running it on a private one (asyncio queues are not thread-safe).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Awaitable

from huey.consumer import Consumer

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_consumer: Consumer | None = None
_consumer_lock = threading.Lock()


class _InProcessConsumer(Consumer):
    def _set_signal_handlers(self) -> None:
        """Signals stay daphne's; the consumer stops with the process (atexit)."""


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


def run_on_server_loop(make_coroutine) -> bool:
    """Run `make_coroutine()` on the server's loop from another thread; False if there is none."""
    loop = _server_loop
    if loop is None or not loop.is_running():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(make_coroutine())
        return True
    future = asyncio.run_coroutine_threadsafe(make_coroutine(), loop)
    future.result(timeout=5)
    return True


class LoopRecordingApp:
    """ASGI wrapper that notes the server's event loop on the first connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        if _server_loop is not loop:
            remember_server_loop(loop)
        return await self.app(scope, receive, send)
