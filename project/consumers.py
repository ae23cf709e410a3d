"""GraphQL over WebSockets: the caller is identified once, from the `connection_init` payload."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from autobahn.exception import Disconnected
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from project import metrics, safe_json
from project.auth import CREDENTIALS_REVOKED, credentials_group, has_credentials
from project.daphne_app_queue import CLIENT_FRAMES
from project.db_threads import NoConnectionCleanupPerMessage
from project.errors import ErrorCode
from project.frame_queue import FrameQueue
from project.live_hub import LiveHub
from project.socket_caps import SocketCaps, rejection
from project.socket_credentials import socket_credentials_still_valid, socket_principal
from project.ws_pacing import subscribe_turn

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = (4403, "Invalid or missing credentials")

# The last frame `receive` decoded and passed on, with its text: strawberry decodes every frame again
# (decode_json), and gets this instead when it asks for that very text object. One slot for the
# process, not one per socket: an attribute would be one more entry in every idle consumer's dict.
_last_decoded: list[tuple[str, object] | None] = [None]


class _OperationLimit:
    """strawberry answers an operation past GRAPHQL_WS_MAX_SUBSCRIPTIONS with an error that has no
    code; the error contract gives every error one (RATE_LIMITED: end one, or open another socket).
    Its own checks that come first (not acknowledged: 4401, an id in use: 4409 or a replacement)
    stay its own."""

    async def _refused_past_limit(self, operation_id: str, running: dict) -> bool:
        limit = self.max_subscriptions_per_connection
        if not self.connection_acknowledged or operation_id in running or limit is None or len(running) < limit:
            return False
        message = f"Subscription limit reached: at most {limit} operations at once on one socket"
        await self.view._send_error(operation_id, message, ErrorCode.RATE_LIMITED)
        return True


class _TransportWSHandler(_OperationLimit, BaseGraphQLTransportWSHandler):
    async def handle_subscribe(self, message) -> None:
        if not await self._refused_past_limit(message["id"], self.operations):
            await super().handle_subscribe(message)


class _LegacyWSHandler(_OperationLimit, BaseGraphQLWSHandler):
    """The operation limit's code for graphql-ws too (a `start` with an id in use replaces that
    operation), and what graphql-transport-ws does about a connection_init that never comes or comes
    twice."""

    _init_received = False

    async def handle(self) -> None:
        """strawberry's graphql-ws handler waited for ever for a connection_init: sockets that never
        authenticate were held open for nothing (red team). Closed after the same wait as
        graphql-transport-ws (connection_init_wait_timeout), with its code."""
        timer = asyncio.get_running_loop().call_later(
            self.view.connection_init_wait_timeout.total_seconds(), self._close_if_never_initialised
        )
        try:
            await super().handle()
        finally:
            timer.cancel()

    def _close_if_never_initialised(self) -> None:
        if not self._init_received:
            reason = "Connection initialisation timeout"
            self._closing = asyncio.ensure_future(self.websocket.close(code=4408, reason=reason))

    async def handle_message(self, message) -> None:
        """A frame of no type graphql-ws knows was ignored without a word: answered, as the
        protocol's servers did, with an error frame (no id), coded like every error."""
        if message.get("type") not in _LEGACY_CLIENT_TYPES:
            await self.view._send_error(None, "Invalid message: unknown type", ErrorCode.INVALID_INPUT)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message) -> None:
        """strawberry's graphql-ws ran a second init: any public key (each portal page has one)
        swapped the socket's principal and joined a second credentials group, of which only the
        last was left on close, so the socket was never freed (red team, issue 14). Refused as
        graphql-transport-ws refuses it."""
        if self.connection_acknowledged:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._init_received = True
        await super().handle_connection_init(message)

    async def handle_start(self, message) -> None:
        if not await self._refused_past_limit(message["id"], self.tasks):
            await super().handle_start(message)


