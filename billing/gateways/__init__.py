"""Payment gateways: the :class:`PaymentGateway` protocol and its IntaSend implementation."""

from .base import (
    CheckoutResult,
    CredentialsRejected,
    GatewayCredentials,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    PaymentGateway,
    StatusResult,
    StkPushResult,
)
from .intasend import IntaSendGateway

__all__ = [
    "CheckoutResult",
    "CredentialsRejected",
    "GatewayCredentials",
    "GatewayError",
    "GatewayRejected",
    "GatewayUnavailable",
    "IntaSendGateway",
    "PaymentGateway",
    "StatusResult",
    "StkPushResult",
]
