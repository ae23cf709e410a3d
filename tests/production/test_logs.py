"""Logs an on-call engineer can read (API.md "Operability").

Client mistakes and expected retries never reach ERROR nor print a traceback; an expected retry is
one WARNING line with the attempt and the reason; ERROR is left for what a person must act on.
The log is read where the engineer reads it: the console handler project.logging_config builds,
written to a buffer instead of stderr.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from django.utils.log import configure_logging

from network.activation import activations_expire_due
from network.models import Activation, Router
from project import logging_config
from tests.documents import INITIATE, PAYMENT, PAYMENTS
from tests.live import Daphne, HueyWorker, base_env, running
from tests.network import conftest as network
from tests.network.conftest import deliver_webhook, initiate, pay, run_due_retries

pytestmark = pytest.mark.django_db(transaction=True)

# Alice's shop wired to a fake router, with the activation settings and clean-up of tests/network.
hotspot, fake_router = network.hotspot, network.fake_router
_activation_knobs, _no_leftover_retries = network._activation_knobs, network._no_leftover_retries


@pytest.fixture
def server_log() -> Iterator[Callable[..., io.StringIO]]:
    """Configure logging as a server started with these environment variables would, into a buffer."""

    def configure(**environ: str) -> io.StringIO:
        config = logging_config.build({"LOG_LEVEL": "INFO", **environ})
        stream = io.StringIO()
        config["handlers"]["console"]["stream"] = stream
        logging_config.configure(config)
        return stream

    yield configure
    logging.captureWarnings(False)
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # as django.setup() left it


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _router_is_down(shop) -> None:
    """Nothing listens on the router's API port any more."""
    Router.objects.filter(pk=shop.router.pk).update(api_port=_closed_port())


def _lines_at(text: str, level: str, logger: str = "") -> list[str]:
    return [line for line in text.splitlines() if f" {level} {logger}" in line]


def test_client_mistakes_and_router_retries_log_no_error_and_no_traceback(gql, client, hotspot, server_log):
    log = server_log()  # the default, plain format
    # A bad token, a typo in the document, a syntax error, an unknown id, bad input.
    assert gql(PAYMENTS, token="not-a-token")["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "paymnts" in gql("{ paymnts { totalCount } }", **hotspot.operator.auth)["errors"][0]["message"]
    assert gql("{ payments { totalCount ", **hotspot.operator.auth)["errors"]
    assert gql(PAYMENT, {"id": str(uuid.uuid4())}, **hotspot.operator.auth)["data"]["payment"] is None
    refused = gql(INITIATE, {"input": hotspot.payment_input(phoneNumber="12")}, public_key=hotspot.operator.public_key)
    assert refused["data"]["initiatePayment"]["errors"]
    # A webhook nobody signed.
    forged = client.post(
        "/payments/webhook/",
        data=json.dumps({"api_ref": str(uuid.uuid4()), "invoice_id": "NOPE", "state": "COMPLETE"}),
        content_type="application/json",
    )
    assert forged.status_code == 200
    # A scanner's Host header (Django logs it at ERROR with a traceback unless told otherwise).
    assert client.get("/healthz/", headers={"host": "scanner.example"}).status_code == 400

    # A customer pays while the router is down: the first attempt and one retry fail.
    _router_is_down(hotspot)
    payment = pay(gql, client, hotspot)
    assert len(run_due_retries()) == 1
    activation = Activation.objects.get(payment=payment)
    assert (activation.status, activation.attempts) == (Activation.Status.PENDING, 2)

    text = log.getvalue()
    assert "Traceback" not in text, text
    assert _lines_at(text, "ERROR") == [] and _lines_at(text, "CRITICAL") == [], text
    assert "GraphQL client error (UNAUTHENTICATED)" in text
    assert "Invalid HTTP_HOST header: 'scanner.example'" in text
    assert "GraphQL client error (invalid document): Cannot query field 'paymnts'" in text
    # One WARNING line a retry, with the attempt and the reason; Huey's own line stays quiet.
    warnings = _lines_at(text, "WARNING", "network.activation")
    assert [line.split(" network.activation ")[1].split(":")[0] for line in warnings] == [
        f"Activation {activation.pk} attempt 1 on router {hotspot.router.pk} failed, will retry",
        f"Activation {activation.pk} attempt 2 on router {hotspot.router.pk} failed, will retry",
    ], text
    assert all("Could not connect to router" in line for line in warnings)
    assert "CancelExecution" not in text


def test_intasend_timeouts_while_confirming_a_webhook_are_one_warning_each(gql, client, hotspot, server_log):
    log = server_log()
    payment = initiate(gql, hotspot)
    hotspot.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    hotspot.intasend.fail_next("payment/status/", status=503)
    deliver_webhook(client, hotspot, payment)  # the confirmation job's first call gets the 503

    text = log.getvalue()
    assert "Traceback" not in text and _lines_at(text, "ERROR") == [], text
    [warning] = _lines_at(text, "WARNING", "billing.tasks")
    assert f"IntaSend did not confirm payment {payment.pk} on attempt 1" in warning
    assert "HTTP 503" in warning and warning.endswith("retrying")


def test_expiry_with_the_router_down_is_one_warning_a_run_with_its_attempt(gql, client, hotspot, server_log):
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment, status=Activation.Status.ACTIVE)
    Activation.objects.filter(pk=activation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _router_is_down(hotspot)
    log = server_log()
    activations_expire_due()
    activations_expire_due()

    text = log.getvalue()
    assert "Traceback" not in text and _lines_at(text, "ERROR") == [], text
    warnings = _lines_at(text, "WARNING", "network.activation")
    assert [line.split(" network.activation ")[1].split(",")[0] for line in warnings] == [
        f"Expiry on router {hotspot.router.pk} failed on attempt 1",
        f"Expiry on router {hotspot.router.pk} failed on attempt 2",
    ], text


def test_an_activation_failed_after_its_last_try_is_one_error_line(gql, client, hotspot, server_log, settings):
    settings.ACTIVATION_RETRIES = 1
    log = server_log()
    _router_is_down(hotspot)
    payment = pay(gql, client, hotspot)
    run_due_retries()
    activation = Activation.objects.get(payment=payment)
    assert activation.status == Activation.Status.FAILED

    text = log.getvalue()
    [error] = _lines_at(text, "ERROR")
    assert f"Activation {activation.pk} FAILED on router {hotspot.router.pk} after attempt 2" in error
    assert "Could not connect to router" in error
    assert "Traceback" not in text


def test_json_log_is_one_object_a_line_and_names_the_payment_and_activation(gql, client, hotspot, server_log):
    log = server_log(LOG_FORMAT="json")
    gql(PAYMENTS, token="not-a-token")
    _router_is_down(hotspot)
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)

    records = [json.loads(line) for line in log.getvalue().splitlines()]  # every line parses
    assert records and all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert all(record["time"].endswith("+00:00") for record in records)
    # The IntaSend client's own lines inside the confirmation job name the payment they are about.
    status_calls = [r for r in records if r["logger"] == "billing.gateways.intasend" and "status" in r["message"]]
    assert status_calls and all(r["payment_id"] == str(payment.pk) for r in status_calls)
    [retry] = [r for r in records if r["level"] == "WARNING" and r["logger"] == "network.activation"]
    assert "attempt 1" in retry["message"]
    assert (retry["activation_id"], retry["payment_id"]) == (str(activation.pk), str(payment.pk))
    # Lines about nothing in particular carry no stale ids from the job before them.
    [unauthenticated] = [r for r in records if "UNAUTHENTICATED" in r["message"]]
    assert "payment_id" not in unauthenticated and "activation_id" not in unauthenticated


