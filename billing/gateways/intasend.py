"""IntaSend adapter: the official SDK (``intasend-python`` 1.1.2) with its gaps fixed in one place.

What the SDK lacks, and what this module does about it (see shared/reference/intasend-api-notes.md §8):

* no timeout, a new connection per call      -> our own ``requests.Session`` and ``timeout=``
* hard-coded hosts (``test`` flag only)       -> a per-instance base URL (simulator, tests, proxies),
  without monkeypatching ``intasend.client.get_service_url`` (process-global, not thread-safe)
* 404/429/502/503 error bodies returned as if they were successes, non-JSON bodies raising
  ``JSONDecodeError``, network errors unwrapped -> every failure becomes a ``GatewayRejected``
  (4xx) or ``GatewayUnavailable`` (5xx, network, non-JSON, missing keys)
* ``Decimal`` amounts raise ``TypeError``     -> converted before the SDK sees them
* money fields switch between JSON numbers and strings -> parsed with ``Decimal(str(x))``

The SDK still builds every request body, so payloads stay exactly what IntaSend's own client sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests
from intasend import exceptions as sdk_exceptions
from intasend.client import get_service_url
from intasend.collections import Collect
from intasend.wallets import Wallet

from .base import (
    CheckoutResult,
    CredentialsRejected,
    GatewayCredentials,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    StatusResult,
    StkPushResult,
)

__all__ = ["IntaSendGateway"]

logger = logging.getLogger("billing.gateways.intasend")

# Our environment name -> the SDK's ``test`` flag (True = sandbox host).
_SDK_TEST_FLAG = {"SANDBOX": True, "LIVE": False}

# Error bodies can be whole HTML pages; keep enough to diagnose, not enough to flood logs.
_DETAIL_LIMIT = 500


class _SessionTransport:
    """The SDK clients' transport replaced (mixed in before an SDK class).

    Only ``send_request`` (and the headers) change; the SDK's methods still build the payloads.
    Overriding on our own subclasses keeps each gateway's base URL, session and timeout
    private to that instance.
    """

    publishable_key: str

    def __init__(
        self,
        *,
        base_url: str,
        session: requests.Session,
        timeout: tuple[float, float],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._base_url = base_url
        self._session = session
        self._timeout = timeout
        # HTTP status of the last answer, so "200 but unusable" errors can carry it. Per instance,
        # like the session: one gateway per thread.
        self.last_status_code: int | None = None

    def get_headers(self, noauth: bool = False) -> dict[str, str]:
        headers = super().get_headers(noauth)
        # The SDK's header name has underscores, which nginx and other proxies drop by default;
        # IntaSend's docs, Odoo module and other SDKs use this one. Sending both is harmless.
        headers["X-IntaSend-Public-API-Key"] = self.publishable_key
        return headers

    def send_request(
        self, request_type: str, service_endpoint: str, payload: Any, noauth: bool = False
    ) -> dict[str, Any]:
        url = self._base_url + service_endpoint
        self.last_status_code = None
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                # No redirects: requests would replay a POST as a GET and we'd parse the wrong thing.
                resp = self._session.request(
                    request_type,
                    url,
                    json=payload,
                    headers=self.get_headers(noauth),
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.Timeout as exc:
                outcome = "timeout"
                raise GatewayUnavailable(f"IntaSend {service_endpoint} timed out", detail=str(exc)) from exc
            except requests.RequestException as exc:
                outcome = type(exc).__name__
                raise GatewayUnavailable(f"IntaSend {service_endpoint} unreachable", detail=str(exc)) from exc
            outcome = str(resp.status_code)
            self.last_status_code = resp.status_code
            return _parse_response(service_endpoint, resp)
        finally:
            # Endpoint, status and timing only: never headers (Bearer secret) or bodies (PII).
            duration_ms = (time.monotonic() - started) * 1000
            logger.info(
                "IntaSend %s %s -> %s in %.0f ms",
                request_type,
                service_endpoint,
                outcome,
                duration_ms,
                extra={
                    "gateway": "intasend",
                    "endpoint": service_endpoint,
                    "http_status": outcome,
                    "duration_ms": round(duration_ms),
                },
            )


class _SessionCollect(_SessionTransport, Collect):
    """The SDK's collection client over our transport."""


