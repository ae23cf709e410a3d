"""Issue 14 item 4: once a WebSocket is open, twisted's HTTPChannel no longer holds the upgrade request."""

from __future__ import annotations

from types import SimpleNamespace

from daphne.ws_protocol import WebSocketProtocol
from twisted.web.http import HTTPChannel


def test_an_open_socket_lets_the_http_channel_forget_its_upgrade_request():
    import project.asgi  # noqa: F401  (the server installs the change)

    channel = HTTPChannel()
    channel.requests = [object()]  # the WebRequest daphne upgraded
    logged = []
    protocol = WebSocketProtocol.__new__(WebSocketProtocol)
    protocol.transport = SimpleNamespace(producer=channel)
    protocol.request = SimpleNamespace(path="/graphql/")
    protocol.client_addr = ["127.0.0.1", 50000]
    protocol.server = SimpleNamespace(log_action=lambda *args: logged.append(args))

    protocol.onOpen()

    assert channel.requests == []
    # daphne's own onOpen still ran
    assert logged == [("websocket", "connected", {"path": "/graphql/", "client": "127.0.0.1:50000"})]


def test_a_transport_without_an_http_channel_is_left_alone():
    import project.asgi  # noqa: F401

    protocol = WebSocketProtocol.__new__(WebSocketProtocol)
    protocol.transport = SimpleNamespace(producer=None)
    protocol.request = SimpleNamespace(path="/graphql/")
    protocol.client_addr = None
    protocol.server = SimpleNamespace(log_action=lambda *args: None)
    protocol.onOpen()
