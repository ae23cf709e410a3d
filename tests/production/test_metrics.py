"""`/metrics` (API.md "Endpoints", "Operability"): who may read it, and what a payment leaves in it.

In-process tests scrape through Django's test client; the last test runs two daphne processes and a
Huey worker sharing one PROMETHEUS_MULTIPROC_DIR, as production does, and scrapes them over HTTP.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
import redis
import requests
from django.test import Client
from django.urls import path
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Payment
from project.gc_tuning import install_probe
from project.metrics import metrics_view
from project.urls import urlpatterns as project_urlpatterns
from tests.documents import INITIATE
from tests.live import Daphne, GraphQLWebSocket, HueyWorker, base_env, running, scratch_redis_url
from tests.network.conftest import (  # noqa: F401 - fixtures
    _activation_knobs,
    _no_leftover_retries,
    fake_router,
    hotspot,
    pay,
)

# This module is its own URLconf until project/urls.py routes /metrics (then both agree).
urlpatterns = [path("metrics", metrics_view), *project_urlpatterns]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

TOKEN = "metrics-token-0123456789abcdef"
ALLOWED_LABELS = {"status", "provider", "outcome", "source", "kind", "scope", "le", "generation"}

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def shop_online(request):
    """Alice's shop with its router on a fake MikroTik: tests/network's `hotspot` fixture."""
    return request.getfixturevalue("hotspot")


@pytest.fixture
def scrape(client, settings) -> Callable[[], Samples]:
    settings.METRICS_TOKEN = TOKEN

    def run() -> Samples:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.content[:300]
        return parse(response.content.decode())

    return run


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer "],
)
def test_a_token_is_required_when_one_is_set(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Cache-Control"] == "no-store"
    assert b"cloudpilot_" not in response.content


def test_the_token_opens_it_whatever_debug_says(client, settings):
    settings.METRICS_TOKEN, settings.DEBUG = TOKEN, False
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in response
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "cloudpilot_payments",
        "cloudpilot_webhook_deliveries",
        "cloudpilot_payment_confirmation_seconds",
        "cloudpilot_activation_latency_seconds",
        "cloudpilot_activation_attempts",
        "cloudpilot_activations",
        "cloudpilot_routers",
        "cloudpilot_websockets_open",
        "cloudpilot_subscriptions_active",
        "cloudpilot_task_queue_pending",
        "cloudpilot_metrics_source_up",
    } <= names


def test_without_a_token_it_is_a_404_unless_debug(client, settings):
    settings.METRICS_TOKEN, settings.DEBUG = "", False
    assert client.get("/metrics").status_code == 404
    settings.DEBUG = True
    response = client.get("/metrics")
    assert response.status_code == 200 and b"cloudpilot_payments" in response.content


def test_read_only(settings):
    settings.METRICS_TOKEN = TOKEN
    response = Client(enforce_csrf_checks=True).post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


def test_a_paid_payment_shows_in_the_series(gql, client, shop_online, scrape):
    before = scrape()
    payment = pay(gql, client, shop_online)
    after = scrape()

    assert value(after, "cloudpilot_payments", status="COMPLETED", provider="INTASEND") == 1
    assert value(after, "cloudpilot_payments", status="PROCESSING", provider="INTASEND") == 0
    assert value(after, "cloudpilot_activations", status="ACTIVE") == 1
    assert value(after, "cloudpilot_routers", status="ONLINE") == 1
    assert value(after, "cloudpilot_metrics_source_up", source="database") == 1
    assert value(after, "cloudpilot_metrics_source_up", source="task_queue") == 1

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("cloudpilot_webhook_deliveries_total", outcome="accepted") >= 1
    assert grew("cloudpilot_payment_confirmation_seconds_count", source="WEBHOOK", kind="STK_PUSH") == 1
    assert grew("cloudpilot_activation_latency_seconds_count") == 1
    assert grew("cloudpilot_activation_attempts_total", outcome="ACTIVE") == 1

    # Bounded cardinality: nothing names a payment, a phone, a router or an operator.
    payment.refresh_from_db()
    secrets = {
        str(payment.pk),
        payment.phone_number,
        payment.intasend_invoice_id,
        shop_online.router.name,
        shop_online.router.host,
        shop_online.operator.public_key,
        shop_online.operator.user.username,
    }
    for name, labels in after:
        if not name.startswith("cloudpilot_"):
            continue
        assert {label for label, _ in labels} <= ALLOWED_LABELS, name
        for label, label_value in labels:
            assert label in {"le", "generation"} or not label_value.isdigit(), (name, label, label_value)
            assert not any(secret in label_value for secret in secrets if secret), (name, label)


def test_webhook_outcomes_are_counted(client, scrape, shop_online, gql):
    before = scrape()
    assert client.post("/payments/webhook/", data="not json", content_type="application/json").status_code == 400
    unknown = {"invoice_id": "NOPE", "api_ref": "7e3f1c52-0000-4000-8000-000000000000", "state": "COMPLETE"}
    assert client.post("/payments/webhook/", data=unknown, content_type="application/json").status_code == 200
    payment = Payment.objects.get(
        pk=gql(INITIATE, {"input": shop_online.payment_input()}, **shop_online.operator.auth)["data"][
            "initiatePayment"
        ]["payment"]["id"]
    )
    forged = shop_online.intasend.webhook_body(payment.intasend_invoice_id, challenge="not-the-challenge")
    assert client.post("/payments/webhook/", data=forged, content_type="application/json").status_code == 403
    after = scrape()
    for outcome in ("invalid", "ignored", "rejected"):
        grown = value(after, "cloudpilot_webhook_deliveries_total", outcome=outcome) - value(
            before, "cloudpilot_webhook_deliveries_total", outcome=outcome
        )
        assert grown == 1, outcome
    assert value(after, "cloudpilot_payments_oldest_open_age_seconds", status="PROCESSING", provider="INTASEND") >= 0
    assert (
        "cloudpilot_payments_oldest_open_age_seconds",
        frozenset({("status", "PROCESSING"), ("provider", "INTASEND")}),
    ) in after


# --- Several processes, one directory -------------------------------------------------------------


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_forced_collection_shows_in_the_gc_series(scrape):
    """Issue 14 item 2: on-call sees collection pauses (and the benchmark reads them) on /metrics."""
    install_probe()  # the server installs it at start-up (project.asgi); tests do not import that
    before = scrape()
    gc.disable()  # no automatic young collection may free them first (counted as generation 0 or 1)
    try:
        for _ in range(500):
            _Cycle()  # unreachable only through their cycles: the collector's to free
        gc.collect()
    finally:
        gc.enable()
    after = scrape()
    full = "cloudpilot_gc_pause_seconds_count"
    assert value(after, full, generation="2") >= value(before, full, generation="2") + 1
    collected = "cloudpilot_gc_collected_objects_total"
    assert value(after, collected, generation="2") >= value(before, collected, generation="2") + 500
    assert value(after, "cloudpilot_gc_longest_pause_seconds") > 0
    assert value(after, "cloudpilot_gc_pause_seconds_bucket", generation="2", le="+Inf") == value(
        after, full, generation="2"
    )


SUBSCRIBE = """subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) {
  id status activation { status } } }"""


def scrape_live(server: Daphne) -> Samples:
    response = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return parse(response.text)


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


@pytest.mark.slow
def test_any_process_of_a_host_serves_every_process_series(shop_online, tmp_path):
    """Webhook on daphne A, subscription on daphne B, activation in the worker: each process sees it all."""
    redis.Redis.from_url(scratch_redis_url()).flushdb()
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = base_env(
        tmp_path,
        INTASEND_API_BASE_URL=shop_online.intasend.base_url,
        REDIS_URL=scratch_redis_url(),
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        METRICS_TOKEN=TOKEN,
    )
    server_a, server_b = Daphne(env, tmp_path, "daphne-a"), Daphne(env, tmp_path, "daphne-b")
    worker = HueyWorker(env, tmp_path)
    with running(server_a, server_b, worker):
        server_a.wait_healthy()
        server_b.wait_healthy()
        assert requests.get(f"{server_a.url}/metrics", timeout=10).status_code == 401

        response = requests.post(
            f"{server_a.url}/graphql/",
            json={"query": INITIATE, "variables": {"input": shop_online.payment_input()}},
            headers={"X-Public-Key": shop_online.operator.public_key},
            timeout=10,
        )
        payment = response.json()["data"]["initiatePayment"]["payment"]
        with GraphQLWebSocket.connect(server_b.ws_url, {"X-Public-Key": shop_online.operator.public_key}) as portal:
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            assert portal.next_data()["paymentUpdates"]["status"] == "PROCESSING"
            seen_from_a = scrape_live(server_a)
            assert value(seen_from_a, "cloudpilot_websockets_open") == 1
            assert value(seen_from_a, "cloudpilot_subscriptions_active") == 1
            assert value(seen_from_a, "cloudpilot_websockets_busiest_public_key") == 1
            # Both daphne processes time their collections (project.gc_tuning, set up by project.asgi).
            assert sum(value(seen_from_a, "cloudpilot_gc_pause_seconds_count", generation=g) for g in "012") > 0
            assert value(seen_from_a, "cloudpilot_gc_frozen_objects") > 100_000  # both start-up heaps

            shop_online.intasend.settle(payment["intasendInvoiceId"], "COMPLETE", webhook=False)
            status, _ = shop_online.intasend.deliver_webhook(
                payment["intasendInvoiceId"], f"{server_a.url}/payments/webhook/", challenge="webhook-challenge-1"
            )
            assert status == 200
            # The stream ends once the activation is ACTIVE (done by the worker).
            eventually(lambda: (portal.next_data()["paymentUpdates"]["activation"] or {}).get("status") == "ACTIVE")

            seen_from_b = scrape_live(server_b)
            assert value(seen_from_b, "cloudpilot_webhook_deliveries_total", outcome="accepted") == 1  # on A
            assert (
                value(seen_from_b, "cloudpilot_payment_confirmation_seconds_count", source="WEBHOOK", kind="STK_PUSH")
                == 1
            )
            assert value(seen_from_b, "cloudpilot_activation_latency_seconds_count") == 1  # in the worker
            assert value(seen_from_b, "cloudpilot_activation_attempts_total", outcome="ACTIVE") == 1
            assert value(seen_from_b, "cloudpilot_payments", status="COMPLETED", provider="INTASEND") == 1
            eventually(lambda: value(scrape_live(server_b), "cloudpilot_subscriptions_active") == 0)
            assert value(scrape_live(server_b), "cloudpilot_websockets_open") == 1
        eventually(lambda: value(scrape_live(server_a), "cloudpilot_websockets_open") == 0)

        # A daphne killed outright takes its open sockets with it, not the counts it recorded.
        with GraphQLWebSocket.connect(server_a.ws_url, {"X-Public-Key": shop_online.operator.public_key}):
            eventually(lambda: value(scrape_live(server_b), "cloudpilot_websockets_open") == 1)
            server_a.popen.kill()
            server_a.popen.wait(timeout=10)
            after_a_stopped = scrape_live(server_b)
        assert value(after_a_stopped, "cloudpilot_webhook_deliveries_total", outcome="accepted") == 1
        assert value(after_a_stopped, "cloudpilot_activation_latency_seconds_count") == 1
        assert value(after_a_stopped, "cloudpilot_websockets_open") == 0
        assert not list(shared.glob(f"gauge_live*_{server_a.popen.pid}.db"))  # forgotten at the scrape
        assert list(shared.glob(f"counter_{server_a.popen.pid}.db"))  # its counts kept
