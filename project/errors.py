"""The one error type services raise; the GraphQL layer turns it into `UserError`s."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_MAC = "INVALID_MAC"
    INVALID_IP = "INVALID_IP"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    ROUTER_NOT_FOUND = "ROUTER_NOT_FOUND"
    PACKAGE_NOT_FOUND = "PACKAGE_NOT_FOUND"
    PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND"
    NO_CREDENTIALS = "NO_CREDENTIALS"
    NOT_INTASEND_PAYMENT = "NOT_INTASEND_PAYMENT"
    GATEWAY_ERROR = "GATEWAY_ERROR"
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"
    DECRYPTION_FAILED = "DECRYPTION_FAILED"
    RATE_LIMITED = "RATE_LIMITED"
    PAYMENT_ALREADY_PENDING = "PAYMENT_ALREADY_PENDING"
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    ACTIVATION_NOT_RETRYABLE = "ACTIVATION_NOT_RETRYABLE"
    ROUTER_UNREACHABLE = "ROUTER_UNREACHABLE"
    ROUTER_NOT_ALLOWED = "ROUTER_NOT_ALLOWED"
    CODE_INVALID = "CODE_INVALID"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    CODE_EXPIRED = "CODE_EXPIRED"
    DEVICE_LIMIT_REACHED = "DEVICE_LIMIT_REACHED"
    VOUCHER_NOT_FOUND = "VOUCHER_NOT_FOUND"
    ACTIVATION_NOT_FOUND = "ACTIVATION_NOT_FOUND"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INTERNAL = "INTERNAL"

    @property
    def description(self) -> str:
        """What happened and what the client should do: the GraphQL enum's value description."""
        return _DESCRIPTIONS[self]


