"""A loopback HTTP server that speaks IntaSend's collection API, for tests (and later the simulator).

Shapes, states and error bodies follow shared/reference/intasend-api-notes.md. Two layers:

* :class:`IntaSendLedger` — the in-memory state (accounts, invoices, checkouts, received requests,
  injected failures), every method thread-safe, no HTTP.
* :class:`FakeIntaSend` — a ``ThreadingHTTPServer`` on 127.0.0.1 that answers IntaSend's endpoints
  from the ledger, plus test controls as plain methods *and* as JSON POSTs under ``/_control/``
  (so a test can drive a fake running in another process), plus webhook delivery.

Endpoints (under ``/api/v1/``): ``payment/mpesa-stk-push/``, ``payment/status/``, ``checkout/``,
``checkout/details/``; and ``GET /checkout/<id>/express/`` (a stub page).

Where IntaSend's behaviour is undocumented, the choices made here are marked "[I]".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

__all__ = [
    "AUTO",
    "HTML_502",
    "FakeCheckout",
    "FakeIntaSend",
    "FakeInvoice",
    "IntaSendLedger",
    "RecordedRequest",
    "WebhookDelivery",
]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
CONTROL_PREFIX = "/_control/"
PHONE_RE = re.compile(r"^254(7|1)\d{8}$")
FINAL_STATES = frozenset({"COMPLETE", "COMPLETED", "FAILED"})
CHECKOUT_CURRENCIES = frozenset({"KES", "USD", "EUR", "GBP"})
EAT = timezone(timedelta(hours=3))  # IntaSend stamps times in Nairobi time
_ALNUM = string.ascii_uppercase + string.digits


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()  # "generate a realistic value" (e.g. an M-Pesa receipt on COMPLETE)

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _error_body(kind: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": kind, "errors": [{"code": code, "detail": detail, "attr": attr}]}


NOT_FOUND = _error_body("client_error", "not_found", "Not found.")
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}  # the older DRF shape
BAD_TOKEN = _error_body("client_error", "authentication_failed", "Invalid api token")
BAD_PUBLIC_KEY = _error_body("client_error", "authentication_failed", "Invalid public key")  # [I]

# What fail_next() answers when given only a status code.
DEFAULT_FAILURE_BODIES: dict[int, Any] = {
    400: _error_body("validation_error", "invalid", "Invalid request.", "non_field_errors"),
    401: NOT_AUTHENTICATED,
    403: _error_body("client_error", "permission_denied", "You do not have permission to perform this action."),
    404: NOT_FOUND,
    409: _error_body("client_error", "conflict", "Conflict."),
    429: _error_body("client_error", "throttled", "Request was throttled."),
    500: _error_body("server_error", "error", "A server error occurred."),
    502: HTML_502,
    503: _error_body("server_error", "service_unavailable", "Service temporarily unavailable, try again later."),
}


# -- ledger records ------------------------------------------------------------------------------


@dataclass
class FakeInvoice:
    """One invoice as the ledger holds it. Snapshots (copies) are handed out, never the original."""

    invoice_id: str
    payment_id: str  # the STK push response's top-level "id", status "meta.id"
    public_key: str  # the owning account
    state: str
    provider: str
    value: Decimal
    charges: Decimal
    currency: str
    account: str  # phone number or email, as IntaSend echoes it
    api_ref: str | None
    host: str
    customer_id: str
    phone_number: str | None
    email: str | None
    created_at: str
    updated_at: str
    narrative: str | None = None
    checkout_id: str | None = None
    mpesa_reference: str | None = None
    failed_reason: str | None = None
    failed_code: str | None = None
    failed_code_link: str | None = None
    retry_count: int = 0

    @property
    def net_amount(self) -> Decimal:
        return self.value - self.charges


@dataclass
class FakeCheckout:
    checkout_id: str
    public_key: str
    signature: str
    expires_at: float
    amount: Decimal
    currency: str
    api_ref: str | None
    email: str | None
    phone_number: str | None
    first_name: str | None
    last_name: str | None
    method: str | None
    redirect_url: str | None
    callback_url: str | None
    created_at: str
    updated_at: str
    paid: bool = False
    invoice_id: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the API endpoints received. The Authorization header keeps only its scheme
    ("Bearer <redacted>"); ``authenticated_as`` says which account's secret it carried, if any."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    authenticated_as: str | None
    injected: str | None  # e.g. "fail:503", "hang:2.0" when a test control shaped the answer


@dataclass(frozen=True)
class WebhookDelivery:
    invoice_id: str
    url: str
    body: dict[str, Any]
    status_code: int | None
    response_text: str | None
    error: str | None


@dataclass
class _Injection:
    hang: float = 0.0
    status: int | None = None  # None: answer normally (after the hang)
    body: bytes = b""
    content_type: str = "application/json"

    def label(self) -> str:
        return f"fail:{self.status}" if self.status is not None else f"hang:{self.hang}"


# -- the ledger ----------------------------------------------------------------------------------


class IntaSendLedger:
    """IntaSend's state for some accounts, in memory, thread-safe (one re-entrant lock)."""

    def __init__(self, accounts: dict[str, str]) -> None:
        if not accounts:
            raise ValueError("at least one (public_key, secret) account is needed")
        self._lock = threading.RLock()
        self._accounts = dict(accounts)
        self._invoices: dict[str, FakeInvoice] = {}
        self._checkouts: dict[str, FakeCheckout] = {}
        self._customers: dict[str, str] = {}
        self._requests: list[RecordedRequest] = []
        self._injections: dict[str, deque[_Injection]] = {}

    # accounts

    def account_for_secret(self, secret: str | None) -> str | None:
        """The public key whose secret this is, or None."""
        if not secret:
            return None
        for public_key, known in self._accounts.items():
            if hmac.compare_digest(known.encode(), secret.encode()):
                return public_key
        return None

    def has_public_key(self, public_key: str | None) -> bool:
        return bool(public_key) and public_key in self._accounts

    def secret_of(self, public_key: str) -> str:
        return self._accounts[public_key]

    # invoices

    def create_invoice(
        self,
        *,
        public_key: str,
        value: Decimal,
        currency: str,
        account: str,
        api_ref: str | None,
        host: str,
        provider: str = "M-PESA",
        phone_number: str | None = None,
        email: str | None = None,
        narrative: str | None = None,
        checkout_id: str | None = None,
    ) -> FakeInvoice:
        now = _now()
        with self._lock:
            invoice = FakeInvoice(
                invoice_id=self._unique_id(self._invoices, 7),
                payment_id=str(uuid.uuid4()),
                public_key=public_key,
                state="PENDING",
                provider=provider,
                value=value,
                charges=Decimal("0"),
                currency=currency,
                account=account,
                api_ref=api_ref,
                host=host,
                customer_id=self._customer_id(phone_number or email or account),
                phone_number=phone_number,
                email=email,
                created_at=now,
                updated_at=now,
                narrative=narrative,
                checkout_id=checkout_id,
            )
            self._invoices[invoice.invoice_id] = invoice
            return replace(invoice)

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
    ) -> FakeInvoice:
        """Move an invoice to ``state`` the way IntaSend would report it.

        COMPLETE gets an M-Pesa receipt (``mpesa_reference=AUTO``) for M-PESA invoices; FAILED
        defaults to the user-cancelled reason/code seen in 2025 payloads. ``value``/``charges``
        rewrite the amounts (e.g. to test a paid amount that differs from the price). Leaving a
        final state is refused (IntaSend never does it) unless ``force=True``.
        """
        state = state.strip().upper()
        if not state:
            raise ValueError("state is required")
        with self._lock:
            invoice = self._invoices.get(invoice_id)
            if invoice is None:
                raise KeyError(f"unknown invoice {invoice_id!r}")
            if invoice.state in FINAL_STATES and not force:
                raise ValueError(f"invoice {invoice_id} is already {invoice.state}")
            invoice.state = state
            if charges is not None:
                invoice.charges = Decimal(str(charges))
            if value is not None:
                invoice.value = Decimal(str(value))
            if state in {"COMPLETE", "COMPLETED"}:
                if mpesa_reference is AUTO:
                    mpesa_reference = _mpesa_receipt() if invoice.provider == "M-PESA" else None
                invoice.mpesa_reference = mpesa_reference
                invoice.failed_reason = invoice.failed_code = invoice.failed_code_link = None
            elif state == "FAILED":
                invoice.failed_reason = failed_reason or "Request cancelled by user"
                invoice.failed_code = str(failed_code) if failed_code is not None else "-1"
                invoice.failed_code_link = "https://intasend.com/troubleshooting"
                invoice.mpesa_reference = None if mpesa_reference is AUTO else mpesa_reference
            else:
                invoice.failed_reason = failed_reason
                invoice.failed_code = None if failed_code is None else str(failed_code)
                if mpesa_reference is not AUTO:
                    invoice.mpesa_reference = mpesa_reference
            invoice.updated_at = _now()
            if invoice.checkout_id and state in {"COMPLETE", "COMPLETED"}:
                checkout = self._checkouts[invoice.checkout_id]
                checkout.paid = True
                checkout.updated_at = invoice.updated_at
            return replace(invoice)

    def invoice(self, invoice_id: str) -> FakeInvoice:
        with self._lock:
            try:
                return replace(self._invoices[invoice_id])
            except KeyError:
                raise KeyError(f"unknown invoice {invoice_id!r}") from None

    def invoices_by_api_ref(self, api_ref: str) -> list[FakeInvoice]:
        with self._lock:
            return [replace(i) for i in self._invoices.values() if i.api_ref == api_ref]

    @property
    def invoices(self) -> dict[str, FakeInvoice]:
        with self._lock:
            return {k: replace(v) for k, v in self._invoices.items()}

    # checkouts

    def create_checkout(self, *, public_key: str, amount: Decimal, currency: str, **fields: Any) -> FakeCheckout:
        now = _now()
        with self._lock:
            checkout_id = str(uuid.uuid4())
            issued = int(time.time())
            signature = _jwt(
                {
                    "scope": "express-checkout",
                    "iss": "IntaSend Solutions Limited",
                    "aud": [checkout_id],
                    "accountID": public_key,
                    "reference": fields.get("api_ref"),
                    "iat": issued,
                    "exp": issued + 3600,  # one hour, like IntaSend's
                },
                self._accounts[public_key],
            )
            checkout = FakeCheckout(
                checkout_id=checkout_id,
                public_key=public_key,
                signature=signature,
                expires_at=issued + 3600,
                amount=amount,
                currency=currency,
                created_at=now,
                updated_at=now,
                **{name: fields.get(name) for name in _CHECKOUT_FIELDS},
            )
            self._checkouts[checkout_id] = checkout
            return replace(checkout)

    def pay_checkout(
        self,
        checkout_id: str,
        state: str = "COMPLETE",
        *,
        provider: str = "M-PESA",
        account: str | None = None,
        host: str = "127.0.0.1",
        **settle_kwargs: Any,
    ) -> FakeInvoice:
        """The customer pays on the checkout page: create its invoice (once), then move it to
        ``state`` (PENDING leaves it freshly created)."""
        with self._lock:
            checkout = self._checkouts.get(checkout_id)
            if checkout is None:
                raise KeyError(f"unknown checkout {checkout_id!r}")
            if checkout.invoice_id is None:
                phone = account if account and PHONE_RE.match(account) else checkout.phone_number
                invoice = self.create_invoice(
                    public_key=checkout.public_key,
                    value=checkout.amount,
                    currency=checkout.currency,
                    account=account or checkout.phone_number or checkout.email or "",
                    api_ref=checkout.api_ref,
                    host=host,
                    provider=provider,
                    phone_number=phone,
                    email=checkout.email,
                    checkout_id=checkout_id,
                )
                checkout.invoice_id = invoice.invoice_id
            if state.strip().upper() == "PENDING" and not settle_kwargs.get("force"):
                return self.invoice(checkout.invoice_id)
            return self.settle(checkout.invoice_id, state, **settle_kwargs)

    def checkout(self, checkout_id: str) -> FakeCheckout:
        with self._lock:
            try:
                return replace(self._checkouts[checkout_id])
            except KeyError:
                raise KeyError(f"unknown checkout {checkout_id!r}") from None

    @property
    def checkouts(self) -> dict[str, FakeCheckout]:
        with self._lock:
            return {k: replace(v) for k, v in self._checkouts.items()}

    # requests and injected failures

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def inject(self, path_suffix: str, injection: _Injection, times: int = 1) -> None:
        key = path_suffix.strip("/")
        if not key:
            raise ValueError("path_suffix is required, e.g. 'payment/status/'")
        with self._lock:
            self._injections.setdefault(key, deque()).extend(replace(injection) for _ in range(times))

    def take_injection(self, path: str) -> _Injection | None:
        """The next injected behaviour for this path (longest matching suffix wins), consumed."""
        path = path.strip("/")
        with self._lock:
            for key in sorted(self._injections, key=len, reverse=True):
                queue = self._injections[key]
                if queue and path.endswith(key):
                    return queue.popleft()
        return None

    def reset(self) -> None:
        with self._lock:
            self._invoices.clear()
            self._checkouts.clear()
            self._requests.clear()
            self._injections.clear()

    # helpers

    def _unique_id(self, taken: dict[str, Any], length: int) -> str:
        while True:
            candidate = "".join(secrets.choice(_ALNUM) for _ in range(length))
            if candidate not in taken:
                return candidate

    def _customer_id(self, who: str) -> str:
        if who not in self._customers:
            self._customers[who] = self._unique_id({v: None for v in self._customers.values()}, 7)
        return self._customers[who]


