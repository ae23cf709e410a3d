"""IntaSend's collection API over an :class:`~billing.simulator.ledger.IntaSendLedger`, transport-free.

``IntaSendAPI.handle(method, path, headers, body)`` answers one HTTP request the way IntaSend
does — paths, authentication, validation and error shapes — and returns ``(status, content_type,
bytes)``. The Django views (``/simulator/intasend/api/v1/…``) and the tests' loopback server
(``tests/fakes/intasend_server.py``) are thin transports over it.

Endpoints, relative to the API root ``/api/v1/``: ``payment/mpesa-stk-push/``,
``payment/status/``, ``checkout/``, ``checkout/details/``, ``GET payment/collection/?api_ref=``,
``GET wallets/`` (what a credential check reads with the secret key).
Failures injected into the ledger (``Injection``: a status and body, or a hang) are served first.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from billing.simulator.ledger import (
    CHECKOUT_CURRENCIES,
    CHECKOUT_FIELDS,
    PHONE_RE,
    Checkout,
    Injection,
    IntaSendLedger,
    RecordedRequest,
    checkout_json,
    invoice_json,
    status_json,
    stk_push_json,
    wallet_json,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_FAILURE_BODIES",
    "HTML_502",
    "IntaSendAPI",
    "Response",
    "error_body",
    "injection",
]

API_PREFIX = "/api/v1/"

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def error_body(kind: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    """IntaSend's current error shape: ``{"type", "errors": [{"code", "detail", "attr"}]}``."""
    return {"type": kind, "errors": [{"code": code, "detail": detail, "attr": attr}]}


NOT_FOUND = error_body("client_error", "not_found", "Not found.")
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}  # the older DRF shape
BAD_TOKEN = error_body("client_error", "authentication_failed", "Invalid api token")
BAD_PUBLIC_KEY = error_body("client_error", "authentication_failed", "Invalid public key")  # [I]

# What an injected failure answers when given only a status code.
DEFAULT_FAILURE_BODIES: dict[int, Any] = {
    400: error_body("validation_error", "invalid", "Invalid request.", "non_field_errors"),
    401: NOT_AUTHENTICATED,
    403: error_body("client_error", "permission_denied", "You do not have permission to perform this action."),
    404: NOT_FOUND,
    409: error_body("client_error", "conflict", "Conflict."),
    429: error_body("client_error", "throttled", "Request was throttled."),
    500: error_body("server_error", "error", "A server error occurred."),
    502: HTML_502,
    503: error_body("server_error", "service_unavailable", "Service temporarily unavailable, try again later."),
}


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes


def injection(
    status: int | None = 500,
    body: Any = None,
    *,
    content_type: str | None = None,
    hang: float = 0.0,
) -> Injection:
    """An injected answer: ``status`` with ``body`` — a dict/list (sent as JSON), a str/bytes (sent
    raw: an HTML page, "not json"…), or None for IntaSend's usual body for that status. With
    ``status=None``, only a delay of ``hang`` seconds before the normal answer."""
    if status is None:
        return Injection(hang=float(hang))
    if body is None:
        body = DEFAULT_FAILURE_BODIES.get(status, error_body("client_error", "error", f"HTTP {status}"))
    if isinstance(body, (dict, list)):
        raw, default_type = json.dumps(body).encode(), "application/json"
    elif isinstance(body, str):
        raw, default_type = body.encode(), _guess_content_type(body)
    else:
        raw, default_type = bytes(body), "application/octet-stream"
    return Injection(hang=float(hang), status=status, body=raw, content_type=content_type or default_type)


