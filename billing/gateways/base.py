"""The payment-gateway interface: what billing services may rely on, whoever the provider is.

No Django imports here on purpose: gateways are plain adapters over HTTP APIs, testable
without settings or a database, and the services decide what a result means for a payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CheckoutResult",
    "CredentialsRejected",
    "GatewayCredentials",
    "GatewayError",
    "GatewayRejected",
    "GatewayUnavailable",
    "PaymentGateway",
    "StatusResult",
    "StkPushResult",
]


@dataclass(frozen=True)
class GatewayCredentials:
    """An operator's provider keys, already decrypted.

    ``repr=False`` on the private key so an accidental ``repr()`` in a log or a traceback
    does not leak it.
    """

    api_key: str
    private_key: str = field(repr=False)
    environment: str  # "SANDBOX" | "LIVE"


@dataclass(frozen=True)
class StkPushResult:
    """An accepted STK push: the prompt is on its way, the invoice is (normally) PENDING."""

    payment_id: str  # IntaSend's top-level "id" (the payment session uuid)
    invoice_id: str
    state: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class CheckoutResult:
    """A hosted checkout page; it gets an invoice only once the customer pays."""

    checkout_id: str
    url: str
    signature: str
    state: str  # always "PENDING": a fresh checkout has nothing else to report
    raw: dict[str, Any]


@dataclass(frozen=True)
class StatusResult:
    """The provider's current view of an invoice. ``state`` is upper-cased but NOT mapped:
    mapping provider states to payment statuses is the services' job."""

    invoice_id: str
    state: str
    amount: Decimal | None
    currency: str | None
    provider: str | None
    mpesa_reference: str | None
    failed_reason: str | None
    failed_code: str | None
    api_ref: str | None
    raw: dict[str, Any]


class GatewayError(Exception):
    """Any failure talking to a gateway.

    ``detail`` is the provider's raw or parsed text: for logs only, never for end users
    (it can carry internals, HTML pages, or customer data).
    ``errors`` is the provider's error list normalised to ``{"code", "detail", "attr"}``
    dicts, empty when the body carried none.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: str = "",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.errors: list[dict[str, Any]] = list(errors or [])


class GatewayRejected(GatewayError):
    """The gateway answered 4xx: it refused this request (bad input, bad keys, not found,
    throttled). Retrying the same request unchanged will not help, except after a 429."""


class CredentialsRejected(GatewayRejected):
    """The gateway refused the keys themselves. ``keys`` names which: ``"secret"`` (the private key
    pushes use) and/or ``"publishable"`` (the public key status checks use)."""

    def __init__(self, message: str, *, keys: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.keys = keys


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached or answered something unusable (5xx, timeout,
    connection error, non-JSON body, JSON without the expected keys).

    The outcome of the request is UNKNOWN: an STK push that timed out may still have reached
    the customer's phone, so reconcile by ``api_ref`` before sending another.
    """


@runtime_checkable
class PaymentGateway(Protocol):
    """What billing services need from a payment provider.

    Every method raises only :class:`GatewayError` subclasses for provider/network trouble
    (and ``ValueError`` for arguments that could never be valid).
    """

    def stk_push(
        self,
        *,
        phone_number: str,
        amount: Decimal,
        api_ref: str,
        narrative: str,
        currency: str = "KES",
        email: str | None = None,
    ) -> StkPushResult: ...

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
    ) -> CheckoutResult: ...

    def status(
        self,
        *,
        invoice_id: str | None = None,
        checkout_id: str | None = None,
        signature: str | None = None,
    ) -> StatusResult: ...

    def find_by_api_ref(self, api_ref: str) -> StatusResult | None:
        """The provider's invoice for our reference (None when it has none): for pushes whose
        answer never came, so whose invoice id we never learnt."""
        ...

    def verify_keys(self) -> None:
        """Prove every key with calls that move no money: returns when the provider accepts them,
        raises :class:`CredentialsRejected` when it refuses some, :class:`GatewayUnavailable` when
        it cannot tell."""
        ...
