"""Found from outside: in the scaled-out setup one open WebSocket made `/healthz/` hang until that
socket closed (9 s for a socket that never sent connection_init, 18 s for a signed-in one). A load
balancer following the README would have taken every web process with a live portal out of rotation.

The health check's round trip went through a process-local channel, and channels_redis serves all
of those through one receive loop per process, which the socket's consumer already held.
"""

from __future__ import annotations

import time

import pytest
import redis
import requests
from websockets.sync.client import connect

from tests.documents import INITIATE
from tests.live import Daphne, GraphQLWebSocket, base_env, running, scratch_redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REDIS_URL = scratch_redis_url()
SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id status } }"
)


def _healthz_seconds(server: Daphne) -> float:
    started = time.monotonic()
    answer = requests.get(f"{server.url}/healthz/", timeout=8)
    assert answer.status_code == 200, answer.text
    return time.monotonic() - started


def test_healthz_answers_while_sockets_are_open_on_redis(shop, tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    server = Daphne(base_env(tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, REDIS_URL=REDIS_URL), tmp_path)
    with running(server):
        server.wait_healthy()
        # A socket that says nothing, then one signed in: each alone used to hold the health check.
        with connect(server.ws_url, subprotocols=["graphql-transport-ws"], open_timeout=10):
            time.sleep(0.5)
            assert _healthz_seconds(server) < 2
        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}):
            time.sleep(0.5)
            for _ in range(3):
                assert _healthz_seconds(server) < 2


def test_healthz_answers_while_a_subscription_listens_on_redis(shop, tmp_path):
    """Issue 14 item 1: a live subscription (its consumer waiting on the layer) must not hold health."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    server = Daphne(base_env(tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, REDIS_URL=REDIS_URL), tmp_path)
    with running(server):
        server.wait_healthy()
        answer = requests.post(
            f"{server.url}/graphql/",
            json={"query": INITIATE, "variables": {"input": shop.payment_input()}},
            headers={"X-Public-Key": shop.operator.public_key},
            timeout=10,
        ).json()["data"]["initiatePayment"]
        assert answer["errors"] == [], answer
        payment = answer["payment"]
        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            assert portal.next_data()["paymentUpdates"]["status"] == "PROCESSING"
            time.sleep(0.5)  # the subscription's reader is now waiting on the layer
            # Well under the check's own 2 s timeout: a health message left waiting would fail it.
            seconds = [_healthz_seconds(server) for _ in range(5)]
            assert max(seconds) < 1.5, seconds