# Kept beside the enum, in plain text, so that a code cannot be added without saying what it means
# (project.graphql_support reads it for the schema; a missing entry fails at import).
_DESCRIPTIONS = {
    ErrorCode.INVALID_INPUT: "An input value is missing, malformed or out of range; `field` names it and the "
    "message says why. A mutation reports every invalid field at once. Fix them and send again. Also top-level "
    "for a negative `pagination.offset`, an unreadable request body, and a document the server refuses (it does "
    "not parse or validate, exceeds the depth, alias or token limits, or its variables do not fit).",
    ErrorCode.INVALID_PHONE: "Not a Kenyan mobile number. Accepted: 0712345678, 712345678, +254712345678, "
    "254712345678 (and 01… numbers). Ask the customer to correct it.",
    ErrorCode.INVALID_MAC: "`macAddress` is not a MAC address (six hex pairs separated by `:` or `-`). Send the "
    "hotspot's `$(mac)` unchanged, or leave it out where it is optional.",
    ErrorCode.INVALID_IP: "`ipAddress` is not an IPv4 or IPv6 address. Send the hotspot's `$(ip)` unchanged, or "
    "leave it out where it is optional.",
    ErrorCode.AMOUNT_MISMATCH: "`amount` differs from the package's price; the message gives the price (e.g. "
    "`Amount must match package price: 25.00 KES`). Reload `packages` and send the package's `price`.",
    ErrorCode.ROUTER_NOT_FOUND: "No such router among the caller's (someone else's router is reported the same "
    "way). Check `routerId`; a portal's configuration points at the wrong router.",
    ErrorCode.PACKAGE_NOT_FOUND: "No such package on that router, or it is not active (message: `Package not "
    "found or not active for this router`). Reload `packages(routerId)` and let the customer choose again.",
    ErrorCode.PAYMENT_NOT_FOUND: "No such payment among the caller's; for X-Public-Key callers also a missing or "
    "wrong `clientSecret` (message: `Payment not found or access denied`). Send the id and clientSecret that "
    "initiatePayment/createPaymentLink returned.",
    ErrorCode.NO_CREDENTIALS: "The operator has no active IntaSend credentials, so no payment can be taken. "
    "Operators: add them with addPaymentCredential. Portals: the customer cannot fix this; show the support line.",
    ErrorCode.NOT_INTASEND_PAYMENT: "checkPaymentStatus on a payment not initiated through IntaSend: there is no "
    "gateway to ask. Read the payment with `payment` instead.",
    ErrorCode.GATEWAY_ERROR: "IntaSend refused the request. The payment is kept (FAILED, with `failureReason`) "
    "and returned in the payload. The customer may try again; an operator should check their credentials.",
    ErrorCode.GATEWAY_UNAVAILABLE: "IntaSend did not answer usably (timeout, 5xx, garbage). A push whose answer "
    "never came may still reach the phone: the payment in the payload stays PROCESSING until the server settles "
    "it. Follow it (paymentUpdates or checkPaymentStatus) rather than paying again.",
    ErrorCode.DECRYPTION_FAILED: "Stored credentials could not be decrypted (the server's encryption key "
    "changed). Operators: add the credentials again. Portals: show the support line.",
    ErrorCode.RATE_LIMITED: "Too many attempts from this caller, phone, address or operator in a short time "
    "(payments, sign-ins, status checks, router checks, code redemptions, subscriptions). Wait a minute and try "
    "again; a portal can fall back to polling less often.",
    ErrorCode.PAYMENT_ALREADY_PENDING: "A push to this phone on this router is still in progress (under 2 minutes "
    "old, 5 when its outcome is unknown). No payment is returned: wait for the customer to answer the prompt, "
    "or replay your own idempotencyKey to get yours back.",
    ErrorCode.IDEMPOTENCY_MISMATCH: "This idempotencyKey was used before with different input. Use a fresh key "
    "for a new payment; replay a key only with the exact same input.",
    ErrorCode.AUTHENTICATION_FAILED: "Sign-in refused: wrong username or password, or an invalid, expired or "
    "retired refresh token. Ask the operator to sign in again.",
    ErrorCode.ACTIVATION_NOT_RETRYABLE: "retryActivation on an activation that is not FAILED (or a payment that "
    "has none yet). Nothing to do: read its current status.",
    ErrorCode.ROUTER_UNREACHABLE: "The router's API did not answer (unreachable, refused, timed out). Check the "
    "router's address, port and that it is online; activations are retried by themselves.",
    ErrorCode.ROUTER_NOT_ALLOWED: "The router's host resolves to an address the server may not connect to "
    "(loopback, link-local, multicast, or a network the installation denies). Use the router's real address.",
    ErrorCode.CODE_INVALID: "The code is unknown, revoked or not for this router (one answer for all, by "
    "design). Ask the customer to check the code they typed.",
    ErrorCode.SERVICE_UNAVAILABLE: "A server dependency (cache or queue) is down for a moment; nothing was done. "
    "Try again shortly.",
    ErrorCode.INVALID_CREDENTIALS: "IntaSend rejected the API key named by `field` (addPaymentCredential: "
    "nothing was stored; verifyPaymentCredential: kept in `lastVerificationError`). Copy the publishable and "
    "secret keys again from the IntaSend dashboard (right environment: SANDBOX or LIVE).",
    ErrorCode.CODE_EXPIRED: "The code is known but its time is over. Offer the customer a new package.",
    ErrorCode.DEVICE_LIMIT_REACHED: "Every device slot of this code is in use (the package's `sharedUsers`). Log "
    "another device off first, or buy a package for this device.",
    ErrorCode.VOUCHER_NOT_FOUND: "No such voucher among the operator's. Reload the voucher batch.",
    ErrorCode.ACTIVATION_NOT_FOUND: "No such activation among the operator's. Reload the list.",
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: "Automatic persisted queries: the server does not know this query's "
    "hash. Send the same request again with the full query text (Apollo's client does this by itself).",
    ErrorCode.UNAUTHENTICATED: "Top-level error: missing or invalid credentials for an operation that needs "
    "them, or an operator token that expired during a subscription. Send `Authorization: Bearer <accessToken>` "
    "(refresh it with refreshToken) or, where allowed, the portal's `X-Public-Key`.",
    ErrorCode.INTERNAL: "Top-level error: something unexpected failed on the server (message: `Internal server "
    "error`); it is logged there. Retry later; for payments, read the payment's status before paying again.",
}


class ApplicationError(Exception):
    """A failure the caller can act on: a stable code, a human message, maybe the input field.

    `payment` carries the caller's own payment a failure is about (a gateway failure keeps its
    record) so the payload can return it; never someone else's (an already-pending push has none).
    """

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None, payment: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.payment = payment

    @property
    def errors(self) -> list[ApplicationError]:
        """Every failure this error reports: itself, or each invalid field (see `InvalidFields`)."""
        return [self]


class InvalidFields(ApplicationError):
    """Several invalid input fields reported together (API.md "Errors": one `UserError` per field).

    It reads as its first failure, so code that only looks at `code`/`message` keeps working."""

    def __init__(self, failures: list[ApplicationError]) -> None:
        first = failures[0]
        super().__init__(first.code, first.message, field=first.field)
        self._failures = failures

    @property
    def errors(self) -> list[ApplicationError]:
        return list(self._failures)


class FieldChecks:
    """Runs a mutation's field checks, collecting every failure before raising once.

    checks = FieldChecks()
    with checks:
        name = _required_text(data.name, "name", 100)
    with checks:
        price = _price(data.price)
    checks.raise_if_any()   # InvalidFields with both, or nothing
    """

    def __init__(self) -> None:
        self.failures: list[ApplicationError] = []

    def __enter__(self) -> FieldChecks:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, ApplicationError):
            self.failures.extend(exc.errors)
            return True
        return False

    def raise_if_any(self) -> None:
        if len(self.failures) == 1:
            raise self.failures[0]
        if self.failures:
            raise InvalidFields(self.failures)
