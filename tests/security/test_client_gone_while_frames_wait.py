"""Red team, 2026-12-01 (second round): a client queued hundreds of `subscribe` frames behind the
per-address pacing and reset its sockets. The server kept those sockets counted under the caps, and
started their subscriptions for nobody, until every frame had had its turn (12 s for 400 frames at
the defaults, up to the 30 s wait). A socket's frames now stop waiting as soon as its client's
disconnect reaches daphne's queue for it, and the ones behind them are dropped."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import pytest
import requests
from websockets.sync.client import connect

from tests.documents import INITIATE
from tests.live import Daphne, base_env, running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SUBSCRIBE = "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id } }"
TOKEN = "metrics-token-0123456789abcdef"


def _gauges(server: Daphne) -> dict[str, float]:
    text = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    wanted = ("cloudpilot_websockets_open ", "cloudpilot_subscriptions_active ")
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith(wanted)}


def test_sockets_whose_frames_wait_their_turn_are_released_when_the_client_leaves(shop, tmp_path):
    # One subscription a second per address (burst 2): 3 sockets x 10 frames would take ~28 s.
    env = base_env(
        tmp_path,
        INTASEND_API_BASE_URL=shop.intasend.base_url,
        GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS="1",
        METRICS_TOKEN=TOKEN,
    )
    server = Daphne(env, tmp_path)
    with running(server):
        server.wait_healthy()
        key = shop.operator.public_key
        answer = requests.post(
            f"{server.url}/graphql/",
            json={"query": INITIATE, "variables": {"input": shop.payment_input()}},
            headers={"X-Public-Key": key},
            timeout=10,
        ).json()["data"]["initiatePayment"]
        variables = {"id": answer["payment"]["id"], "secret": answer["payment"]["clientSecret"]}
        sockets, held = [], ExitStack()
        for _ in range(3):
            ws = held.enter_context(connect(server.ws_url, subprotocols=["graphql-transport-ws"], open_timeout=10))
            ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": key}}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            for index in range(10):
                payload = {"query": SUBSCRIBE, "variables": variables}
                ws.send(json.dumps({"id": str(index), "type": "subscribe", "payload": payload}))
            sockets.append(ws)
        time.sleep(1.0)
        assert _gauges(server)["cloudpilot_websockets_open"] == 3

        for ws in sockets:  # the client is gone at once, no close handshake
            ws.socket.shutdown(2)
            ws.socket.close()
        held.close()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and _gauges(server)["cloudpilot_websockets_open"] > 0:
            time.sleep(0.2)
        gauges = _gauges(server)
        assert gauges == {"cloudpilot_websockets_open": 0.0, "cloudpilot_subscriptions_active": 0.0}, gauges
