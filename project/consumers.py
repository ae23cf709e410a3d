"""GraphQL over WebSockets: the caller is identified once, from the `connection_init` payload."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError

from billing.notifications import CHANNEL_LAYER_ERRORS, raise_if_cancelling
from project.auth import has_credentials, principal_from_credentials

logger = logging.getLogger(__name__)


class GraphQLConsumer(GraphQLWSConsumer):
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

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        """Browsers cannot set headers on a WebSocket, so credentials come in the init payload;
        other clients may send them as handshake headers instead. Bad or none: close with 4403."""
        params = context.get("connection_params")
        credentials = params if isinstance(params, dict) and has_credentials(params) else self._header_credentials()
        principal = await sync_to_async(principal_from_credentials)(credentials) if credentials else None
        if principal is None:
            raise ConnectionRejectionError({"reason": "Invalid or missing credentials"})
        self.scope["principal"] = principal
        return await super().on_ws_connect(context)

    def _header_credentials(self) -> dict[str, str]:
        headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in self.scope["headers"]}
        return {name: headers[name] for name in ("authorization", "x-public-key") if name in headers}
