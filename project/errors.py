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
