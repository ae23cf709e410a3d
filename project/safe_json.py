"""Decoding JSON from strangers: only what can be stored and walked safely.

Python's ``json`` accepts ``NaN``/``Infinity`` (PostgreSQL's jsonb refuses them on save),
recurses once per nesting level (a few thousand ``[`` raise ``RecursionError``), and decodes
``"\u0000"`` and unpaired surrogates (``"\ud800"``), which no database column stores and UTF-8
cannot encode. All of them turned hostile bodies into 500s; here they are one ``UnsafeJSON`` (a
``ValueError``) for a 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "UNSTORABLE_TEXT", "UnsafeJSON", "loads"]

# Deeper than any webhook or GraphQL variables we accept, far below the recursion limit.
MAX_DEPTH = 64

# NUL and lone UTF-16 surrogates: text no database stores (PostgreSQL refuses NUL, UTF-8 surrogates).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "text must not contain NUL characters or unpaired surrogates"


class UnsafeJSON(json.JSONDecodeError):
    """Not JSON, or JSON we refuse (non-finite numbers, too deep). A ``ValueError``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.args = (message,)  # no "line 1 column 1": there is no position to report


def _refuse_constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses as inf
        raise UnsafeJSON(f"{text[:20]} is out of range")
    return number


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``UnsafeJSON`` for anything a strict parser would refuse,
    and for containers nested deeper than ``max_depth``."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnsafeJSON:
        raise
    except RecursionError:
        raise UnsafeJSON("JSON nested too deeply") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, bad UTF-8, over-long integers
        raise UnsafeJSON(f"Invalid JSON: {exc}") from None
    if _may_hide_something(data, max_depth):
        _check(value, max_depth)
    return value


def _may_hide_something(data: str | bytes | bytearray, max_depth: int) -> bool:
    """False when the text alone shows the walk would find nothing: no ``\\u`` escape (the only way
    to spell NUL or a lone surrogate that json accepts), no such character written as it is, and
    no more brackets than ``max_depth`` (so no deeper nesting). Every WebSocket frame is decoded here,
    and the walk was ~1.5% of a reconnecting portal's CPU (issue 14)."""
    if not isinstance(data, str):
        return True
    return "\\u" in data or data.count("[") + data.count("{") > max_depth or UNSTORABLE_TEXT.search(data) is not None


def _check(value: Any, max_depth: int) -> None:
    # Iterative, so the check itself cannot overflow the stack.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE_TEXT.search(item):
                raise UnsafeJSON(UNSTORABLE_MESSAGE)
            continue
        if isinstance(item, dict):
            if any(UNSTORABLE_TEXT.search(key) for key in item):
                raise UnsafeJSON(UNSTORABLE_MESSAGE)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
