"""What text people type for customers to read (business names, messages, package and router names) may hold."""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides and isolates (and the invisible marks): U+202E shows "gpj.exe" as
# "exe.jpg"; in a business name or package name on a portal or a printed voucher it could make a price or
# a phone number read as another.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def displayable(text: str, *, newlines: bool = False) -> bool:
    """No control characters (a line break only where ``newlines``) and no bidirectional controls."""
    return not any(
        ch in BIDI_CONTROLS or (unicodedata.category(ch) == "Cc" and not (newlines and ch == "\n")) for ch in text
    )