class _SessionWallet(_SessionTransport, Wallet):
    """The SDK's wallets client over our transport (``Wallet`` also builds a ``Collect`` of its own,
    unused here)."""


class IntaSendGateway:
    """:class:`~billing.gateways.base.PaymentGateway` over IntaSend's collection API.

    Cheap to build (no I/O). The instance owns a ``requests.Session`` that pools connections
    for its lifetime; like the session, it is not guaranteed thread-safe, so use one instance per
    thread/job (e.g. build one per operation from the operator's credential) and ``close()`` it,
    or use it as a context manager.
    """

    def __init__(
        self,
        credentials: GatewayCredentials,
        *,
        base_url: str | None = None,
        timeout: tuple[float, float] = (5, 15),
    ) -> None:
        environment = (credentials.environment or "").strip().upper()
        if environment not in _SDK_TEST_FLAG:
            raise ValueError(f"unknown IntaSend environment {credentials.environment!r}")
        # The SDK refuses to start without a token even for token-less calls, and status/checkout
        # need the public key: an incomplete credential is a configuration error, not a gateway one.
        if not credentials.api_key or not credentials.private_key:
            raise ValueError("IntaSend credentials need both the public and the private key")
        test = _SDK_TEST_FLAG[environment]
        self.environment = environment
        # The SDK's own function gives the default host, so the two hosts stay defined in one place.
        self.base_url = _normalise_base_url(base_url) if base_url else get_service_url("", test)
        self.timeout = timeout
        self._session = requests.Session()
        sdk_options = {
            "token": credentials.private_key,
            "publishable_key": credentials.api_key,
            "test": test,
            "base_url": self.base_url,
            "session": self._session,
            "timeout": timeout,
        }
        self._collect = _SessionCollect(**sdk_options)
        self._wallets = _SessionWallet(**sdk_options)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> IntaSendGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:  # no keys in reprs
        return f"<IntaSendGateway {self.environment} {self.base_url}>"

    # -- PaymentGateway ---------------------------------------------------------------------

    def stk_push(
        self,
        *,
        phone_number: str,
        amount: Decimal,
        api_ref: str,
        narrative: str,
        currency: str = "KES",
        email: str | None = None,
    ) -> StkPushResult:
        """Send an M-Pesa STK push prompt to ``phone_number`` (``2547XXXXXXXX``/``2541XXXXXXXX``).

        On ``GatewayUnavailable`` the prompt may or may not have gone out (STK push is not
        idempotent): reconcile by ``api_ref`` before sending another.
        """
        endpoint = "payment/mpesa-stk-push/"
        data = _call(
            endpoint,
            self._collect.mpesa_stk_push,
            phone_number=phone_number,
            amount=_json_amount(amount),
            narrative=narrative,
            currency=currency,
            api_ref=api_ref,
            email=email,
        )
        with self._expecting(endpoint, data):
            invoice = _mapping(data.get("invoice"))
            return StkPushResult(
                payment_id=_text(data.get("id")) or "",  # absent only in the 2020-era shape
                invoice_id=_required(invoice.get("invoice_id")),
                # A fresh invoice is PENDING; an absent state is not worth failing a sent prompt over.
                state=(_text(invoice.get("state")) or "PENDING").upper(),
                raw=data,
            )

    def checkout(
        self,
        *,
        amount: Decimal,
        api_ref: str,
        currency: str = "KES",
        phone_number: str | None = None,
        email: str | None = None,
        redirect_url: str | None = None,
        callback_url: str | None = None,
    ) -> CheckoutResult:
        """Create a hosted checkout page (all payment methods offered)."""
        endpoint = "checkout/"
        data = _call(
            endpoint,
            self._collect.checkout,
            email,
            _json_amount(amount),
            currency,
            api_ref=api_ref,
            phone_number=phone_number,
            redirect_url=redirect_url,
            callback_url=callback_url,
        )
        with self._expecting(endpoint, data):
            return CheckoutResult(
                checkout_id=_required(data.get("id")),
                url=_required(data.get("url")),
                signature=_text(data.get("signature")) or "",
                state="PENDING",
                raw=data,
            )

    def status(
        self,
        *,
        invoice_id: str | None = None,
        checkout_id: str | None = None,
        signature: str | None = None,
    ) -> StatusResult:
        """Fetch an invoice's current state, by ``invoice_id`` or by ``checkout_id`` + ``signature``."""
        if bool(checkout_id) != bool(signature):
            raise ValueError("checkout_id and signature go together")
        if not invoice_id and not checkout_id:
            raise ValueError("give invoice_id, or checkout_id and signature")
        endpoint = "payment/status/"
        data = _call(
            endpoint,
            self._collect.status,
            invoice_id,
            checkout_id=checkout_id,
            signature=signature,
        )
        with self._expecting(endpoint, data):
            return _status_result(_mapping(data.get("invoice")), data, invoice_id)

    def find_by_api_ref(self, api_ref: str) -> StatusResult | None:
        """The invoice IntaSend holds for our ``api_ref``, or None when it has none.

        For a push whose answer never came (no invoice id learnt). The SDK has no call for it:
        this is IntaSend's collection list, ``GET payment/collection/?api_ref=…`` (a DRF page of
        flat invoices, Bearer auth), sent through the SDK's transport and headers.
        """
        if not api_ref:
            raise ValueError("api_ref is required")
        endpoint = "payment/collection/?" + urlencode({"api_ref": api_ref})
        data = _call(endpoint, self._collect.send_request, "GET", endpoint, None)
        with self._expecting(endpoint, data):
            results = data.get("results")
            if not isinstance(results, list):
                raise _Malformed
            # The filter is IntaSend's; the match is ours to check.
            ours = [i for i in results if isinstance(i, dict) and _text(i.get("api_ref")) == api_ref]
            if not ours:
                return None
            # Money is what matters: a completed invoice wins, else the newest.
            best = max(
                ours,
                key=lambda i: ((_text(i.get("state")) or "").upper() in _PAID_STATES, str(i.get("created_at") or "")),
            )
            return _status_result(best, data)

    def verify_keys(self) -> None:
        """Prove both keys with IntaSend, moving no money: the secret key (pushes use it) lists the
        account's wallets, ``GET wallets/`` (the SDK's ``Wallet.retrieve``, Bearer auth); the
        publishable key (status checks use it) asks the status of an invoice that cannot exist,
        which IntaSend answers 404 for a key it knows and 401/403 for one it does not.

        Both are asked even when the first is refused, so the caller can say which key is wrong.
        Raises ``CredentialsRejected`` (``keys`` says which) or ``GatewayUnavailable`` (unreachable,
        5xx, throttled, or an answer that proves nothing either way)."""
        refusals = {"secret": self._secret_key_refusal(), "publishable": self._publishable_key_refusal()}
        rejected = {key: refusal for key, refusal in refusals.items() if refusal is not None}
        if rejected:
            raise CredentialsRejected(
                f"IntaSend refused the {' and '.join(rejected)} key",
                keys=tuple(rejected),
                status_code=next(iter(rejected.values())).status_code,
                detail="; ".join(f"{key}: {refusal.detail}" for key, refusal in rejected.items()),
            )

    def _secret_key_refusal(self) -> GatewayRejected | None:
        """IntaSend's refusal of the secret key, or None when it accepted it."""
        endpoint = "wallets/"
        try:
            data = _call(endpoint, self._wallets.retrieve)
        except GatewayRejected as exc:
            if _refuses_key(exc):
                return exc
            if exc.status_code == 403:  # authenticated, only not allowed to list wallets
                return None
            raise _inconclusive(endpoint, exc) from exc
        if not isinstance(data.get("results"), list):
            raise _unexpected(endpoint, data, self._wallets.last_status_code)
        return None

    def _publishable_key_refusal(self) -> GatewayRejected | None:
        """IntaSend's refusal of the publishable key, or None when it accepted it."""
        endpoint = "payment/status/"
        try:
            data = _call(endpoint, self._collect.status, _KEY_CHECK_INVOICE_ID)
        except GatewayRejected as exc:
            if _refuses_key(exc):
                return exc
            # The key was taken; the made-up invoice was not (404, or a 400 about invoice_id only).
            if exc.status_code == 404 or (
                exc.status_code == 400 and exc.errors and all(e.get("attr") == "invoice_id" for e in exc.errors)
            ):
                return None
            raise _inconclusive(endpoint, exc) from exc
        with self._expecting(endpoint, data):
            _mapping(data.get("invoice"))  # an answer about some invoice: the key reads this account
        return None

    @contextmanager
    def _expecting(self, endpoint: str, data: dict[str, Any]) -> Iterator[None]:
        """Turn a 2xx body without the keys we need into ``GatewayUnavailable`` (garbage)."""
        try:
            yield
        except _Malformed:
            raise _unexpected(endpoint, data, self._collect.last_status_code) from None


