"""A loopback HTTP server that speaks IntaSend's collection API, for tests.

A thin ``ThreadingHTTPServer`` over the simulator shipped in the product (``billing.simulator``):

* :class:`IntaSendLedger` (``billing.simulator.ledger``) — the in-memory state (accounts, invoices,
  checkouts, received requests, injected failures), every method thread-safe, no HTTP.
* ``IntaSendAPI`` (``billing.simulator.api``) — IntaSend's endpoints and error shapes over a ledger.
* :class:`FakeIntaSend` (here) — puts that API on 127.0.0.1, plus test controls as plain methods
  *and* as JSON POSTs under ``/_control/`` (so a test can drive a fake running in another
  process), plus webhook delivery.

Endpoints (under ``/api/v1/``): ``payment/mpesa-stk-push/``, ``payment/status/``, ``checkout/``,
``checkout/details/``, ``GET payment/collection/?api_ref=``, ``GET wallets/``; and ``GET /checkout/<id>/express/``
(a stub page; the app's simulator has the real one).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import asdict
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

from billing.simulator.api import (
    API_PREFIX,
    DEFAULT_FAILURE_BODIES,
    HTML_502,
    IntaSendAPI,
    Response,
    injection,
)
from billing.simulator.ledger import (
    AUTO,
    Checkout,
    Injection,
    IntaSendLedger,
    Invoice,
    RecordedRequest,
    checkout_json,
    customer_json,
    invoice_json,
    status_json,
    stk_push_json,
    webhook_json,
)
from billing.simulator.webhooks import WebhookDelivery, WebhookSender

__all__ = [
    "AUTO",
    "DEFAULT_FAILURE_BODIES",
    "HTML_502",
    "FakeCheckout",
    "FakeIntaSend",
    "FakeInvoice",
    "IntaSendLedger",
    "RecordedRequest",
    "WebhookDelivery",
    "checkout_json",
    "customer_json",
    "invoice_json",
    "status_json",
    "stk_push_json",
    "webhook_json",
]

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_control/"

# The records' names from before they moved into the product.
FakeInvoice = Invoice
FakeCheckout = Checkout
_Injection = Injection


class FakeIntaSend:
    """IntaSend on loopback. Use as a context manager, or ``start()``/``stop()``::

        with FakeIntaSend(accounts={"ISPubKey_test_x": "ISSecretKey_test_y"}) as fake:
            gateway = IntaSendGateway(creds, base_url=fake.base_url)

    ``webhook_url`` (+ ``webhook_challenge``) makes every ``settle()`` POST the webhook body to
    that URL, in a background thread by default (``webhook_sync=True`` delivers before
    ``settle()`` returns; ``wait_for_webhooks()`` joins background deliveries).
    ``response_delay`` (seconds) holds every HTTP response back that long: IntaSend one round trip
    away (the benchmarks' latency injection; 0 by default).
    """

    def __init__(
        self,
        accounts: dict[str, str],
        *,
        webhook_url: str | None = None,
        webhook_challenge: str | None = None,
        webhook_sync: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        response_delay: float = 0.0,
    ) -> None:
        self.ledger = IntaSendLedger(accounts)
        self.response_delay = response_delay
        self.webhook_url = webhook_url
        self.webhook_challenge = webhook_challenge
        self.webhook_sync = webhook_sync
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.api = IntaSendAPI(self.ledger, stopping=self._stopping)
        self._webhooks = WebhookSender()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeIntaSend:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-intasend", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes hung handlers
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self.wait_for_webhooks(timeout=5)

    def __enter__(self) -> FakeIntaSend:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeIntaSend is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v1/`` — what the gateway's ``base_url`` should be."""
        return self.root_url + API_PREFIX.lstrip("/")

    @property
    def control_url(self) -> str:
        return self.root_url + CONTROL_PREFIX.lstrip("/")

    # -- test controls ------------------------------------------------------------------------

    def add_account(self, public_key: str, secret: str) -> None:
        """Make a key pair known (IntaSend accepts it from now on), e.g. before storing it as a credential."""
        self.ledger.add_account(public_key, secret)

    def settle(
        self,
        invoice_id: str,
        state: str = "COMPLETE",
        *,
        failed_reason: str | None = None,
        failed_code: str | int | None = None,
        mpesa_reference: Any = AUTO,
        charges: Decimal | str | None = None,
        value: Decimal | str | None = None,
        force: bool = False,
        webhook: bool = True,
    ) -> Invoice:
        """Change an invoice's state (see :meth:`IntaSendLedger.settle`) and, when a
        ``webhook_url`` is configured and ``webhook`` is true, deliver the webhook."""
        invoice = self.ledger.settle(
            invoice_id,
            state,
            failed_reason=failed_reason,
            failed_code=failed_code,
            mpesa_reference=mpesa_reference,
            charges=charges,
            value=value,
            force=force,
        )
        if webhook:
            self._auto_deliver(invoice)
        return invoice

    def pay_checkout(
        self,
        checkout_id: str,
        state: str = "COMPLETE",
        *,
        provider: str = "M-PESA",
        account: str | None = None,
        webhook: bool = True,
        **settle_kwargs: Any,
    ) -> Invoice:
        """The customer pays on the checkout page; returns the checkout's invoice."""
        invoice = self.ledger.pay_checkout(checkout_id, state, provider=provider, account=account, **settle_kwargs)
        if webhook and state.strip().upper() != "PENDING":
            self._auto_deliver(invoice)
        return invoice

    def fail_next(
        self,
        path_suffix: str,
        status: int = 500,
        body: Any = None,
        *,
        content_type: str | None = None,
        times: int = 1,
        hang: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls to the endpoint ending in ``path_suffix`` answer
        ``status`` with ``body``: a dict/list (sent as JSON), a str/bytes (sent raw: an HTML page,
        "not json"...), or None for IntaSend's usual body for that status."""
        self.ledger.inject(path_suffix, injection(status, body, content_type=content_type, hang=hang), times)

    def hang_next(self, path_suffix: str, seconds: float, *, times: int = 1) -> None:
        """Delay the next ``times`` answers of that endpoint by ``seconds`` (then answer normally),
        to exercise client timeouts. ``stop()`` cuts hangs short."""
        self.ledger.inject(path_suffix, injection(None, hang=seconds), times)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.ledger.requests

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        key = path_suffix.strip("/")
        return [r for r in self.ledger.requests if r.path.strip("/").endswith(key)]

    @property
    def invoices(self) -> dict[str, Invoice]:
        return self.ledger.invoices

    def invoice(self, invoice_id: str) -> Invoice:
        return self.ledger.invoice(invoice_id)

    def invoices_by_api_ref(self, api_ref: str) -> list[Invoice]:
        return self.ledger.invoices_by_api_ref(api_ref)

    def checkout(self, checkout_id: str) -> Checkout:
        return self.ledger.checkout(checkout_id)

    def reset(self) -> None:
        self.ledger.reset()
        self._webhooks.clear()

    # -- webhooks -----------------------------------------------------------------------------

    def webhook_body(self, invoice_id: str, challenge: str | None = None) -> dict[str, Any]:
        """The body IntaSend would POST for the invoice's current state. ``challenge`` defaults
        to the configured ``webhook_challenge``."""
        return webhook_json(self.ledger.invoice(invoice_id), challenge or self.webhook_challenge)

    def deliver_webhook(
        self, invoice_id: str, url: str, challenge: str | None = None, *, timeout: float = 10
    ) -> tuple[int, str]:
        """POST the webhook for the invoice's current state to ``url`` now; returns
        ``(status_code, response_text)``. Network errors propagate (and are recorded)."""
        return self._webhooks.post(url, self.webhook_body(invoice_id, challenge), timeout=timeout)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self._webhooks.deliveries

    def wait_for_webhooks(self, timeout: float = 5.0) -> None:
        """Join background deliveries started so far."""
        self._webhooks.wait(timeout)

    def _auto_deliver(self, invoice: Invoice) -> None:
        if not self.webhook_url:
            return
        # Body built now, from this state: a later settle() must not change what this POST says.
        body = webhook_json(invoice, self.webhook_challenge)
        if self.webhook_sync:
            self._webhooks.post(self.webhook_url, body, raise_errors=False)
        else:
            self._webhooks.post_in_background(self.webhook_url, body)

    # -- HTTP ---------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Any, raw: bytes, client_ip: str) -> Response:
        url = urlsplit(target)
        path = url.path
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX) :].strip("/"), raw)
        if method == "GET" and path.startswith("/checkout/"):
            return self._checkout_page(path)
        return self.api.handle(method, path, headers, raw, root_url=self.root_url, client_ip=client_ip, query=url.query)

    def _checkout_page(self, path: str) -> Response:
        match = re.fullmatch(r"/checkout/([0-9a-f-]+)/express/?", path)
        try:
            checkout = self.ledger.checkout(match.group(1) if match else "")
        except KeyError:
            return Response(404, "text/html; charset=utf-8", b"<html><body><h1>Not found</h1></body></html>")
        page = (
            f"<html><body><h1>Fake IntaSend checkout</h1><p>{checkout.amount} {checkout.currency}"
            f" &middot; {'paid' if checkout.paid else 'unpaid'}</p></body></html>"
        )
        return Response(200, "text/html; charset=utf-8", page.encode())

    def _control(self, method: str, name: str, raw: bytes) -> Response:
        """``POST /_control/<name>`` with a JSON object of the method's keyword arguments."""
        if method != "POST":
            return _json_response(405, {"error": "control endpoints take POST"})
        try:
            args = json.loads(raw) if raw else {}
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return _json_response(400, {"error": "body must be a JSON object"})
        handlers = {
            "settle": self._control_settle,
            "pay_checkout": self._control_pay_checkout,
            "add_account": lambda a: self.add_account(**a),
            "fail_next": lambda a: self.fail_next(**a),
            "hang_next": lambda a: self.hang_next(**a),
            "requests": lambda a: (
                [asdict(r) for r in self.requests_to(a["path_suffix"])]
                if a.get("path_suffix")
                else [asdict(r) for r in self.requests]
            ),
            "invoices": self._control_invoices,
            "checkout": lambda a: checkout_json(self.checkout(a["checkout_id"]), self.root_url),
            "webhook_body": lambda a: self.webhook_body(a["invoice_id"], a.get("challenge")),
            "deliver_webhook": self._control_deliver_webhook,
            "webhook_deliveries": lambda a: [asdict(d) for d in self.webhook_deliveries],
            "reset": lambda a: self.reset(),
        }
        handler = handlers.get(name)
        if handler is None:
            return _json_response(404, {"error": f"unknown control {name!r}", "controls": sorted(handlers)})
        try:
            result = handler(args)
        except KeyError as exc:
            return _json_response(404, {"error": str(exc.args[0] if exc.args else exc)})
        except (TypeError, ValueError, requests.RequestException) as exc:
            return _json_response(400, {"error": str(exc)})
        return _json_response(200, {"ok": True} if result is None else result)

    def _control_settle(self, args: dict[str, Any]) -> dict[str, Any]:
        args = dict(args)
        if "mpesa_reference" not in args:
            args["mpesa_reference"] = AUTO  # JSON null means "none", absence means "generate"
        return _invoice_control_json(self.settle(args.pop("invoice_id"), **args))

    def _control_pay_checkout(self, args: dict[str, Any]) -> dict[str, Any]:
        args = dict(args)
        return _invoice_control_json(self.pay_checkout(args.pop("checkout_id"), **args))

    def _control_deliver_webhook(self, args: dict[str, Any]) -> dict[str, Any]:
        status_code, text = self.deliver_webhook(args["invoice_id"], args["url"], args.get("challenge"))
        return {"status_code": status_code, "body": text}

    def _control_invoices(self, args: dict[str, Any]) -> Any:
        if args.get("invoice_id"):
            return _invoice_control_json(self.invoice(args["invoice_id"]))
        if args.get("api_ref"):
            return [_invoice_control_json(i) for i in self.invoices_by_api_ref(args["api_ref"])]
        return [_invoice_control_json(i) for i in self.invoices.values()]


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeIntaSend/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, so the gateway's session pooling is exercised
    timeout = 30  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the 40 ms stall

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake: FakeIntaSend = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            response = fake._handle(method, self.path, self.headers, raw, self.client_address[0])
        except Exception:  # a bug in the fake must show up as a 500, not a hung client
            logger.exception("fake IntaSend crashed on %s %s", method, self.path)
            response = _json_response(500, DEFAULT_FAILURE_BODIES[500])
        if fake.response_delay:
            time.sleep(fake.response_delay)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. a timeout test): nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake IntaSend: " + format, *args)


def _json_response(status: int, body: Any) -> Response:
    return Response(status, "application/json", json.dumps(body, default=str).encode())


def _invoice_control_json(invoice: Invoice) -> dict[str, Any]:
    data = asdict(invoice)
    data["net_amount"] = invoice.net_amount
    return json.loads(json.dumps(data, default=str))
