"""End to end over real sockets: daphne (embedded and scaled out), Huey, Redis, a WebSocket client.

A portal subscribes to its payment, the loopback IntaSend delivers a COMPLETE webhook, and the
portal hears COMPLETED: on one process, and across processes through Redis.
"""

from __future__ import annotations

import time

import pytest
import redis
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.documents import INITIATE
from tests.live import Daphne, GraphQLWebSocket, HueyWorker, base_env, running, scratch_redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SUBSCRIBE = """subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) {
  id status intasendState completedAt activation { status } } }"""
OPERATOR_SUBSCRIBE = """subscription { operatorPaymentUpdates { id status } }"""
REDIS_URL = scratch_redis_url()


def initiate_over_http(server: Daphne, shop) -> dict:
    response = requests.post(
        f"{server.url}/graphql/",
        json={"query": INITIATE, "variables": {"input": shop.payment_input()}},
        headers={"X-Public-Key": shop.operator.public_key},
        timeout=10,
    )
    result = response.json()["data"]["initiatePayment"]
    assert result["errors"] == [], result
    return result["payment"]


def wait_for_status(client: GraphQLWebSocket, status: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = client.next_data(timeout=max(0.1, deadline - time.monotonic()))
        if data["paymentUpdates"]["status"] == status:
            return data["paymentUpdates"]


def complete_at_intasend(shop, payment: dict, webhook_url: str) -> None:
    shop.intasend.settle(payment["intasendInvoiceId"], "COMPLETE", webhook=False)
    status, _ = shop.intasend.deliver_webhook(
        payment["intasendInvoiceId"], webhook_url, challenge="webhook-challenge-1"
    )
    assert status == 200


def test_embedded_subscriber_hears_completion_from_webhook(shop, tmp_path):
    server = Daphne(base_env(tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url), tmp_path)
    with running(server):
        server.wait_healthy()
        payment = initiate_over_http(server, shop)
        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            first = portal.next_data()["paymentUpdates"]
            assert first["status"] == "PROCESSING" and first["completedAt"] is None
            complete_at_intasend(shop, payment, f"{server.url}/payments/webhook/")
            completed = wait_for_status(portal, "COMPLETED")
            assert completed["intasendState"] == "COMPLETE" and completed["completedAt"]
            assert completed["activation"] is not None


def test_scaled_out_update_crosses_processes_through_redis(shop, tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = base_env(tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, REDIS_URL=REDIS_URL)
    server_a, server_b = Daphne(env, tmp_path, "daphne-a"), Daphne(env, tmp_path, "daphne-b")
    worker = HueyWorker(env, tmp_path)
    with running(server_a, server_b, worker):
        server_a.wait_healthy()
        server_b.wait_healthy()
        payment = initiate_over_http(server_a, shop)
        token = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
        with (
            GraphQLWebSocket.connect(server_b.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal,
            GraphQLWebSocket.connect(server_b.ws_url, token) as dashboard,
        ):
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            assert portal.next_data()["paymentUpdates"]["status"] == "PROCESSING"
            dashboard.subscribe(OPERATOR_SUBSCRIBE)
            time.sleep(0.3)  # let the dashboard's subscription join its group
            complete_at_intasend(shop, payment, f"{server_a.url}/payments/webhook/")  # webhook to A
            assert wait_for_status(portal, "COMPLETED")["id"] == payment["id"]  # heard on B
            seen = dashboard.next_data()["operatorPaymentUpdates"]
            assert seen["id"] == payment["id"]
        health = requests.get(f"{server_a.url}/healthz/", timeout=5).json()
        assert health == {"status": "ok", "database": "ok", "channel_layer": "ok", "queue": "ok"}


def test_websocket_credentials_and_origins(shop, tmp_path):
    env = base_env(
        tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, GRAPHQL_WS_ALLOWED_ORIGINS="https://portal.example.com"
    )
    server = Daphne(env, tmp_path)
    with running(server):
        server.wait_healthy()
        for payload in (
            {},
            {"X-Public-Key": "f" * 32},
            {"X-Public-Key": "nope"},
            {"Authorization": "Bearer forged.token.value"},
        ):
            with pytest.raises(ConnectionClosed) as closed:
                with GraphQLWebSocket.connect(server.ws_url, payload):
                    pass
            assert closed.value.rcvd.code == 4403, payload
        with pytest.raises(InvalidStatus) as refused:
            with GraphQLWebSocket.connect(
                server.ws_url, {"X-Public-Key": shop.operator.public_key}, origin="https://evil.example.com"
            ):
                pass
        assert refused.value.response.status_code == 403
        # The configured portal origin and a key given in any letter case are accepted.
        with GraphQLWebSocket.connect(
            server.ws_url, {"x-public-key": shop.operator.public_key}, origin="https://portal.example.com"
        ):
            pass
