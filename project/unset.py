"""``UNSET``: an update field the caller did not send, as opposed to an explicit null (services of every app)."""

from __future__ import annotations

from typing import Any

import strawberry


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def given(value: object) -> object:
    """Strawberry's UNSET (an input field not sent) → the services' ``UNSET``; everything else as is."""
    return UNSET if value is strawberry.UNSET else value
