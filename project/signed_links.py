"""Short-lived links that carry authority (a voucher sheet, a revenue CSV): a signed, timestamped payload.

Each kind has its own salt, so a token signed for one never passes as another.
"""

from __future__ import annotations

from typing import Any

from django.core import signing


def sign(payload: dict[str, Any], *, salt: str) -> str:
    return signing.dumps(payload, salt=salt, compress=False)


def unsign(token: str, *, salt: str, max_age: int) -> dict[str, Any] | None:
    """The payload, or None when the token is forged, altered, of another kind or older than ``max_age`` seconds."""
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return payload if isinstance(payload, dict) else None
