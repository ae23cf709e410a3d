"""A burst of HTTP requests waits its turn instead of asking the database for a connection per request.

Found from outside: 100–150 concurrent requests to one daphne (a tenant flooding their own router's code
box, or plain `packages` queries) asked PostgreSQL for more connections than it allows, and requests of
every tenant, `/healthz/` included, failed with 500s.
"""

from __future__ import annotations

import asyncio

import pytest

from project import http_concurrency
from project.http_concurrency import ConcurrencyLimit, released


class SlowApp:
    """An ASGI app that records how many requests it serves at once."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.now = 0
        self.most = 0

    async def __call__(self, scope, receive, send) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            if scope["path"] == "/sleeps/":
                async with released():
                    await asyncio.sleep(self.seconds * 4)
            await asyncio.sleep(self.seconds)
        finally:
            self.now -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app, path: str = "/graphql/") -> int:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path}, None, send)
    return sent[0]["status"]


def test_at_most_the_limit_is_served_at_once_and_the_rest_wait(settings) -> None:
    settings.HTTP_MAX_CONCURRENT_REQUESTS = 5
    settings.HTTP_QUEUE_TIMEOUT_SECONDS = 10
    inner = SlowApp()
    app = ConcurrencyLimit(inner)

    async def burst() -> list[int]:
        return await asyncio.gather(*(call(app) for _ in range(60)))

    statuses = asyncio.run(burst())
    assert statuses == [200] * 60
    assert inner.most == 5


def test_a_request_that_waited_too_long_is_told_to_come_back(settings) -> None:
    settings.HTTP_MAX_CONCURRENT_REQUESTS = 1
    settings.HTTP_QUEUE_TIMEOUT_SECONDS = 0.05
    app = ConcurrencyLimit(SlowApp(seconds=0.3))

    async def two() -> list[int]:
        return await asyncio.gather(call(app), call(app))

    assert sorted(asyncio.run(two())) == [200, 503]
    assert b"SERVICE_UNAVAILABLE" in http_concurrency.BUSY_BODY


def test_health_and_metrics_never_wait(settings) -> None:
    settings.HTTP_MAX_CONCURRENT_REQUESTS = 1
    settings.HTTP_QUEUE_TIMEOUT_SECONDS = 0.05
    inner = SlowApp(seconds=0.3)
    app = ConcurrencyLimit(inner)

    async def busy_then_health() -> list[int]:
        return await asyncio.gather(call(app), call(app, "/healthz/"), call(app, "/metrics"))

    assert asyncio.run(busy_then_health()) == [200, 200, 200]
    assert inner.most == 3


def test_waiting_for_a_turn_gives_the_place_back(settings) -> None:
    settings.HTTP_MAX_CONCURRENT_REQUESTS = 1
    settings.HTTP_QUEUE_TIMEOUT_SECONDS = 0.1
    app = ConcurrencyLimit(SlowApp(seconds=0.05))

    async def sleeper_and_other() -> list[int]:
        sleeper = asyncio.ensure_future(call(app, "/sleeps/"))
        await asyncio.sleep(0.01)
        other = await call(app)  # served while the sleeper waits: not a 503
        return [await sleeper, other]

    assert asyncio.run(sleeper_and_other()) == [200, 200]


@pytest.mark.parametrize("limit", [0])
def test_zero_switches_it_off(settings, limit) -> None:
    settings.HTTP_MAX_CONCURRENT_REQUESTS = limit
    inner = SlowApp()
    app = ConcurrencyLimit(inner)

    async def burst() -> list[int]:
        return await asyncio.gather(*(call(app) for _ in range(20)))

    assert asyncio.run(burst()) == [200] * 20
    assert inner.most == 20