class GraphQLConsumer(SocketCaps, NoConnectionCleanupPerMessage, GraphQLWSConsumer):
    # No channel-layer channel of its own, nor a task reading it: hints for the socket's
    # subscriptions and its credentials reach it through the process's one channel
    # (project.live_hub), which also survives a Redis restart. That reader was a good part of what
    # an idle socket cost (issue 14).
    channel_layer_alias = None
    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message_queue = FrameQueue()  # type: ignore[assignment]

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        try:
            await super().send(text_data, bytes_data, close)
        except Disconnected:
            # The client left while a result was on its way (its disconnect is still queued for us):
            # nothing to deliver, and no fault of ours to log.
            pass

    def decode_json(self, data: str | bytes) -> object:
        decoded = _last_decoded[0]
        if decoded is not None and decoded[0] is data:
            _last_decoded[0] = None
            return decoded[1]
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
            raise ConnectionRejectionError(rejection(BAD_CREDENTIALS[1], ErrorCode.UNAUTHENTICATED))
        self.scope["principal"] = principal
        await self._watch_credentials(principal)
        accepted = await super().on_ws_connect(context)
        metrics.socket_opened(self)
        return accepted

    # --- Credentials revoked while the socket is open (rotatePublicKey, revokeTokens, a password
    # change): a hint on the operator's credentials group closes the socket at once, and every new
    # subscription checks the credentials first, in case the hint was lost.

    async def _watch_credentials(self, principal) -> None:
        self._credentials_group = credentials_group(principal.operator.pk)
        await LiveHub.here().join(self._credentials_group, self._credentials_hint)

    def _credentials_hint(self, message: dict) -> None:
        principal = self.scope.get("principal")
        if message.get("type") == CREDENTIALS_REVOKED and principal is not None and principal.via == message.get("via"):
            self._closing = asyncio.ensure_future(self.close(code=4403, reason="Credentials revoked"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        principal = self.scope.get("principal")
        frame = None
        if text_data:
            try:
                frame = safe_json.loads(text_data)
            except ValueError:
                # graphql-transport-ws's handler closes the socket with 4400; graphql-ws's said nothing
                if await self.pick_websocket_subprotocol(self) == GRAPHQL_WS_PROTOCOL:
                    await self._send_error(None, "Invalid message: not JSON", ErrorCode.INVALID_INPUT)
                    return
            else:
                if problem := _malformed(frame, acknowledged=principal is not None):
                    await self._refuse_malformed(frame, problem)
                    return
        if principal is not None and frame is not None:
            starts = frame.get("type") in _STARTS
            # Before strawberry parses and validates it: one address's flood waits its turn.
            if starts:
                turn = await subscribe_turn(self.scope.get("client_address"), self.scope.get(CLIENT_FRAMES))
                if turn is None:  # the client left while the frame waited: its disconnect comes next
                    return
                if not turn:
                    await self._refuse_subscription(frame)
                    return
            # At most one indexed read a second per socket (a flood of frames costs no more).
            if starts and time.monotonic() - getattr(self, "_credentials_checked_at", 0.0) >= 1.0:
                if not await socket_credentials_still_valid(principal):
                    await self.close(code=4403, reason="Credentials expired or revoked")
                    return
                self._credentials_checked_at = time.monotonic()
        if frame is not None:
            _last_decoded[0] = (text_data, frame)
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def _refuse_malformed(self, frame: object, problem: str) -> None:
        """strawberry's handlers index a frame without checking it: a payload that is not an object,
        a missing id or query, a frame that is a list ended the socket's handler with an ERROR
        traceback and left the socket open, deaf (found from outside). A start the client can tell
        apart by its id gets an error; anything else closes the socket as graphql-transport-ws says."""
        if isinstance(frame, dict) and frame.get("type") in _STARTS and _is_id(frame.get("id")):
            await self._send_error(frame["id"], problem, ErrorCode.INVALID_INPUT)
        else:
            await self.close(code=4400, reason=f"Invalid message: {problem}")

    async def _send_error(self, operation_id: str | None, message: str, code: ErrorCode) -> None:
        error = {"message": message, "extensions": {"code": code.value}}
        modern = await self.pick_websocket_subprotocol(self) != GRAPHQL_WS_PROTOCOL
        # graphql-transport-ws sends a list of errors, the legacy graphql-ws protocol one error.
        await self.send(json.dumps({"id": operation_id, "type": "error", "payload": [error] if modern else error}))

    async def _refuse_subscription(self, frame: dict) -> None:
        """Answer a subscription its address may not start now, as the protocol answers an operation
        that failed: the client may try again later (the portal falls back to polling)."""
        message = "Too many subscriptions started; try again shortly."
        await self._send_error(frame.get("id"), message, ErrorCode.RATE_LIMITED)

    async def disconnect(self, code: int) -> None:
        try:
            await super().disconnect(code)  # waits for the socket's handler to end
        finally:
            # Only now: a handler still checking connection_init's credentials when the client left
            # joined the group after an earlier leave, and kept the consumer in the hub for good.
            group = getattr(self, "_credentials_group", None)
            if group is not None:
                await LiveHub.here().leave(group, self._credentials_hint)
            # strawberry's run task returns the consumer itself: kept, that finished task and the
            # consumer are a cycle holding the socket (~40 KiB), frozen until the frozen generation is
            # walked, only while few sockets are open (project.gc_tuning). Dropped, it goes by refcount.
            self.run_task = None
            metrics.socket_closed(self)

    def _header_credentials(self) -> dict[str, str]:
        headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in self.scope["headers"]}
        return {name: headers[name] for name in ("authorization", "x-public-key") if name in headers}


_STARTS = ("subscribe", "start")
_LEGACY_CLIENT_TYPES = ("connection_init", "start", "stop", "connection_terminate")
_ENDS = ("complete", "stop")


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _malformed(frame: object, *, acknowledged: bool) -> str | None:
    """What is wrong with a frame's shape, for the frames strawberry reads fields of. Before the
    connection is acknowledged strawberry refuses any start unread (4401), as the protocols say."""
    if not isinstance(frame, dict):
        return "a message is a JSON object"
    kind = frame.get("type")
    if kind in _ENDS and not _is_id(frame.get("id")):
        return f"{kind} needs the operation's id"
    if kind not in _STARTS or not acknowledged:
        return None
    if not _is_id(frame.get("id")):
        return f"{kind} needs an id (a non-empty string)"
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        return "payload is an object with the operation"
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        return "payload.query is the operation's document (a non-empty string)"
    for name, kinds in (("operationName", str), ("variables", dict), ("extensions", dict)):
        if payload.get(name) is not None and not isinstance(payload[name], kinds):
            return f"payload.{name} is {'a string' if kinds is str else 'an object'} or null"
    return None
