"""`/healthz/`: 200 when the database, the channel layer and (scaled out) the task queue answer."""

from __future__ import annotations

import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _channel_layer() -> None:
    layer = get_channel_layer()

    async def round_trip() -> None:
        channel = await layer.new_channel("healthz.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "healthz", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("channel layer returned another message")

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
