"""Object ids as clients send them (GraphQL ``ID`` is a string): a positive 64-bit integer, or nothing."""

from __future__ import annotations

# A larger number cannot be a row id, and some databases fail on it instead of finding nothing.
_MAX_PK = 2**63


def as_pk(raw: object) -> int | None:
    """The id as an integer primary key, or None for anything that cannot be one (which reads as missing)."""
    # Plain ASCII digits only: int() also takes " 17" and "٣", which would name an object by another
    # spelling than its id (found from outside: deletePackage(packageId: " 17") deleted package 17).
    text = str(raw)
    # Longer than 2**63 has digits: int() of over 4,300 digits raised a ValueError (an INTERNAL error).
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(_MAX_PK)):
        return None
    value = int(text)
    return value if 0 < value < _MAX_PK else None