_CHECKOUT_FIELDS = (
    "api_ref",
    "email",
    "phone_number",
    "first_name",
    "last_name",
    "method",
    "redirect_url",
    "callback_url",
)


# -- JSON shapes -----------------------------------------------------------------------------------


def invoice_json(invoice: FakeInvoice, *, money_as_strings: bool = False) -> dict[str, Any]:
    """The ``invoice`` object of the STK push / status responses (money partly numbers, like the
    2024-25 captures), or, with ``money_as_strings``, every money field a string (webhooks)."""
    number = _money_str if money_as_strings else _money_number
    return {
        "invoice_id": invoice.invoice_id,
        "state": invoice.state,
        "provider": invoice.provider,
        "charges": number(invoice.charges),
        "net_amount": _money_str(invoice.net_amount),
        "currency": invoice.currency,
        "value": number(invoice.value),
        "account": invoice.account,
        "api_ref": invoice.api_ref,
        "mpesa_reference": invoice.mpesa_reference,
        "host": invoice.host,
        "card_info": {"bin_country": None, "card_type": None},
        "retry_count": invoice.retry_count,
        "failed_reason": invoice.failed_reason,
        "failed_code": invoice.failed_code,
        "failed_code_link": invoice.failed_code_link,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def customer_json(invoice: FakeInvoice) -> dict[str, Any]:
    return {
        "customer_id": invoice.customer_id,
        "phone_number": invoice.phone_number,
        "email": invoice.email,
        "first_name": None,
        "last_name": None,
        "country": None,
        "zipcode": None,
        "provider": invoice.provider,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def stk_push_json(invoice: FakeInvoice) -> dict[str, Any]:
    return {
        "id": invoice.payment_id,
        "invoice": invoice_json(invoice),
        "customer": customer_json(invoice),
        "payment_link": None,
        "customer_comment": None,
        "refundable": False,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def status_json(invoice: FakeInvoice) -> dict[str, Any]:
    body = invoice_json(invoice)
    body["id"] = invoice.invoice_id  # the 2024 status body repeats it as "id"
    return {
        "invoice": body,
        "meta": {
            "id": invoice.payment_id,
            "customer": customer_json(invoice),
            "payment_link": None,
            "customer_comment": None,
            "created_at": invoice.created_at,
            "updated_at": invoice.updated_at,
        },
    }


def checkout_json(checkout: FakeCheckout, root_url: str) -> dict[str, Any]:
    return {
        "id": checkout.checkout_id,
        "url": f"{root_url}checkout/{checkout.checkout_id}/express/",
        "signature": checkout.signature,
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
        "phone_number": checkout.phone_number,
        "email": checkout.email,
        "country": None,
        "address": None,
        "city": None,
        "state": None,
        "zipcode": None,
        "api_ref": checkout.api_ref,
        "amount": _money_str(checkout.amount),
        "currency": checkout.currency,
        "paid": checkout.paid,
        "method": checkout.method,
        "redirect_url": checkout.redirect_url,
        "mobile_tarrif": "BUSINESS-PAYS",
        "card_tarrif": "BUSINESS-PAYS",
        "version": "3.0.0",
        "created_at": checkout.created_at,
        "updated_at": checkout.updated_at,
    }


def webhook_json(invoice: FakeInvoice, challenge: str | None) -> dict[str, Any]:
    """The flat body IntaSend POSTs on every state change: the invoice with money as strings,
    no customer/meta block, ``challenge`` last."""
    body = invoice_json(invoice, money_as_strings=True)
    body["challenge"] = challenge
    return body


# -- the server -----------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"


class FakeIntaSend:
    """IntaSend on loopback. Use as a context manager, or ``start()``/``stop()``::

        with FakeIntaSend(accounts={"ISPubKey_test_x": "ISSecretKey_test_y"}) as fake:
            gateway = IntaSendGateway(creds, base_url=fake.base_url)

    ``webhook_url`` (+ ``webhook_challenge``) makes every ``settle()`` POST the webhook body to
    that URL, in a background thread by default (``webhook_sync=True`` delivers before
    ``settle()`` returns; ``wait_for_webhooks()`` joins background deliveries).
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
    ) -> None:
        self.ledger = IntaSendLedger(accounts)
        self.webhook_url = webhook_url
        self.webhook_challenge = webhook_challenge
        self.webhook_sync = webhook_sync
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._deliveries: list[WebhookDelivery] = []
        self._delivery_threads: list[threading.Thread] = []
        self._delivery_lock = threading.Lock()

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
    ) -> FakeInvoice:
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
    ) -> FakeInvoice:
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
        if body is None:
            body = DEFAULT_FAILURE_BODIES.get(status, _error_body("client_error", "error", f"HTTP {status}"))
        if isinstance(body, (dict, list)):
            raw, default_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            raw = body.encode()
            default_type = _guess_content_type(body)
        else:
            raw, default_type = bytes(body), "application/octet-stream"
        injection = _Injection(hang=hang, status=status, body=raw, content_type=content_type or default_type)
        self.ledger.inject(path_suffix, injection, times)

    def hang_next(self, path_suffix: str, seconds: float, *, times: int = 1) -> None:
        """Delay the next ``times`` answers of that endpoint by ``seconds`` (then answer normally),
        to exercise client timeouts. ``stop()`` cuts hangs short."""
        self.ledger.inject(path_suffix, _Injection(hang=float(seconds)), times)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.ledger.requests

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        key = path_suffix.strip("/")
        return [r for r in self.ledger.requests if r.path.strip("/").endswith(key)]

    @property
    def invoices(self) -> dict[str, FakeInvoice]:
        return self.ledger.invoices

    def invoice(self, invoice_id: str) -> FakeInvoice:
        return self.ledger.invoice(invoice_id)

    def invoices_by_api_ref(self, api_ref: str) -> list[FakeInvoice]:
        return self.ledger.invoices_by_api_ref(api_ref)

    def checkout(self, checkout_id: str) -> FakeCheckout:
        return self.ledger.checkout(checkout_id)

    def reset(self) -> None:
        self.ledger.reset()
        with self._delivery_lock:
            self._deliveries.clear()

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
        return self._post_webhook(url, self.webhook_body(invoice_id, challenge), timeout=timeout)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._delivery_lock:
            return list(self._deliveries)

    def wait_for_webhooks(self, timeout: float = 5.0) -> None:
        """Join background deliveries started so far."""
        deadline = time.monotonic() + timeout
        with self._delivery_lock:
            threads, self._delivery_threads = self._delivery_threads, []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _auto_deliver(self, invoice: FakeInvoice) -> None:
        if not self.webhook_url:
            return
        # Body built now, from this state: a later settle() must not change what this POST says.
        body = webhook_json(invoice, self.webhook_challenge)
        url = self.webhook_url
        if self.webhook_sync:
            self._post_webhook(url, body, raise_errors=False)
            return
        thread = threading.Thread(
            target=self._post_webhook,
            args=(url, body),
            kwargs={"raise_errors": False},
            name=f"fake-intasend-webhook-{invoice.invoice_id}",
            daemon=True,
        )
        with self._delivery_lock:
            self._delivery_threads.append(thread)
        thread.start()

    def _post_webhook(
        self, url: str, body: dict[str, Any], *, timeout: float = 10, raise_errors: bool = True
    ) -> tuple[int, str]:
        try:
            resp = requests.post(url, json=body, timeout=timeout)
        except requests.RequestException as exc:
            self._record_delivery(WebhookDelivery(body["invoice_id"], url, body, None, None, repr(exc)))
            logger.warning("fake IntaSend webhook to %s failed: %r", url, exc)
            if raise_errors:
                raise
            return 0, ""
        delivery = WebhookDelivery(body["invoice_id"], url, body, resp.status_code, resp.text, None)
        self._record_delivery(delivery)
        return resp.status_code, resp.text

    def _record_delivery(self, delivery: WebhookDelivery) -> None:
        with self._delivery_lock:
            self._deliveries.append(delivery)

    # -- HTTP: routing ------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Any, raw: bytes, client_ip: str) -> _Response:
        path = urlsplit(target).path
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX) :].strip("/"), raw)
        if method == "GET" and path.startswith("/checkout/"):
            return self._checkout_page(path)
        if not path.startswith(API_PREFIX):
            return _json_response(404, NOT_FOUND)

        body = _parse_json(raw)
        bearer = _bearer(headers.get("Authorization"))
        injection = self.ledger.take_injection(path)
        self.ledger.record(
            RecordedRequest(
                method=method,
                path=path,
                headers=_redacted_headers(headers),
                json=body,
                authenticated_as=self.ledger.account_for_secret(bearer),
                injected=injection.label() if injection else None,
            )
        )
        if injection is not None:
            if injection.hang and self._stopping.wait(injection.hang):
                return _json_response(503, DEFAULT_FAILURE_BODIES[503])
            if injection.status is not None:
                return _Response(injection.status, injection.body, injection.content_type)

        endpoint = path[len(API_PREFIX) :].strip("/")
        routes = {
            "payment/mpesa-stk-push": self._stk_push,
            "payment/status": self._status,
            "checkout": self._create_checkout,
            "checkout/details": self._checkout_details,
        }
        route = routes.get(endpoint)
        if route is None:
            return _json_response(404, NOT_FOUND)
        if method != "POST":
            return _json_response(
                405, _error_body("client_error", "method_not_allowed", f'Method "{method}" not allowed.')
            )
        if not isinstance(body, dict):
            return _json_response(
                400, _error_body("client_error", "parse_error", "JSON parse error - expected an object.")
            )
        return route(body, headers, bearer, client_ip)

    # -- HTTP: IntaSend endpoints ---------------------------------------------------------------

    def _stk_push(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str) -> _Response:
        if bearer is None:
            return _json_response(401, NOT_AUTHENTICATED)
        public_key = self.ledger.account_for_secret(bearer)
        if public_key is None:
            return _json_response(401, BAD_TOKEN)
        claimed = _public_key(headers, body)
        if claimed and claimed != public_key:
            # [I] a public key from another account than the secret's is refused
            return _json_response(401, BAD_PUBLIC_KEY)

        errors: list[dict[str, Any]] = []
        phone = body.get("phone_number")
        phone = str(phone) if isinstance(phone, int) and not isinstance(phone, bool) else phone
        if phone in (None, ""):
            errors.append(_field_error("required", "This field is required.", "phone_number"))
        elif not isinstance(phone, str) or not PHONE_RE.match(phone):
            errors.append(_field_error("invalid", "Invalid phone number. Use the format 2547XXXXXXXX.", "phone_number"))
        amount = _amount(body.get("amount"), errors, minimum=Decimal("1"))
        currency = body.get("currency") or "KES"
        if currency != "KES":
            errors.append(_field_error("invalid", "M-Pesa STK push supports KES only.", "currency"))
        if errors:
            return _validation_failed(errors)

        assert amount is not None and isinstance(phone, str)
        invoice = self.ledger.create_invoice(
            public_key=public_key,
            value=amount,
            currency=currency,
            account=phone,
            api_ref=_str_or_none(body.get("api_ref")),
            host=client_ip,
            phone_number=phone,
            email=_str_or_none(body.get("email")),
            narrative=_str_or_none(body.get("narrative")),
        )
        return _json_response(200, stk_push_json(invoice))

    def _status(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str) -> _Response:
        invoice_id = _str_or_none(body.get("invoice_id"))
        checkout_id = _str_or_none(body.get("checkout_id"))
        signature = _str_or_none(body.get("signature"))
        if checkout_id and signature:
            checkout, error = self._verified_checkout(checkout_id, signature)
            if error is not None:
                return error
            assert checkout is not None
            if checkout.invoice_id is None or (invoice_id and invoice_id != checkout.invoice_id):
                # [I] nothing paid yet means no invoice to report
                return _json_response(404, NOT_FOUND)
            return _json_response(200, status_json(self.ledger.invoice(checkout.invoice_id)))

        public_key = _public_key(headers, body)
        if not public_key:
            return _json_response(401, NOT_AUTHENTICATED)
        if not self.ledger.has_public_key(public_key):
            return _json_response(401, BAD_PUBLIC_KEY)
        if not invoice_id:
            return _validation_failed([_field_error("required", "This field is required.", "invoice_id")])
        try:
            invoice = self.ledger.invoice(invoice_id)
        except KeyError:
            return _json_response(404, NOT_FOUND)
        if invoice.public_key != public_key:  # other accounts' invoices look missing
            return _json_response(404, NOT_FOUND)
        return _json_response(200, status_json(invoice))

    def _create_checkout(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str) -> _Response:
        public_key = _public_key(headers, body)
        if not public_key:
            return _json_response(401, NOT_AUTHENTICATED)
        if not self.ledger.has_public_key(public_key):
            return _json_response(401, BAD_PUBLIC_KEY)
        errors: list[dict[str, Any]] = []
        amount = _amount(body.get("amount"), errors, minimum=Decimal("1"))
        currency = body.get("currency")
        if currency not in CHECKOUT_CURRENCIES:
            errors.append(_field_error("invalid", f'"{currency}" is not a valid choice.', "currency"))
        if errors:
            return _validation_failed(errors)
        assert amount is not None
        checkout = self.ledger.create_checkout(
            public_key=public_key,
            amount=amount,
            currency=currency,
            **{name: _str_or_none(body.get(name)) for name in _CHECKOUT_FIELDS},
        )
        return _json_response(200, checkout_json(checkout, self.root_url))

    def _checkout_details(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str) -> _Response:
        checkout, error = self._verified_checkout(
            _str_or_none(body.get("checkout_id")), _str_or_none(body.get("signature"))
        )
        if error is not None:
            return error
        assert checkout is not None
        return _json_response(200, checkout_json(checkout, self.root_url))

    def _verified_checkout(
        self, checkout_id: str | None, signature: str | None
    ) -> tuple[FakeCheckout | None, _Response | None]:
        try:
            checkout = self.ledger.checkout(checkout_id or "")
        except KeyError:
            return None, _json_response(404, NOT_FOUND)
        if not signature or not hmac.compare_digest(signature.encode(), checkout.signature.encode()):
            return None, _validation_failed([_field_error("invalid", "Invalid signature.", "signature")])
        if time.time() > checkout.expires_at:
            return None, _validation_failed([_field_error("invalid", "Signature has expired.", "signature")])
        return checkout, None

    def _checkout_page(self, path: str) -> _Response:
        match = re.fullmatch(r"/checkout/([0-9a-f-]+)/express/?", path)
        try:
            checkout = self.ledger.checkout(match.group(1) if match else "")
        except KeyError:
            return _Response(404, b"<html><body><h1>Not found</h1></body></html>", "text/html; charset=utf-8")
        page = (
            f"<html><body><h1>Fake IntaSend checkout</h1><p>{checkout.amount} {checkout.currency}"
            f" &middot; {'paid' if checkout.paid else 'unpaid'}</p></body></html>"
        )
        return _Response(200, page.encode(), "text/html; charset=utf-8")

    # -- HTTP: controls ---------------------------------------------------------------------------

    def _control(self, method: str, name: str, raw: bytes) -> _Response:
        """``POST /_control/<name>`` with a JSON object of the method's keyword arguments."""
        if method != "POST":
            return _json_response(405, {"error": "control endpoints take POST"})
        args = _parse_json(raw) if raw else {}
        if not isinstance(args, dict):
            return _json_response(400, {"error": "body must be a JSON object"})
        handlers = {
            "settle": self._control_settle,
            "pay_checkout": self._control_pay_checkout,
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


# -- small helpers ---------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(EAT).isoformat(timespec="microseconds")


def _mpesa_receipt() -> str:
    # Safaricom receipts: 10 upper-case alphanumerics starting with a letter, e.g. "TDLE527E2G".
    return secrets.choice(string.ascii_uppercase) + "".join(secrets.choice(_ALNUM) for _ in range(9))


def _jwt(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT like IntaSend's checkout signature (only ever compared, never decoded, here)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def _money_number(value: Decimal) -> int | float:
    # The real API sends e.g. "value": 20 — a JSON number, float when fractional.
    return int(value) if value == value.to_integral_value() else float(value)


def _money_str(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _amount(raw: Any, errors: list[dict[str, Any]], *, minimum: Decimal) -> Decimal | None:
    if raw is None or raw == "":
        errors.append(_field_error("required", "This field is required.", "amount"))
        return None
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        amount = Decimal(str(raw))
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors.append(_field_error("invalid", "A valid number is required.", "amount"))
        return None
    if amount < minimum:
        detail = f"Ensure this value is greater than or equal to {minimum}."
        errors.append(_field_error("min_value", detail, "amount"))
        return None
    return amount


def _field_error(code: str, detail: str, attr: str | None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "attr": attr}


def _json_response(status: int, body: Any) -> _Response:
    return _Response(status, json.dumps(body, default=str).encode())


def _guess_content_type(text: str) -> str:
    if text.lstrip().startswith("<"):
        return "text/html; charset=utf-8"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain"
    return "application/json"


def _validation_failed(errors: list[dict[str, Any]]) -> _Response:
    return _json_response(400, {"type": "validation_error", "errors": errors})


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _public_key(headers: Any, body: dict[str, Any]) -> str | None:
    # The Python SDK sends the underscore header and the body field; other clients the X- header.
    return (
        headers.get("INTASEND_PUBLIC_API_KEY")
        or headers.get("X-IntaSend-Public-API-Key")
        or _str_or_none(body.get("public_key"))
    )


def _redacted_headers(headers: Any) -> dict[str, str]:
    redacted = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            value = value.partition(" ")[0] + " <redacted>"
        redacted[name] = value
    return redacted


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _invoice_control_json(invoice: FakeInvoice) -> dict[str, Any]:
    data = asdict(invoice)
    data["net_amount"] = invoice.net_amount
    return json.loads(json.dumps(data, default=str))
