"""GraphQL over WebSockets: the caller is identified once, from the `connection_init` payload."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError

from project.auth import has_credentials, principal_from_credentials


class GraphQLConsumer(GraphQLWSConsumer):
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
