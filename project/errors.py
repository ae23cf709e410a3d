"""The one error type services raise; the GraphQL layer turns it into a `UserError`."""

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
