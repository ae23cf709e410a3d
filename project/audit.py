"""Recording operators' actions in their audit log (``project.models.AuditEntry``), from any app.

Call ``record`` inside the transaction that makes the change, so an entry exists exactly when the change
does. ``changes`` never carries a secret: pass field names for write-only values, not their values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from project.models import AuditEntry


@dataclass
class _OnBehalf:
    actor: AbstractBaseUser
    via: str
    recorded: int = field(default=0)


_on_behalf: ContextVar[_OnBehalf | None] = ContextVar("audit_on_behalf", default=None)


@contextmanager
def on_behalf(actor: AbstractBaseUser, via: str) -> Iterator[_OnBehalf]:
    """Within it, entries services record name ``actor`` and ``via`` (the admin calls services on an
    operator's behalf: the log says who clicked). ``.recorded`` counts the entries written."""
    state = _OnBehalf(actor=actor, via=via)
    token = _on_behalf.set(state)
    try:
        yield state
    finally:
        _on_behalf.reset(token)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, models.Model):
        return value.pk
    return str(value)  # Decimal, datetime, UUID: their canonical text


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value changed."""
    return {
        field: [_jsonable(before.get(field)), _jsonable(value)]
        for field, value in after.items()
        if before.get(field) != value
    }


def record(
    *,
    operator: AbstractBaseUser,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    via: str = AuditEntry.Via.API,
) -> AuditEntry:
    """Append one entry to ``operator``'s log: ``actor`` did ``action`` to ``obj``."""
    behalf = _on_behalf.get()
    if behalf is not None:
        actor, via = behalf.actor, behalf.via
        behalf.recorded += 1
    return AuditEntry.objects.create(
        operator=operator,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "system",
        via=via,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        changes=_jsonable(changes or {}),
    )


def audit_entries_for(operator: AbstractBaseUser) -> models.QuerySet[AuditEntry]:
    """``operator``'s own log, newest first; nobody reads another operator's entries."""
    return AuditEntry.objects.filter(operator=operator).order_by("-at", "-id")
