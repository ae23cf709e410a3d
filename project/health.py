"""`/healthz/`: 200 when the database, the channel layer and (scaled out) the task queue answer."""

from __future__ import annotations

import asyncio
import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from billing.notifications import CHANNEL_LAYER_ERRORS

logger = logging.getLogger(__name__)

# A layer that cannot carry one message in this long is reported broken, not waited for.
HEALTH_TIMEOUT_SECONDS = 2


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _channel_layer() -> None:
    layer = get_channel_layer()

    async def round_trip() -> None:
        # A plain channel name, not new_channel()'s process-local one: channels_redis serves all
        # process-local channels through one receive loop per process, which a subscribed socket
        # already holds, so a health message there waited for some other message to arrive.
        channel = f"healthz.{uuid.uuid4().hex}"
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "healthz", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), timeout=HEALTH_TIMEOUT_SECONDS)
        if message.get("token") != token:
            raise RuntimeError("channel layer returned another message")

    try:
        async_to_sync(round_trip)()
    except CHANNEL_LAYER_ERRORS:
        # A connection pooled before Redis restarted fails once ("Connection closed by server"),
        # then the pool connects anew: one such failure must not take the process out of rotation.
        async_to_sync(round_trip)()


def _queue() -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.pending_count()


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database, "channel_layer": _channel_layer}
    if settings.REDIS_URL:
        checks["queue"] = _queue
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # report, don't raise: this page exists to say what is broken
            logger.warning("Health check %s failed: %s", name, exc)
            results[name] = "error"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "error", **results}, status=200 if healthy else 503)
