"""Credential reads of GraphQL WebSockets, batched: one query serves every socket waiting for one.

After a restart thousands of portals reconnect at once (issue 14 item 5). One indexed read per
`connection_init` (the public key's operator) and another per first `subscribe` (are the credentials
still valid?) made the storm CPU-bound: each read is a hop to a thread, a query built and compiled by
the ORM, a hop back. Reads wait here instead: while one batch is being read, the requests that
arrive join the next, which starts as soon as it is done; at rest a batch is one request.

Nothing is remembered between batches. Every request is answered by a query that started after the
request was made, so a key rotated (or an operator deactivated) before a handshake is refused exactly
as with a read of its own: "the old key stops working at once" (API.md) holds without a cache to
invalidate.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from project.auth import (
    Principal,
    credentials_still_valid,
    portal_principals,
    principal_from_credentials,
    well_formed_public_key,
)
from project.db_threads import ws_database_read

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_BATCH = 500  # keys per query (an IN list)


class _Batches(Generic[K, V]):
    """One event loop's batches of one read: `read_many(keys)` runs on the WebSocket database pool
    and answers what it knows; a key it leaves out gets None."""

    def __init__(self, read_many: Callable[[list[K]], Mapping[K, V]]) -> None:
        self._read_many = ws_database_read(read_many)
        self._waiting: dict[K, list[asyncio.Future]] = {}
        self._reader: asyncio.Task | None = None

    async def get(self, key: K) -> V | None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._reader is None:
            # Its own task: a socket that goes away (cancelling its wait) never cancels others' read.
            self._reader = asyncio.get_running_loop().create_task(self._read_while_waiting())
        return await future

    async def _read_while_waiting(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[:MAX_BATCH]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._read_many(keys)
                except Exception as exc:  # the waiters fail as a read of their own would have
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for future in futures:
                        if not future.done():  # a waiter cancelled meanwhile
                            future.set_result(found.get(key))
        finally:
            self._reader = None


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Batches]] = weakref.WeakKeyDictionary()


def _batches(name: str, read_many: Callable[[list[Any]], Mapping[Any, Any]]) -> _Batches:
    # Futures belong to a loop: daphne has one, tests start several.
    per_loop = _loops.setdefault(asyncio.get_running_loop(), {})
    if name not in per_loop:
        per_loop[name] = _Batches(read_many)
    return per_loop[name]


async def socket_principal(credentials: Mapping[str, Any]) -> Principal | None:
    """`principal_from_credentials` for a socket: portal keys are read in batches (a storm is
    portals); an operator's token (few sockets, and its own checks) is read on its own."""
    lowered = {str(k).lower(): v for k, v in credentials.items() if isinstance(v, str)}
    if "authorization" in lowered or "x-public-key" not in lowered:
        return await ws_database_read(principal_from_credentials)(credentials)
    key = well_formed_public_key(lowered["x-public-key"])
    return await _batches("portal_principals", portal_principals).get(key) if key else None


def _validity(principals: list[Principal]) -> dict[Principal, bool]:
    return dict(zip(principals, credentials_still_valid(principals), strict=True))


async def socket_credentials_still_valid(principal: Principal) -> bool:
    """`credentials_still_valid` of one socket's principal, read in a batch with other sockets'."""
    return bool(await _batches("credentials_still_valid", _validity).get(principal))
