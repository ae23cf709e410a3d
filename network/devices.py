"""A customer's device as the hotspot names it: its MAC address, written the way RouterOS prints it."""

from __future__ import annotations

import re

from project.errors import ApplicationError, ErrorCode

# ASCII only: `str.upper()` lets ligatures (`ﬀ` → `FF`) in.
_MAC = re.compile(r"[0-9A-F]{2}([:-]?)[0-9A-F]{2}(\1[0-9A-F]{2}){4}")
INVALID_MAC_MESSAGE = "Invalid MAC address format"


def normalise_mac(raw: str | None) -> str:
    """Empty, or the MAC (``AA:BB:CC:DD:EE:FF``, ``aa-bb-…`` or ``AABBCCDDEEFF``) as ``AA:BB:CC:DD:EE:FF``."""
    value = (raw or "").strip()
    if not value:
        return ""
    value = value.upper() if value.isascii() else value
    if not _MAC.fullmatch(value):
        raise ApplicationError(ErrorCode.INVALID_MAC, INVALID_MAC_MESSAGE, field="macAddress")
    hex_digits = re.sub(r"[:-]", "", value)
    return ":".join(hex_digits[i : i + 2] for i in range(0, 12, 2))