# -- helpers -------------------------------------------------------------------------------


# Longer than any IntaSend invoice id (7 characters), so no account has it.
_KEY_CHECK_INVOICE_ID = "CLOUDPILOT-KEY-CHECK"
_KEY_ERROR_CODES = {"authentication_failed", "not_authenticated"}


def _refuses_key(exc: GatewayRejected) -> bool:
    """401 is IntaSend's "wrong key or wrong environment"; its docs also show a bad token as a 403
    ``authentication_failed``. Any other 403 is a known key that may not do this one thing."""
    if exc.status_code == 401:
        return True
    return exc.status_code == 403 and any(e.get("code") in _KEY_ERROR_CODES for e in exc.errors)


def _inconclusive(endpoint: str, exc: GatewayRejected) -> GatewayUnavailable:
    """A refusal that says nothing about the keys (throttled, a validation error, a missing route)."""
    return GatewayUnavailable(
        f"IntaSend {endpoint}: answer proves nothing about the keys",
        status_code=exc.status_code,
        detail=exc.detail,
        errors=exc.errors,
    )


def _normalise_base_url(base_url: str) -> str:
    """Accept ``.../api/v1`` with or without the trailing slash; SDK paths are appended."""
    base_url = base_url.strip()
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"IntaSend base URL must be http(s): {base_url!r}")
    return base_url.rstrip("/") + "/"


