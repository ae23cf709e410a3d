"""GraphQL over WebSockets: the caller is identified once, from the `connection_init` payload."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL

from billing.notifications import CHANNEL_LAYER_ERRORS, raise_if_cancelling
from project import metrics, safe_json
from project.auth import CREDENTIALS_REVOKED, credentials_group, has_credentials
from project.db_threads import NoConnectionCleanupPerMessage
from project.errors import ErrorCode
from project.socket_caps import SocketCaps
from project.socket_credentials import socket_credentials_still_valid, socket_principal
from project.ws_pacing import subscribe_turn

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = (4403, "Invalid or missing credentials")


class GraphQLConsumer(SocketCaps, NoConnectionCleanupPerMessage, GraphQLWSConsumer):
    # Channels reads this connection's channel in a loop and lets any error end the consumer,
    # closing the socket with 1011. A Redis restart must not cut every portal off: keep the
    # socket, retry the read with backoff (subscriptions poll the database meanwhile).
    @property
    def channel_receive(self):
        return self._receive_surviving_layer_outages

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._layer_receive = receive

    async def _receive_surviving_layer_outages(self) -> dict:
        delay = 0.2
        while True:
            try:
                return await self._layer_receive()
            except CHANNEL_LAYER_ERRORS as exc:
                raise_if_cancelling(exc)
                logger.warning("Channel layer read failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def decode_json(self, data: str | bytes) -> object:
        # The same refusals as over HTTP (NaN, absurd nesting, NUL, lone surrogates): an UnsafeJSON is
        # a JSONDecodeError, so the protocol handler answers it as a frame that is not JSON.
        return safe_json.loads(data)

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        """Browsers cannot set headers on a WebSocket, so credentials come in the init payload;
        other clients may send them as handshake headers instead. Bad or none: close with 4403."""
        params = context.get("connection_params")
        credentials = params if isinstance(params, dict) and has_credentials(params) else self._header_credentials()
        # Off the thread every HTTP request waits for, and batched: thousands of sockets connect at once.
        principal = await socket_principal(credentials) if credentials else None
        if principal is None:
            # The legacy protocol's handler closes a rejection with 1011, which daphne refuses to
            # send (the socket stayed open): both protocols close with 4403 (SocketCaps.close).
            self._refusal = BAD_CREDENTIALS
            raise ConnectionRejectionError({"reason": BAD_CREDENTIALS[1]})
        self.scope["principal"] = principal
        await self._watch_credentials(principal)
        accepted = await super().on_ws_connect(context)
        metrics.socket_opened(self)
        return accepted

    # --- Credentials revoked while the socket is open (rotatePublicKey, revokeTokens, a password
    # change): a hint on the operator's credentials group closes the socket at once, and every new
    # subscription checks the credentials first, in case the hint was lost.

    async def _watch_credentials(self, principal) -> None:
        try:
            await self.channel_layer.group_add(credentials_group(principal.operator.pk), self.channel_name)
            self._credentials_group = credentials_group(principal.operator.pk)
        except CHANNEL_LAYER_ERRORS as exc:
            raise_if_cancelling(exc)
            logger.warning("Channel layer unavailable (%s): credentials checked per subscription only", exc)

    async def dispatch(self, message: dict) -> None:
        if message.get("type") == CREDENTIALS_REVOKED:
            principal = self.scope.get("principal")
            if principal is not None and principal.via == message.get("via"):
                await self.close(code=4403, reason="Credentials revoked")
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        principal = self.scope.get("principal")
        if principal is not None and text_data and ('"subscribe"' in text_data or '"start"' in text_data):
            try:
                frame = json.loads(text_data)
                starts = frame.get("type") in ("subscribe", "start")
            except (ValueError, AttributeError):
                starts = False  # the protocol handler answers malformed frames
            # Before strawberry parses and validates it: one address's flood waits its turn.
            if starts and not await subscribe_turn(self.scope.get("client_address")):
                await self._refuse_subscription(frame)
                return
            # At most one indexed read a second per socket (a flood of frames costs no more).
            if starts and time.monotonic() - getattr(self, "_credentials_checked_at", 0.0) >= 1.0:
                if not await socket_credentials_still_valid(principal):
                    await self.close(code=4403, reason="Credentials expired or revoked")
                    return
                self._credentials_checked_at = time.monotonic()
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def _refuse_subscription(self, frame: dict) -> None:
        """Answer a subscription its address may not start now, as the protocol answers an operation
        that failed: the client may try again later (the portal falls back to polling)."""
        message = "Too many subscriptions started; try again shortly."
        error = {"message": message, "extensions": {"code": ErrorCode.RATE_LIMITED.value}}
        modern = await self.pick_websocket_subprotocol(self) != GRAPHQL_WS_PROTOCOL
        # graphql-transport-ws sends a list of errors, the legacy graphql-ws protocol one error.
        await self.send(json.dumps({"id": frame.get("id"), "type": "error", "payload": [error] if modern else error}))

    async def disconnect(self, code: int) -> None:
        group = getattr(self, "_credentials_group", None)
        if group is not None:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except CHANNEL_LAYER_ERRORS as exc:
                raise_if_cancelling(exc)
        try:
            await super().disconnect(code)
        finally:
            metrics.socket_closed(self)

    @asynccontextmanager
    async def listen_to_channel(
        self, type: str, *, timeout: float | None = None, groups: Sequence[str] = ()
    ) -> AsyncIterator[Any]:
        """Every subscription listens here (billing.subscriptions) while it runs: count it meanwhile."""
        async with super().listen_to_channel(type, timeout=timeout, groups=groups) as messages:
            with metrics.subscription_listening():
                yield messages

    def _header_credentials(self) -> dict[str, str]:
        headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in self.scope["headers"]}
        return {name: headers[name] for name in ("authorization", "x-public-key") if name in headers}
