"""IntaSendGateway (the official SDK with its gaps fixed) against a loopback fake of IntaSend's API.

No database, no Django settings: the gateway is a plain adapter.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import intasend.client
import pytest
import requests

from billing.gateways import (
    GatewayCredentials,
    GatewayRejected,
    GatewayUnavailable,
    IntaSendGateway,
    PaymentGateway,
)
from tests.fakes.intasend_server import HTML_502, FakeIntaSend

PUBLIC_KEY = "ISPubKey_test_5f2c1a9e-0b7d-4c57-9a43-1f0e2d3c4b5a"
SECRET = "ISSecretKey_test_9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
PHONE = "254712345678"


@pytest.fixture
def fake() -> Iterator[FakeIntaSend]:
    with FakeIntaSend(accounts={PUBLIC_KEY: SECRET}) as server:
        yield server


def make_gateway(
    base_url: str,
    *,
    secret: str = SECRET,
    timeout: tuple[float, float] = (2, 5),
) -> IntaSendGateway:
    return IntaSendGateway(GatewayCredentials(PUBLIC_KEY, secret, "SANDBOX"), base_url=base_url, timeout=timeout)


@pytest.fixture
def gateway(fake: FakeIntaSend) -> Iterator[IntaSendGateway]:
    with make_gateway(fake.base_url) as gw:
        yield gw


def push(gateway: IntaSendGateway, **overrides):
    kwargs = {"phone_number": PHONE, "amount": Decimal("25"), "api_ref": "pay-1", "narrative": "WiFi 1h"}
    kwargs.update(overrides)
    return gateway.stk_push(**kwargs)


# -- happy paths -------------------------------------------------------------------------------------


def test_stk_push_returns_the_invoice_and_sends_what_the_sdk_sends(fake, gateway):
    result = push(gateway, api_ref="3f0c8d1e-pay")

    assert isinstance(gateway, PaymentGateway)
    assert re.fullmatch(r"[A-Z0-9]{7}", result.invoice_id)
    assert result.state == "PENDING"
    assert result.payment_id == result.raw["id"] and result.payment_id
    assert fake.invoice(result.invoice_id).api_ref == "3f0c8d1e-pay"

    [received] = fake.requests_to("payment/mpesa-stk-push/")
    assert received.method == "POST"
    assert received.json["phone_number"] == PHONE
    assert received.json["amount"] == 25
    assert received.json["api_ref"] == "3f0c8d1e-pay"
    assert received.json["narrative"] == "WiFi 1h"
    assert received.json["method"] == "M-PESA"
    assert received.json["currency"] == "KES"
    assert received.json["public_key"] == PUBLIC_KEY
    assert received.headers["Authorization"] == "Bearer <redacted>"
    assert received.authenticated_as == PUBLIC_KEY  # the Bearer token was our secret
    assert received.headers["INTASEND_PUBLIC_API_KEY"] == PUBLIC_KEY
    assert received.headers["X-IntaSend-Public-API-Key"] == PUBLIC_KEY


def test_stk_push_sends_fractional_decimal_amounts_without_float_rounding(fake, gateway):
    result = push(gateway, amount=Decimal("10.10"))
    whole = push(gateway, amount=Decimal("50.00"), api_ref="pay-2")

    first, second = fake.requests_to("mpesa-stk-push")
    assert first.json["amount"] == "10.10"  # a string: never 10.099999...
    assert second.json["amount"] == 50  # whole shillings go as JSON integers
    assert fake.invoice(result.invoice_id).value == Decimal("10.10")
    assert fake.invoice(whole.invoice_id).value == Decimal("50")


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-5"), Decimal("NaN"), "abc"])
def test_stk_push_refuses_impossible_amounts_before_calling_intasend(fake, gateway, amount):
    with pytest.raises(ValueError):
        push(gateway, amount=amount)
    assert fake.requests == []


def test_status_after_complete_reports_amount_receipt_and_reference(fake, gateway):
    pushed = push(gateway, amount=Decimal("20"), api_ref="pay-ok")
    fake.settle(pushed.invoice_id, "COMPLETE", mpesa_reference="TDLE527E2G")

    status = gateway.status(invoice_id=pushed.invoice_id)

    assert status.invoice_id == pushed.invoice_id
    assert status.state == "COMPLETE"
    assert status.amount == Decimal("20") and isinstance(status.amount, Decimal)
    assert status.currency == "KES"
    assert status.provider == "M-PESA"
    assert status.mpesa_reference == "TDLE527E2G"
    assert status.api_ref == "pay-ok"
    assert status.failed_reason is None and status.failed_code is None
    [received] = fake.requests_to("payment/status/")
    assert received.json == {"invoice_id": pushed.invoice_id, "public_key": PUBLIC_KEY}
    assert "Authorization" not in received.headers  # the SDK sends status without the secret


def test_status_after_failure_reports_reason_and_code_as_text(fake, gateway):
    pushed = push(gateway)
    fake.settle(pushed.invoice_id, "FAILED", failed_reason="Request cancelled by user", failed_code=-1)

    status = gateway.status(invoice_id=pushed.invoice_id)

    assert status.state == "FAILED"
    assert status.failed_reason == "Request cancelled by user"
    assert status.failed_code == "-1"
    assert status.mpesa_reference is None


def test_status_upper_cases_but_does_not_map_states_and_parses_string_money(fake, gateway):
    body = {"invoice": {"invoice_id": "ABC1234", "state": "completed", "value": "52.50", "failed_code": 0}}
    fake.fail_next("payment/status/", status=200, body=body)

    status = gateway.status(invoice_id="ABC1234")

    assert status.state == "COMPLETED"  # mapping COMPLETED -> paid is the services' job
    assert status.amount == Decimal("52.50")
    assert status.failed_code == "0"
    assert status.raw == body


def test_checkout_then_status_by_checkout_id_and_signature(fake, gateway):
    created = gateway.checkout(amount=Decimal("100"), api_ref="pay-link", phone_number=PHONE)

    assert created.state == "PENDING"
    assert created.url == f"{fake.root_url}checkout/{created.checkout_id}/express/"
    assert created.signature.count(".") == 2  # a JWT
    [received] = fake.requests_to("checkout/")
    assert received.json["api_ref"] == "pay-link" and received.json["amount"] == 100
    assert "Authorization" not in received.headers

    invoice = fake.pay_checkout(created.checkout_id, "COMPLETE")
    status = gateway.status(checkout_id=created.checkout_id, signature=created.signature)

    assert status.invoice_id == invoice.invoice_id
    assert status.state == "COMPLETE"
    assert status.api_ref == "pay-link"
    assert status.amount == Decimal("100")
    assert fake.requests_to("payment/status/")[-1].json == {
        "invoice_id": None,
        "signature": created.signature,
        "checkout_id": created.checkout_id,
    }


def test_status_needs_an_invoice_or_a_checkout_with_its_signature(gateway):
    with pytest.raises(ValueError):
        gateway.status()
    with pytest.raises(ValueError):
        gateway.status(checkout_id="abc")


# -- refusals: 4xx ----------------------------------------------------------------------------------


def test_find_by_api_ref_lists_collections_with_the_secret_key(fake, gateway):
    assert gateway.find_by_api_ref("pay-1") is None  # nothing pushed yet: no invoice, no error
    invoice_id = push(gateway, api_ref="pay-1").invoice_id
    push(gateway, api_ref="pay-2")
    fake.settle(invoice_id, "COMPLETE")

    found = gateway.find_by_api_ref("pay-1")

    assert found.invoice_id == invoice_id and found.state == "COMPLETE"
    assert found.api_ref == "pay-1" and found.amount == Decimal("25")
    lookup = fake.requests_to("payment/collection/")[-1]
    assert lookup.method == "GET" and lookup.authenticated_as == PUBLIC_KEY
    assert lookup.headers["Authorization"] == "Bearer <redacted>"


def test_find_by_api_ref_ignores_entries_for_other_references(fake, gateway):
    # IntaSend's filter is trusted to narrow the list, not to decide which invoice is ours.
    fake.fail_next(
        "payment/collection/",
        status=200,
        body={"count": 1, "next": None, "previous": None, "results": [{"invoice_id": "X", "state": "COMPLETE"}]},
    )
    assert gateway.find_by_api_ref("pay-1") is None
    fake.fail_next("payment/collection/", status=200, body={"detail": "not a page"})
    with pytest.raises(GatewayUnavailable):
        gateway.find_by_api_ref("pay-1")


def test_bad_phone_is_rejected_with_intasends_validation_errors(fake, gateway):
    with pytest.raises(GatewayRejected) as caught:
        push(gateway, phone_number="0712345678")

    assert caught.value.status_code == 400
    assert caught.value.errors == [
        {
            "code": "invalid",
            "detail": "Invalid phone number. Use the format 2547XXXXXXXX.",
            "attr": "phone_number",
        }
    ]
    assert "phone_number" in caught.value.detail


def test_wrong_secret_is_rejected_401(fake):
    with (
        make_gateway(fake.base_url, secret="ISSecretKey_test_wrong") as gw,
        pytest.raises(GatewayRejected) as caught,
    ):
        push(gw)

    assert caught.value.status_code == 401
    assert caught.value.errors[0]["code"] == "authentication_failed"
    assert fake.requests[0].authenticated_as is None


def test_unknown_invoice_is_rejected_404(gateway):
    with pytest.raises(GatewayRejected) as caught:
        gateway.status(invoice_id="NOPE123")

    assert caught.value.status_code == 404
    assert caught.value.errors == [{"code": "not_found", "detail": "Not found.", "attr": None}]


@pytest.mark.parametrize("status_code", [400, 401, 403, 404, 409, 429])
def test_injected_4xx_answers_are_rejections(fake, gateway, status_code):
    fake.fail_next("mpesa-stk-push/", status=status_code)

    with pytest.raises(GatewayRejected) as caught:
        push(gateway)

    assert caught.value.status_code == status_code
    assert caught.value.errors  # both the {"detail"} and {"type", "errors"} shapes are parsed


# -- unavailability: 5xx, garbage, network ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "body"),
    [
        (500, None),
        (503, None),
        (503, {"type": "server_error", "errors": [{"code": "maintenance", "detail": "Down", "attr": None}]}),
        (502, HTML_502),
        (200, "not json"),
        (200, ""),
        (200, ["a", "list"]),
        (200, {"id": "3f2a"}),  # no invoice
        (200, {"invoice": {"state": "PENDING"}}),  # no invoice_id
        (201, {"errors": [{"code": "x", "detail": "y", "attr": None}]}),
    ],
)
def test_server_errors_and_garbage_are_unavailable(fake, gateway, status_code, body):
    fake.fail_next("mpesa-stk-push/", status=status_code, body=body)

    with pytest.raises(GatewayUnavailable) as caught:
        push(gateway)

    assert caught.value.status_code == status_code


def test_html_502_keeps_the_page_in_detail_for_logs(fake, gateway):
    fake.fail_next("payment/status/", status=502, body=HTML_502)

    with pytest.raises(GatewayUnavailable) as caught:
        gateway.status(invoice_id="ABC1234")

    assert "502 Bad Gateway" in caught.value.detail
    assert caught.value.errors == []


@pytest.mark.parametrize(
    "body",
    [{"id": "c-1"}, {"url": "http://x/"}, {"id": "", "url": "http://x/"}],
)
def test_checkout_without_id_or_url_is_unavailable(fake, gateway, body):
    fake.fail_next("checkout/", status=200, body=body)

    with pytest.raises(GatewayUnavailable):
        gateway.checkout(amount=Decimal("10"), api_ref="pay-1")


@pytest.mark.parametrize(
    "body",
    [
        {"meta": {}},
        {"invoice": {"invoice_id": "ABC1234"}},  # no state
        {"invoice": {"invoice_id": "ABC1234", "state": "COMPLETE", "value": "lots"}},
        {"invoice": {"invoice_id": "OTHER99", "state": "COMPLETE"}},  # someone else's invoice
    ],
)
def test_status_without_usable_invoice_is_unavailable(fake, gateway, body):
    fake.fail_next("payment/status/", status=200, body=body)

    with pytest.raises(GatewayUnavailable):
        gateway.status(invoice_id="ABC1234")


def test_hung_intasend_times_out_quickly_and_the_gateway_recovers(fake):
    fake.hang_next("mpesa-stk-push/", seconds=10)
    with make_gateway(fake.base_url, timeout=(1, 0.5)) as gw:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable) as caught:
            push(gw)
        elapsed = time.monotonic() - started

        assert elapsed < 3
        assert caught.value.status_code is None
        assert push(gw, api_ref="pay-2").state == "PENDING"  # the next call goes through


def test_connection_refused_is_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with make_gateway(f"http://127.0.0.1:{port}/api/v1", timeout=(1, 1)) as gw:
        with pytest.raises(GatewayUnavailable) as caught:
            gw.status(invoice_id="ABC1234")
    assert caught.value.status_code is None


# -- configuration, logging ------------------------------------------------------------------------------


def test_environment_picks_the_sdk_host_and_base_url_overrides_it():
    sandbox = IntaSendGateway(GatewayCredentials(PUBLIC_KEY, SECRET, "SANDBOX"))
    live = IntaSendGateway(GatewayCredentials("ISPubKey_live_x", "ISSecretKey_live_y", "live"))
    local = IntaSendGateway(GatewayCredentials(PUBLIC_KEY, SECRET, "LIVE"), base_url="http://127.0.0.1:9/api/v1")

    assert sandbox.base_url == "https://sandbox.intasend.com/api/v1/"
    assert live.base_url == "https://payment.intasend.com/api/v1/"
    assert local.base_url == "http://127.0.0.1:9/api/v1/"
    assert intasend.client.get_service_url("x", True) == "https://sandbox.intasend.com/api/v1/x"  # untouched
    assert SECRET not in repr(sandbox) and SECRET not in repr(sandbox._collect.__dict__.get("_base_url"))
    with pytest.raises(ValueError):
        IntaSendGateway(GatewayCredentials(PUBLIC_KEY, SECRET, "STAGING"))
    with pytest.raises(ValueError):
        IntaSendGateway(GatewayCredentials(PUBLIC_KEY, "", "SANDBOX"))


def test_gateways_keep_their_own_base_urls_across_threads():
    """Per-instance transport: no process-global patching, so concurrent gateways don't mix hosts."""
    with (
        FakeIntaSend(accounts={PUBLIC_KEY: SECRET}) as one,
        FakeIntaSend(accounts={PUBLIC_KEY: SECRET}) as two,
    ):
        errors: list[BaseException] = []

        def work(fake: FakeIntaSend, ref: str) -> None:
            try:
                with make_gateway(fake.base_url) as gw:
                    for i in range(5):
                        push(gw, api_ref=f"{ref}-{i}")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f, r)) for f, r in ((one, "one"), (two, "two"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

        assert errors == []
        assert sorted(i.api_ref for i in one.invoices.values()) == [f"one-{i}" for i in range(5)]
        assert sorted(i.api_ref for i in two.invoices.values()) == [f"two-{i}" for i in range(5)]


def test_calls_are_logged_without_the_private_key(fake, gateway, caplog):
    caplog.set_level(logging.DEBUG)  # everything, urllib3's debug lines included
    pushed = push(gateway)
    gateway.status(invoice_id=pushed.invoice_id)
    fake.fail_next("mpesa-stk-push/", status=401)
    with pytest.raises(GatewayRejected) as rejected:
        push(gateway)
    fake.fail_next("payment/status/", status=502, body=HTML_502)
    with pytest.raises(GatewayUnavailable) as unavailable:
        gateway.status(invoice_id=pushed.invoice_id)

    ours = [r for r in caplog.records if r.name == "billing.gateways.intasend"]
    assert [(r.levelno, r.endpoint, r.http_status) for r in ours] == [
        (logging.INFO, "payment/mpesa-stk-push/", "200"),
        (logging.INFO, "payment/status/", "200"),
        (logging.INFO, "payment/mpesa-stk-push/", "401"),
        (logging.INFO, "payment/status/", "502"),
    ]
    assert all(isinstance(r.duration_ms, int) for r in ours)
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in json.dumps(record.__dict__, default=str)
    for exc in (rejected.value, unavailable.value):
        assert SECRET not in f"{exc} {exc.detail} {exc.errors}"


# -- the fake itself -----------------------------------------------------------------------------------


class _WebhookReceiver:
    """A tiny app-side endpoint that stores what it is POSTed."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.received.set()
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/payments/webhook/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_WebhookReceiver]:
    r = _WebhookReceiver()
    yield r
    r.close()


def test_webhook_body_is_the_flat_invoice_with_string_money_and_challenge_last(fake, gateway):
    pushed = push(gateway, amount=Decimal("20"), api_ref="pay-wh")
    fake.settle(pushed.invoice_id, "COMPLETE")

    body = fake.webhook_body(pushed.invoice_id, challenge="s3cret-challenge")

    assert list(body)[-1] == "challenge" and body["challenge"] == "s3cret-challenge"
    expected_keys = {
        "invoice_id", "state", "provider", "charges", "net_amount", "currency", "value", "account",
        "api_ref", "host", "failed_reason", "failed_code", "failed_code_link", "created_at",
        "updated_at", "mpesa_reference", "challenge",
    }  # fmt: skip
    assert expected_keys <= set(body)
    assert "customer" not in body and "meta" not in body
    assert (body["value"], body["net_amount"], body["charges"]) == ("20.00", "20.00", "0.00")
    assert body["state"] == "COMPLETE" and body["api_ref"] == "pay-wh"
    assert re.fullmatch(r"[A-Z][A-Z0-9]{9}", body["mpesa_reference"])


def test_settle_delivers_the_webhook_synchronously_when_configured(receiver):
    with (
        FakeIntaSend(
            accounts={PUBLIC_KEY: SECRET},
            webhook_url=receiver.url,
            webhook_challenge="ch-1",
            webhook_sync=True,
        ) as fake,
        make_gateway(fake.base_url) as gw,
    ):
        pushed = push(gw)
        assert receiver.bodies == []  # creating the invoice sends nothing

        fake.settle(pushed.invoice_id, "PROCESSING")
        fake.settle(pushed.invoice_id, "FAILED")

        assert [(b["invoice_id"], b["state"], b["challenge"]) for b in receiver.bodies] == [
            (pushed.invoice_id, "PROCESSING", "ch-1"),
            (pushed.invoice_id, "FAILED", "ch-1"),
        ]
        assert [d.status_code for d in fake.webhook_deliveries] == [200, 200]


def test_settle_delivers_in_the_background_by_default_and_pay_checkout_too(receiver):
    with (
        FakeIntaSend(accounts={PUBLIC_KEY: SECRET}, webhook_url=receiver.url) as fake,
        make_gateway(fake.base_url) as gw,
    ):
        created = gw.checkout(amount=Decimal("30"), api_ref="pay-link")
        invoice = fake.pay_checkout(created.checkout_id)
        fake.wait_for_webhooks()

        assert [(b["invoice_id"], b["state"], b["api_ref"]) for b in receiver.bodies] == [
            (invoice.invoice_id, "COMPLETE", "pay-link")
        ]
        assert fake.checkout(created.checkout_id).paid is True


def test_deliver_webhook_posts_the_current_state(fake, gateway, receiver):
    pushed = push(gateway)

    status_code, text = fake.deliver_webhook(pushed.invoice_id, receiver.url, challenge="x")

    assert (status_code, json.loads(text)) == (200, {"status": "ok"})
    assert receiver.bodies[0]["state"] == "PENDING" and receiver.bodies[0]["challenge"] == "x"


def test_settle_refuses_to_leave_a_final_state_unless_forced(fake, gateway):
    pushed = push(gateway)
    fake.settle(pushed.invoice_id, "COMPLETE")

    with pytest.raises(ValueError):
        fake.settle(pushed.invoice_id, "FAILED")
    assert fake.settle(pushed.invoice_id, "FAILED", force=True).state == "FAILED"


def test_fake_can_be_driven_over_http_controls(fake, gateway):
    pushed = push(gateway, api_ref="pay-ctl")
    control = fake.control_url

    settled = requests.post(control + "settle", json={"invoice_id": pushed.invoice_id, "state": "COMPLETE"}, timeout=5)
    assert settled.status_code == 200 and settled.json()["state"] == "COMPLETE"
    assert settled.json()["mpesa_reference"]  # absent key = generate one
    assert gateway.status(invoice_id=pushed.invoice_id).state == "COMPLETE"

    requests.post(control + "fail_next", json={"path_suffix": "payment/status/", "status": 503}, timeout=5)
    with pytest.raises(GatewayUnavailable):
        gateway.status(invoice_id=pushed.invoice_id)

    by_ref = requests.post(control + "invoices", json={"api_ref": "pay-ctl"}, timeout=5).json()
    assert [i["invoice_id"] for i in by_ref] == [pushed.invoice_id]
    seen = requests.post(control + "requests", json={"path_suffix": "mpesa-stk-push/"}, timeout=5).json()
    assert seen[0]["json"]["api_ref"] == "pay-ctl" and seen[0]["headers"]["Authorization"] == "Bearer <redacted>"
    assert requests.post(control + "settle", json={"invoice_id": "NOPE"}, timeout=5).status_code == 404