def _json_amount(amount: Decimal | int | str) -> int | str:
    """An amount the SDK can put in JSON without float rounding.

    Whole amounts go as JSON integers, which is what every IntaSend example sends and what
    M-Pesa takes (whole shillings). Anything fractional goes as a plain decimal string
    ("25.50"), which IntaSend's (DRF) decimal fields accept, so no binary-float rounding happens.
    """
    if isinstance(amount, bool):
        raise ValueError("amount must be a number")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount is not a number: {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"amount must be positive: {amount!r}")
    if value == value.to_integral_value():
        return int(value)
    return format(value, "f")


def _call(endpoint: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run an SDK method; our ``send_request`` already maps HTTP and network failures, this is
    the belt and braces that keeps the SDK's own exception types from ever escaping."""
    try:
        return method(*args, **kwargs)
    except GatewayError:
        raise
    except (
        sdk_exceptions.IntaSendBadRequest,
        sdk_exceptions.IntaSendUnauthorized,
        sdk_exceptions.IntaSendNotAllowed,
    ) as exc:
        raise GatewayRejected(f"IntaSend {endpoint} refused the request", detail=_clip(str(exc))) from exc
    except (sdk_exceptions.IntaSendServerError, requests.RequestException) as exc:
        raise GatewayUnavailable(f"IntaSend {endpoint} failed", detail=_clip(str(exc))) from exc


def _parse_response(endpoint: str, resp: requests.Response) -> dict[str, Any]:
    status = resp.status_code
    try:
        data = resp.json()
    except ValueError:
        # Non-JSON at any status (a proxy's HTML 502, an empty body, garbage) is not IntaSend
        # speaking: the request's fate is unknown.
        raise GatewayUnavailable(
            f"IntaSend {endpoint} answered HTTP {status} with a non-JSON body",
            status_code=status,
            detail=_clip(resp.text),
        ) from None
    if 200 <= status < 300:
        if isinstance(data, list):
            # Lists came as bare arrays in IntaSend's 2021 docs, as DRF pages since: read both as pages.
            return {"results": data}
        if not isinstance(data, dict):
            raise _unexpected(endpoint, data, status)
        return data
    errors = _parse_errors(data)
    detail = "; ".join(
        f"{e['attr']}: {e['detail']}" if e.get("attr") else str(e.get("detail")) for e in errors
    ) or _clip(resp.text)
    error_class = GatewayRejected if 400 <= status < 500 else GatewayUnavailable
    raise error_class(
        f"IntaSend {endpoint} answered HTTP {status}",
        status_code=status,
        detail=detail,
        errors=errors,
    )


def _parse_errors(data: Any, *, field_errors: bool = True) -> list[dict[str, Any]]:
    """Normalise IntaSend's error bodies to ``[{"code", "detail", "attr"}]``.

    Handles the current ``{"type", "errors": [...]}`` shape, the older DRF ``{"detail": ...}``
    and plain DRF field errors ``{"field": ["message", ...]}``.
    """
    if not isinstance(data, dict):
        return []
    items = data.get("errors")
    if isinstance(items, list):
        return [
            {"code": e.get("code"), "detail": e.get("detail"), "attr": e.get("attr")}
            if isinstance(e, dict)
            else {"code": None, "detail": str(e), "attr": None}
            for e in items
        ]
    if "detail" in data:
        return [{"code": data.get("code"), "detail": str(data["detail"]), "attr": None}]
    if not field_errors:
        return []
    return [
        {"code": None, "detail": message, "attr": attr}
        for attr, messages in data.items()
        if isinstance(messages, list)
        for message in messages
        if isinstance(message, str)
    ]


def _unexpected(endpoint: str, data: Any, status: int | None = None) -> GatewayUnavailable:
    return GatewayUnavailable(
        f"IntaSend {endpoint}: unexpected response",
        status_code=status,
        detail=_clip(repr(data)),
        # A success-shaped body is not a DRF field-error dict: only take explicit error lists.
        errors=_parse_errors(data, field_errors=False),
    )


_PAID_STATES = {"COMPLETE", "COMPLETED"}


def _status_result(invoice: dict[str, Any], raw: dict[str, Any], invoice_id: str | None = None) -> StatusResult:
    """An invoice (status answer or collection list entry) as a ``StatusResult``; raises ``_Malformed``."""
    # Older/other shapes carry "id" instead of (or besides) "invoice_id".
    answered_id = _required(invoice.get("invoice_id") or invoice.get("id") or invoice_id)
    if invoice_id and answered_id != invoice_id:
        # Confirming a payment on another invoice's answer would be worse than failing.
        raise _Malformed
    failed_code = invoice.get("failed_code")
    return StatusResult(
        invoice_id=answered_id,
        state=_required(invoice.get("state")).upper(),
        # None when absent or null: the services never complete a payment on an unknown amount.
        amount=_money(invoice.get("value")),
        currency=_text(invoice.get("currency")),
        provider=_text(invoice.get("provider")),
        mpesa_reference=_text(invoice.get("mpesa_reference")),
        failed_reason=_text(invoice.get("failed_reason")),
        # Opaque: seen as "-1" and as 0 in the wild, so always a string.
        failed_code=None if failed_code is None else str(failed_code),
        api_ref=_text(invoice.get("api_ref")),
        raw=raw,
    )


class _Malformed(Exception):
    """A success body without what we need; becomes ``GatewayUnavailable`` in ``_expecting``."""


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed
    return value


def _required(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise _Malformed
    return text


def _money(value: Any) -> Decimal | None:
    """Money arrives as JSON numbers or strings depending on endpoint and year."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Malformed
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _Malformed from None
    if not amount.is_finite():
        raise _Malformed
    return amount


def _text(value: Any) -> str | None:
    """A non-empty string field, or None (also for the literal "null" IntaSend sometimes sends)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text if text and text != "null" else None


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "..."