class IntaSendAPI:
    """Answers IntaSend API requests from a ledger.

    ``stopping`` (an Event) cuts injected hangs short when the transport shuts down.
    """

    def __init__(self, ledger: IntaSendLedger, *, stopping: threading.Event | None = None) -> None:
        self.ledger = ledger
        self.stopping = stopping or threading.Event()

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        root_url: str = "http://127.0.0.1/",
        client_ip: str = "127.0.0.1",
        query: str = "",
    ) -> Response:
        """One request. ``path`` starts with ``/api/v1/`` (the API root, wherever it is mounted);
        ``root_url`` is the absolute URL of the simulator's root, for the checkout links it hands out;
        ``query`` is the raw query string (the collection list filters by it)."""
        method = method.upper()
        if not path.startswith(API_PREFIX):
            return _json(404, NOT_FOUND)
        data = _parse_json(body)
        bearer = _bearer(_header(headers, "Authorization"))
        taken = self.ledger.take_injection(path)
        claimed = _public_key(headers, data if isinstance(data, dict) else {})
        self.ledger.record(
            RecordedRequest(
                method=method,
                path=path,
                headers=_redacted_headers(headers),
                json=data,
                authenticated_as=self.ledger.account_for_secret(bearer, claimed),
                injected=taken.label() if taken else None,
            )
        )
        if taken is not None:
            if taken.hang and self.stopping.wait(taken.hang):
                return _json(503, DEFAULT_FAILURE_BODIES[503])
            if taken.status is not None:
                return Response(taken.status, taken.content_type, taken.body)

        endpoint = path[len(API_PREFIX) :].strip("/")
        routes = {
            "payment/mpesa-stk-push": self._stk_push,
            "payment/status": self._status,
            "checkout": self._create_checkout,
            "checkout/details": self._checkout_details,
        }
        if endpoint == "payment/collection" and method == "GET":
            return self._collections(parse_qs(query), bearer, _public_key(headers, {}))
        if endpoint == "wallets" and method == "GET":
            return self._wallets(bearer, _public_key(headers, {}))
        route = routes.get(endpoint)
        if route is None:
            return _json(404, NOT_FOUND)
        if method != "POST":
            return _json(405, error_body("client_error", "method_not_allowed", f'Method "{method}" not allowed.'))
        if not isinstance(data, dict):
            return _json(400, error_body("client_error", "parse_error", "JSON parse error - expected an object."))
        return route(data, headers, bearer, client_ip, root_url)

    # -- endpoints ------------------------------------------------------------------------------

    def _stk_push(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str, root: str) -> Response:
        if bearer is None:
            return _json(401, NOT_AUTHENTICATED)
        claimed = _public_key(headers, body)
        public_key = self.ledger.account_for_secret(bearer, claimed)
        if public_key is None:
            return _json(401, BAD_TOKEN)
        if claimed and claimed != public_key:
            # [I] a public key from another account than the secret's is refused
            return _json(401, BAD_PUBLIC_KEY)

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
        return _json(200, stk_push_json(invoice))

    def _status(self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str, root: str) -> Response:
        invoice_id = _str_or_none(body.get("invoice_id"))
        checkout_id = _str_or_none(body.get("checkout_id"))
        signature = _str_or_none(body.get("signature"))
        if checkout_id and signature:
            checkout, error = self._verified_checkout(checkout_id, signature, root)
            if error is not None:
                return error
            assert checkout is not None
            if checkout.invoice_id is None or (invoice_id and invoice_id != checkout.invoice_id):
                # [I] nothing paid yet means no invoice to report
                return _json(404, NOT_FOUND)
            return _json(200, status_json(self.ledger.invoice(checkout.invoice_id)))

        public_key = _public_key(headers, body)
        if not public_key:
            return _json(401, NOT_AUTHENTICATED)
        if not self.ledger.has_public_key(public_key):
            return _json(401, BAD_PUBLIC_KEY)
        if not invoice_id:
            return _validation_failed([_field_error("required", "This field is required.", "invoice_id")])
        try:
            invoice = self.ledger.invoice(invoice_id)
        except KeyError:
            return _json(404, NOT_FOUND)
        if invoice.public_key != public_key:  # other accounts' invoices look missing
            return _json(404, NOT_FOUND)
        return _json(200, status_json(invoice))

    def _collections(self, query: dict[str, list[str]], bearer: str | None, claimed: str | None) -> Response:
        """``GET payment/collection/?api_ref=…``: the account's invoices, a DRF page of flat invoices
        (newest first). Needs the secret key, like every list of IntaSend's API."""
        if bearer is None:
            return _json(401, NOT_AUTHENTICATED)
        public_key = self.ledger.account_for_secret(bearer, claimed)
        if public_key is None:
            return _json(401, BAD_TOKEN)
        api_ref = (query.get("api_ref") or [None])[0]
        invoice_id = (query.get("invoice_id") or [None])[0]
        found = [
            invoice
            for invoice in self.ledger.invoices.values()
            if invoice.public_key == public_key
            and (api_ref is None or invoice.api_ref == api_ref)
            and (invoice_id is None or invoice.invoice_id == invoice_id)
        ]
        found.sort(key=lambda i: i.created_at, reverse=True)
        results = [invoice_json(i) for i in found]
        return _json(200, {"count": len(results), "next": None, "previous": None, "results": results})

    def _wallets(self, bearer: str | None, claimed: str | None) -> Response:
        """``GET wallets/``: the account's wallets, a DRF page (the shape intasend-rs reads; the 2021
        docs show a bare list). Secret key only, like every list; a public key of another account than
        the secret's is refused as the STK push refuses it [I]."""
        if bearer is None:
            return _json(401, NOT_AUTHENTICATED)
        public_key = self.ledger.account_for_secret(bearer, claimed)
        if public_key is None:
            return _json(401, BAD_TOKEN)
        if claimed and claimed != public_key:
            return _json(401, BAD_PUBLIC_KEY)
        results = [wallet_json(public_key, self.ledger.balance(public_key))]
        return _json(200, {"count": len(results), "next": None, "previous": None, "results": results})

    def _create_checkout(
        self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str, root: str
    ) -> Response:
        public_key = _public_key(headers, body)
        if not public_key:
            return _json(401, NOT_AUTHENTICATED)
        if not self.ledger.has_public_key(public_key):
            return _json(401, BAD_PUBLIC_KEY)
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
            **{name: _str_or_none(body.get(name)) for name in CHECKOUT_FIELDS},
        )
        return _json(200, checkout_json(checkout, root))

    def _checkout_details(
        self, body: dict[str, Any], headers: Any, bearer: str | None, client_ip: str, root: str
    ) -> Response:
        checkout, error = self._verified_checkout(
            _str_or_none(body.get("checkout_id")), _str_or_none(body.get("signature")), root
        )
        if error is not None:
            return error
        assert checkout is not None
        return _json(200, checkout_json(checkout, root))

    def _verified_checkout(
        self, checkout_id: str | None, signature: str | None, root: str
    ) -> tuple[Checkout | None, Response | None]:
        try:
            checkout = self.ledger.checkout(checkout_id or "")
        except KeyError:
            return None, _json(404, NOT_FOUND)
        if not signature or not hmac.compare_digest(signature.encode(), checkout.signature.encode()):
            return None, _validation_failed([_field_error("invalid", "Invalid signature.", "signature")])
        if time.time() > checkout.expires_at:
            return None, _validation_failed([_field_error("invalid", "Signature has expired.", "signature")])
        return checkout, None


# -- helpers ---------------------------------------------------------------------------------------


def _json(status: int, body: Any) -> Response:
    return Response(status, "application/json", json.dumps(body, default=str).encode())


def _validation_failed(errors: list[dict[str, Any]]) -> Response:
    return _json(400, {"type": "validation_error", "errors": errors})


def _field_error(code: str, detail: str, attr: str | None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "attr": attr}


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


def _guess_content_type(text: str) -> str:
    if text.lstrip().startswith("<"):
        return "text/html; charset=utf-8"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain"
    return "application/json"


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, ignoring case and ``_``/``-`` (the SDK's underscore header arrives either way)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower().replace("_", "-")
    for key, candidate in headers.items():
        if key.lower().replace("_", "-") == wanted:
            return candidate
    return None


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _public_key(headers: Mapping[str, str], body: dict[str, Any]) -> str | None:
    # The Python SDK sends the underscore header and the body field; other clients the X- header.
    # (Django and many proxies drop headers with underscores: the body field still gets through.)
    return (
        _header(headers, "INTASEND_PUBLIC_API_KEY")
        or _header(headers, "X-IntaSend-Public-API-Key")
        or _str_or_none(body.get("public_key"))
    )


def _redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
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
