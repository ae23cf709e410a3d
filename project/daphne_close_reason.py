"""Let daphne send the close reason an ASGI app gives.

ASGI's `websocket.close` carries a `reason` since spec 2.3, and Channels passes it on, but daphne
4.2 closes with the code alone: a client refused with 4403 learnt nothing of why (API.md
"Subscriptions": bad credentials close with 4403 *and a reason*). This replaces only the close
of an open socket; everything else is daphne's own handling.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol

_daphne_handle_reply = WebSocketProtocol.handle_reply


def _handle_reply_keeping_reason(self: WebSocketProtocol, message: dict) -> None:
    if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
        # Autobahn limits a close reason to 123 bytes of UTF-8; ours are short fixed texts.
        reason = (message.get("reason") or "")[:120] or None
        self.sendClose(code=message.get("code") or 1000, reason=reason)
        return
    _daphne_handle_reply(self, message)


def install() -> None:
    WebSocketProtocol.handle_reply = _handle_reply_keeping_reason
