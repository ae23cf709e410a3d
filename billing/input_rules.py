"""Parsing what portal callers type: Kenyan phone numbers, IP addresses, amounts (MACs: network.devices)."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from project.errors import ApplicationError, ErrorCode

# Safaricom, Airtel and Telkom mobile ranges: 07XX XXX XXX and the newer 01XX XXX XXX.
# ASCII only: `\d` and `str.upper()` let other scripts' digits (`07١٢…`) and ligatures (`ﬀ` → `FF`) in.
_LOCAL_MOBILE = re.compile(r"[71][0-9]{8}")


def normalise_phone(raw: str) -> str:
    """`0712345678`, `712345678`, `+254712345678`, `254712345678` (spaces/dashes allowed) → `254712345678`."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("254"):
        local = digits[3:]
    elif digits.startswith("0"):
        local = digits[1:]
    else:
        local = digits
    if not _LOCAL_MOBILE.fullmatch(local):
        raise ApplicationError(ErrorCode.INVALID_PHONE, "Invalid phone number format", field="phoneNumber")
    return "254" + local


def mask_phone(phone: str) -> str:
    """What a portal may see of a payer's number: `254712345678` → `2547******78`."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:4] + "*" * (len(phone) - 6) + phone[-2:]


def normalise_ip(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    try:
        if not value.isascii() or "%" in value:  # a zone (`fe80::1%eth0`) names our interfaces, not theirs
            raise ValueError(value)
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ApplicationError(ErrorCode.INVALID_IP, "Invalid IP address format", field="ipAddress") from None


def parse_amount(raw: Decimal | str | int) -> Decimal:
    text = str(raw).strip()
    try:
        if not text.isascii():  # Decimal() reads any script's digits
            raise ValueError(text)
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ApplicationError(ErrorCode.INVALID_INPUT, "Invalid amount", field="amount") from None
    if not amount.is_finite():
        raise ApplicationError(ErrorCode.INVALID_INPUT, "Invalid amount", field="amount")
    return amount
