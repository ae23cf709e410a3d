"""Faults in the running system: Redis restarted under live subscribers, a worker killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from billing.models import Payment, PaymentEvent
from tests.e2e.test_live_updates import SUBSCRIBE, initiate_over_http, wait_for_status
from tests.live import Daphne, GraphQLWebSocket, HueyWorker, base_env, free_port, running, scratch_redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class PrivateRedis:
    """A redis-server of the test's own (the machine's shared one must not be restarted)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_subscribers_resync_after_redis_restarts(shop, tmp_path, private_redis):
    env = base_env(
        tmp_path,
        INTASEND_API_BASE_URL=shop.intasend.base_url,
        REDIS_URL=private_redis.url,
        SUBSCRIPTION_RESYNC_SECONDS="1",
    )
    server, worker = Daphne(env, tmp_path), HueyWorker(env, tmp_path)
    with running(server, worker):
        server.wait_healthy()
        payment = initiate_over_http(server, shop)
        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            assert portal.next_data()["paymentUpdates"]["status"] == "PROCESSING"

            private_redis.stop()  # every connection to Redis is cut...
            time.sleep(1.5)
            private_redis.start()  # ...and it comes back empty

            shop.intasend.settle(payment["intasendInvoiceId"], "COMPLETE", webhook=False)
            status, _ = shop.intasend.deliver_webhook(
                payment["intasendInvoiceId"], f"{server.url}/payments/webhook/", challenge="webhook-challenge-1"
            )
            assert status == 200
            assert wait_for_status(portal, "COMPLETED", timeout=20)["id"] == payment["id"]
        assert requests.get(f"{server.url}/healthz/", timeout=5).json()["status"] == "ok"


def test_healthz_is_ok_at_once_after_redis_restarts(shop, tmp_path, private_redis):
    """The health check's pooled Redis connection from before the restart failed the first check
    after it ("Connection closed by server"): one 503 a load balancer would act on (CI, 2026-12-01)."""
    env = base_env(tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, REDIS_URL=private_redis.url)
    server = Daphne(env, tmp_path)
    with running(server):
        server.wait_healthy()
        for _ in range(3):
            assert requests.get(f"{server.url}/healthz/", timeout=5).json()["status"] == "ok"
        private_redis.stop()
        time.sleep(0.5)
        private_redis.start()
        answers = [requests.get(f"{server.url}/healthz/", timeout=5).json() for _ in range(3)]
        assert [answer["status"] for answer in answers] == ["ok"] * 3, answers


def test_worker_killed_mid_job_the_job_runs_again_once(shop, tmp_path):
    """The confirmation job hangs on IntaSend, its worker is killed -9; the reconciler finishes it."""
    redis_url = scratch_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    env = base_env(
        tmp_path, INTASEND_API_BASE_URL=shop.intasend.base_url, REDIS_URL=redis_url, PAYMENT_RECONCILE_AFTER_SECONDS="0"
    )
    server = Daphne(env, tmp_path)
    first_worker = HueyWorker(env, tmp_path, periodic=False, name="huey-1")
    with running(server, first_worker):
        server.wait_healthy()
        payment = initiate_over_http(server, shop)
        shop.intasend.settle(payment["intasendInvoiceId"], "COMPLETE", webhook=False)
        shop.intasend.hang_next("payment/status/", seconds=30)
        status_calls = len(shop.intasend.requests_to("payment/status/"))
        shop.intasend.deliver_webhook(
            payment["intasendInvoiceId"], f"{server.url}/payments/webhook/", challenge="webhook-challenge-1"
        )
        deadline = time.monotonic() + 15
        while len(shop.intasend.requests_to("payment/status/")) == status_calls:  # the job is mid-call
            assert time.monotonic() < deadline, "the confirmation job never called IntaSend"
            time.sleep(0.05)
        os.kill(first_worker.popen.pid, signal.SIGKILL)
        first_worker.popen.wait(timeout=10)
        assert Payment.objects.get(pk=payment["id"]).status == "PROCESSING"

        second_worker = HueyWorker(env, tmp_path, periodic=True, name="huey-2")
        with running(second_worker):
            deadline = time.monotonic() + 75  # the reconciler runs at the start of every minute
            while Payment.objects.get(pk=payment["id"]).status != "COMPLETED":
                assert time.monotonic() < deadline, "the reconciler never finished the lost job"
                time.sleep(0.5)
    completions = PaymentEvent.objects.filter(payment_id=payment["id"], new_status="COMPLETED").exclude(
        old_status="COMPLETED"
    )
    assert completions.count() == 1
