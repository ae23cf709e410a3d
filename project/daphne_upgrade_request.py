"""Let an open WebSocket forget the HTTP request that upgraded it (~2.7 KiB per idle socket, issue 14 item 4).

daphne hands the TCP transport from twisted's HTTPChannel to its WebSocket protocol, but the
channel stays the transport's registered producer (it pauses reading while the socket cannot
write) and keeps the upgrade's WebRequest in `requests` for the socket's whole life: its header
objects, body buffer, cookies and arguments, none of which is read again (the transport tells the
WebSocket protocol, not the channel, when the connection ends). Once the socket is open the
channel lets go of it; the channel itself keeps its flow-control role.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol
from twisted.web.http import HTTPChannel

_daphne_on_open = WebSocketProtocol.onOpen


def _on_open_forgetting_the_upgrade(self: WebSocketProtocol) -> None:
    channel = getattr(self.transport, "producer", None)
    if isinstance(channel, HTTPChannel):
        channel.requests = []
    _daphne_on_open(self)


def install() -> None:
    WebSocketProtocol.onOpen = _on_open_forgetting_the_upgrade
