"""Let autobahn skip formatting debug lines nobody logs.

autobahn (daphne's WebSocket layer) builds a debug line for every new socket with `pprint.pformat`
of its ~30 settings, *before* the logger drops it (daphne never turns autobahn's debug level on):
in a reconnect storm of 10,000 portals that was 8% of the server's CPU (issue 14 item 5, py-spy).
Its module's `pformat` is only called for debug lines, and for a `Timings.__str__` that exists only
with timing tracking, which daphne never enables: it now formats only when txaio logs debug lines.
"""

from __future__ import annotations

import pprint

import txaio
from autobahn.websocket import protocol as autobahn_protocol

NOT_FORMATTED = "(not formatted: autobahn debug logging is off)"


def _pformat_if_logged(obj: object, *args, **kwargs) -> str:
    if txaio.get_global_log_level() in ("debug", "trace"):
        return pprint.pformat(obj, *args, **kwargs)
    return NOT_FORMATTED


def install() -> None:
    autobahn_protocol.pformat = _pformat_if_logged