def test_log_format_is_checked():
    with pytest.raises(Exception, match="LOG_FORMAT"):
        logging_config.build({"LOG_FORMAT": "xml"})
    plain = "%(asctime)s %(levelname)s %(name)s %(message)s"
    assert logging_config.build({})["formatters"]["console"] == {"format": plain}  # the default is unchanged


def test_processes_started_with_log_format_json_write_nothing_but_json_lines(tmp_path):
    """daphne as deployed (project.asgi) and a `run_huey` worker: their own lines, Django's, Huey's,
    Python's warnings and daphne's access log."""
    env = base_env(tmp_path, LOG_FORMAT="json", DEBUG="0")
    server, worker = Daphne(env, tmp_path), HueyWorker(env, tmp_path, periodic=False)
    with running(server, worker):
        server.wait_healthy()
        worker.wait_for_output("Huey consumer started")  # stopped before it had started, it wrote nothing
        graphql = f"{server.url}/graphql/"
        requests.post(graphql, json={"query": PAYMENTS}, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
        requests.post(graphql, json={"query": "{ paymnts { totalCount } }"}, timeout=10)
    server_records = [json.loads(line) for line in server.output().splitlines()]  # every line parses
    worker_records = [json.loads(line) for line in worker.output().splitlines()]

    for records in (server_records, worker_records):
        assert all({"time", "level", "logger", "message"} <= record.keys() for record in records), records
        assert [r for r in records if r["level"] in ("ERROR", "CRITICAL") or "exc_info" in r] == [], records
    assert any(r["logger"] == "strawberry.execution" and "UNAUTHENTICATED" in r["message"] for r in server_records)
    assert any(r["logger"] == "daphne.access" and '"POST /graphql/" 200' in r["message"] for r in server_records)
    # Huey's worker does not add a second, plain handler of its own: each line once.
    assert len([r for r in worker_records if r["message"].startswith("Huey consumer started")]) == 1
