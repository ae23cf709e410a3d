"""Issue 14 item 5: autobahn's per-socket debug line is no longer pretty-printed when it is not logged."""

from __future__ import annotations

import txaio
from autobahn.websocket import protocol

from project.autobahn_debug_lines import NOT_FORMATTED


def test_autobahn_formats_its_debug_lines_only_when_debug_is_logged():
    import project.asgi  # noqa: F401  (the server installs the change)

    settings = [("openHandshakeTimeout", 5), ("autoPingInterval", 20)]
    assert txaio.get_global_log_level() == "info"  # as daphne leaves it
    assert protocol.pformat(settings) == NOT_FORMATTED
    txaio.set_global_log_level("debug")
    try:
        assert protocol.pformat(settings) == "[('openHandshakeTimeout', 5), ('autoPingInterval', 20)]"
    finally:
        txaio.set_global_log_level("info")
