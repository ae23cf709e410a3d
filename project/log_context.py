"""Which payment or activation the running code is working on, stamped on every log line it writes.

A job, webhook or service that starts working on a payment or an activation calls ``bind`` inside a
function decorated with ``scoped``; until that function returns, every record (ours, the IntaSend
client's, the router driver's) carries ``payment_id`` / ``activation_id`` through
``LogContextFilter``, so a JSON log can be searched by either id.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

_payment_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_payment_id", default=None)
_activation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_activation_id", default=None)
_FIELDS = {"payment_id": _payment_id, "activation_id": _activation_id}


def scoped(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Ids bound while ``function`` runs are forgotten when it returns, so a worker thread's next
    job or request never inherits them."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        tokens = [(var, var.set(var.get())) for var in _FIELDS.values()]
        try:
            return function(*args, **kwargs)
        finally:
            for var, token in tokens:
                var.reset(token)

    return wrapper


def bind(*, payment_id: object = None, activation_id: object = None) -> None:
    """From now on (until the enclosing ``scoped`` function returns) log lines name these ids."""
    if payment_id is not None:
        _payment_id.set(str(payment_id))
    if activation_id is not None:
        _activation_id.set(str(activation_id))


class LogContextFilter(logging.Filter):
    """Adds the bound ids to each record (an ``extra=`` given at the call site wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for field, var in _FIELDS.items():
            value = var.get()
            if value is not None and not hasattr(record, field):
                setattr(record, field, value)
        return True
