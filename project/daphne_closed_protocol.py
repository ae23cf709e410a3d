"""A closed WebSocket's protocol is freed by reference counting, not left to the cyclic collector
(issue 14 item 2).

autobahn resolves a protocol's `is_closed` Deferred with the protocol itself, so every closed
socket left a cycle (protocol -> `is_closed` -> its result, the protocol) holding the protocol, its
twisted transport, daphne's queue and autobahn's per-socket state: ~30 objects that, frozen by
project.gc_tuning, waited for the frozen generation's walk and made it longer. Once autobahn has
handled the lost connection, `is_closed` has fired, its callbacks have run and autobahn never
resolves it again (the protocol is CLOSED); daphne never reads it. So the protocol drops it: a
later reader gets an AttributeError, not a silently different value.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

_autobahn_connection_lost = WebSocketProtocol.connectionLost


def _connection_lost_forgetting_is_closed(self: WebSocketProtocol, reason: Failure = connectionDone) -> None:
    _autobahn_connection_lost(self, reason)
    if getattr(self, "is_closed", None) is not None and self.is_closed.called:
        del self.is_closed


def install() -> None:
    WebSocketProtocol.connectionLost = _connection_lost_forgetting_is_closed
