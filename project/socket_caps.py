"""Caps on open GraphQL WebSockets per client address and per portal public key (API.md "Subscriptions").

One client opening thousands of sockets must not crowd out everyone else: beyond
`GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS` sockets from one address, or
`GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY` sockets authenticated by one operator's public key, a
socket is closed with 4429 "Too many connections" (subscriptions per socket are capped by
`GRAPHQL_WS_MAX_SUBSCRIPTIONS`). The counts live in this process's memory: each daphne process
enforces its own caps, so N processes behind a load balancer allow up to N times as many. That
bounds what one client costs a process, which is what the caps are for, without a Redis round
trip per socket. Handshakes are also paced per address (`project.ws_pacing`); a handshake that
would wait too long for its turn is refused the same way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from strawberry.exceptions import ConnectionRejectionError

from project.client_address import client_address
from project.ws_pacing import handshake_turn

TOO_MANY_CONNECTIONS = (4429, "Too many connections")

_open_by_address: Counter[str] = Counter()
_open_by_public_key: Counter[int] = Counter()


def open_sockets() -> tuple[dict[str, int], dict[int, int]]:
    """This process's open sockets by client address and by public key's operator id (for tests and metrics)."""
    return dict(_open_by_address), dict(_open_by_public_key)


def _release(counter: Counter, key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


class SocketCaps:
    """Mixin for the GraphQL consumer: counts the socket at the handshake (address) and at
    `connection_init` (public key), and gives the count back when the socket ends."""

    _counted_address: str | None = None
    _counted_public_key: int | None = None
    _refusal: tuple[int, str] | None = None

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
            _open_by_address[address] += 1
            self._counted_address = address
        await super().connect()

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        principal = self.scope.get("principal")
        if principal is not None and principal.via == "public_key":
            operator_id = principal.operator.pk
            if _open_by_public_key[operator_id] >= settings.GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY:
                self._refusal = TOO_MANY_CONNECTIONS  # the protocol handler's close carries it
                raise ConnectionRejectionError({"reason": TOO_MANY_CONNECTIONS[1]})
            _open_by_public_key[operator_id] += 1
            self._counted_public_key = operator_id
        return await super().on_ws_connect(context)

    async def close(self, code: Any = None, reason: str | None = None) -> None:
        if self._refusal is not None:
            code, reason = self._refusal
        await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        if self._counted_address is not None:
            _release(_open_by_address, self._counted_address)
            self._counted_address = None
        if self._counted_public_key is not None:
            _release(_open_by_public_key, self._counted_public_key)
            self._counted_public_key = None
        if getattr(self, "run_task", None) is None:  # refused at the handshake: nothing runs
            return
        await super().disconnect(code)
