"""Caps on open GraphQL WebSockets per client address, per portal public key and per operator login (API.md
"Subscriptions").

One client opening thousands of sockets must not crowd out everyone else: beyond
`GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS` sockets from one address,
`GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY` sockets authenticated by one operator's public key, or
`GRAPHQL_WS_MAX_SOCKETS_PER_OPERATOR` sockets with one operator's tokens (consoles; a tenant spreading
thousands of them over many addresses hung a process with its operator streams), a
socket is closed with 4429 "Too many connections" (subscriptions per socket are capped by
`GRAPHQL_WS_MAX_SUBSCRIPTIONS`). The counts live in this process's memory: each daphne process
enforces its own caps, so N processes behind a load balancer allow up to N times as many. That
bounds what one client costs a process, which is what the caps are for, without a Redis round
trip per socket. Handshakes are also paced per address (`project.ws_pacing`); a handshake that
would wait too long for its turn is refused the same way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from django.conf import settings
from strawberry.exceptions import ConnectionRejectionError

from project.client_address import client_address
from project.errors import ErrorCode
from project.ws_pacing import handshake_turn

TOO_MANY_CONNECTIONS = (4429, "Too many connections")


class _Tally:
    """Open sockets per key, and the most any key has, kept in O(1) per change: the metrics read the
    most on every open and close, and finding it by walking every key cost 0.2 ms per socket at
    10,000 client addresses (quadratic in a reconnect storm)."""

    __slots__ = ("counts", "keys_with", "most")

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.keys_with: Counter[int] = Counter()  # how many keys have each count
        self.most = 0

    def __getitem__(self, key: Any) -> int:
        return self.counts.get(key, 0)

    def add(self, key: Any) -> None:
        before = self.counts.get(key, 0)
        self._move(before, before + 1)
        self.counts[key] = before + 1
        self.most = max(self.most, before + 1)

    def release(self, key: Any) -> None:
        before = self.counts.get(key, 0)
        if before <= 0:
            return
        self._move(before, before - 1)
        if before == 1:
            del self.counts[key]
        else:
            self.counts[key] = before - 1
        if before == self.most and not self.keys_with[before]:
            self.most = before - 1  # the key just released has that many (or none are left)

    def _move(self, before: int, after: int) -> None:
        if before:
            self.keys_with[before] -= 1
            if not self.keys_with[before]:
                del self.keys_with[before]
        if after:
            self.keys_with[after] += 1


_open_by_address = _Tally()
_open_by_public_key = _Tally()
_open_by_operator_token = _Tally()
_cleanups: set[asyncio.Task] = set()  # disconnects run for cancelled instances, held until done


def rejection(reason: str, code: ErrorCode) -> dict[str, Any]:
    """The payload of graphql-ws's `connection_error` (graphql-transport-ws only closes, with the
    reason): coded like every error, and still carrying `reason` as before."""
    return {"reason": reason, "message": reason, "extensions": {"code": code.value}}


def open_sockets() -> tuple[dict[str, int], dict[int, int]]:
    """This process's open sockets by client address and by public key's operator id (for tests)."""
    return dict(_open_by_address.counts), dict(_open_by_public_key.counts)


def busiest() -> tuple[int, int]:
    """The open sockets of the busiest client address and of the busiest public key (for metrics)."""
    return _open_by_address.most, _open_by_public_key.most


class SocketCaps:
    """Mixin for the GraphQL consumer: counts the socket at the handshake (address) and at
    `connection_init` (public key), and gives the count back when the socket ends."""

    _counted_address: str | None = None
    _counted_principal: tuple[_Tally, int] | None = None  # (its public-key or token tally, operator id)
    _refusal: tuple[int, str] | None = None
    _disconnected = False

    async def connect(self) -> None:
        address = client_address(self.scope)
        paced = await handshake_turn(address)  # one address's burst of handshakes waits its turn
        if not paced or (
            address is not None and _open_by_address[address] >= settings.GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS
        ):
            # Accepted, then closed: only an accepted socket can carry a close code to the client.
            self._refusal = TOO_MANY_CONNECTIONS
            await self.accept(subprotocol=await self.pick_websocket_subprotocol(self))
            await self.close()
            return
        self.scope["client_address"] = address
        if address is not None:
            _open_by_address.add(address)
            self._counted_address = address
        await super().connect()

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        principal = self.scope.get("principal")
        if principal is not None:
            operator_id = principal.operator.pk
            by_key = principal.via == "public_key"
            tally = _open_by_public_key if by_key else _open_by_operator_token
            cap = (
                settings.GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY
                if by_key
                else settings.GRAPHQL_WS_MAX_SOCKETS_PER_OPERATOR
            )
            if tally[operator_id] >= cap:
                self._refusal = TOO_MANY_CONNECTIONS  # the protocol handler's close carries it
                raise ConnectionRejectionError(rejection(TOO_MANY_CONNECTIONS[1], ErrorCode.RATE_LIMITED))
            tally.add(operator_id)
            self._counted_principal = (tally, operator_id)
        return await super().on_ws_connect(context)

    async def close(self, code: Any = None, reason: str | None = None) -> None:
        if self._refusal is not None:
            code, reason = self._refusal
        await super().close(code=code, reason=reason)

    def _release_counts(self) -> None:
        if self._counted_address is not None:
            _open_by_address.release(self._counted_address)
            self._counted_address = None
        if self._counted_principal is not None:
            tally, operator_id = self._counted_principal
            tally.release(operator_id)
            self._counted_principal = None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # daphne cancels an instance that has not taken its disconnect within 10 s (a stalled
            # process): `disconnect` never ran then, and the socket's counts, subscriptions and group
            # memberships would outlive it. Its own task: this one is being cancelled.
            if not self._disconnected:
                self._release_counts()
                cleanup = asyncio.ensure_future(self.disconnect(1006))
                _cleanups.add(cleanup)
                cleanup.add_done_callback(_cleanups.discard)

    async def disconnect(self, code: int) -> None:
        self._disconnected = True
        self._release_counts()
        if getattr(self, "run_task", None) is None:  # refused at the handshake: nothing runs
            return
        try:
            await super().disconnect(code)  # waits for the socket's handler to end
        finally:
            # The handler may have been checking connection_init's credentials when the client
            # left, and counted the socket once they came back: 1,000 such handshakes, with only a
            # portal's public key, used up that key's cap until a restart (red team).
            self._release_counts()
