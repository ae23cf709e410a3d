"""Issue 14 item 2: a closed WebSocket's protocol (and the transport, queue and autobahn state it holds)
is not left in a reference cycle: autobahn resolves `is_closed` with the protocol itself."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from project import daphne_closed_protocol


def _closed_protocol() -> WebSocketProtocol:
    server = SimpleNamespace(protocol_disconnected=lambda protocol: None, log_action=lambda *args: None)
    factory = WebSocketFactory(server, server="Daphne")
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    protocol.server = server
    protocol.request = SimpleNamespace(path="/graphql/")
    protocol.client_addr = ["127.0.0.1", 50000]
    protocol.makeConnection(StringTransport())
    protocol.connectionLost(Failure(ConnectionDone()))
    return protocol


def _left_in_a_cycle() -> bool:
    """Whether a closed protocol outlives its last reference (only the cyclic collector would free it)."""
    gc.collect()
    gc.disable()
    try:
        alive = weakref.ref(_closed_protocol())
        return alive() is not None
    finally:
        gc.enable()


def test_autobahn_resolves_is_closed_with_the_protocol_itself(monkeypatch):
    """The library behaviour the change relies on: without it, a closed protocol sits in a cycle."""
    monkeypatch.setattr(WebSocketProtocol, "connectionLost", daphne_closed_protocol._autobahn_connection_lost)
    protocol = _closed_protocol()
    assert protocol.state == WebSocketProtocol.STATE_CLOSED
    assert protocol.is_closed.called and protocol.is_closed.result is protocol
    assert _left_in_a_cycle()


def test_a_closed_protocol_is_freed_by_reference_counting():
    import project.asgi  # noqa: F401  (the server installs the change)

    protocol = _closed_protocol()
    assert not hasattr(protocol, "is_closed")
    assert not _left_in_a_cycle()
