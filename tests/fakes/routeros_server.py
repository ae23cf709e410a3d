"""A loopback RouterOS router for tests: the simulator shipped in the product, on a random port.

The server, the wire protocol and the hotspot tables live in ``network.simulator.server`` (the app runs
the same simulator for the demo, see ``network.simulator.runtime``). ``FakeRouterOS`` is that
simulator, started on 127.0.0.1 with a random port for each test::

    with FakeRouterOS(username="api", password="s3cret") as router:
        ...connect to 127.0.0.1:router.port...
        router.table("/ip/hotspot/user")  # snapshot, list of dicts with ".id"

Test controls are plain methods: ``set_down``, ``set_unresponsive``, ``drop_next``, ``trap_next``,
``fatal_next``, ``on_next``, ``fail_hotspot_logins``, ``seed_session``, ``seed_row``, ``commands``.
"""

from __future__ import annotations

from network.simulator.server import (
    ACTIVE,
    COOKIE,
    HOTSPOT_LOGIN_FAILED,
    HOTSPOT_NO_MORE_SESSIONS,
    LOGIN_FAILED_LEGACY,
    LOGIN_FAILED_PLAINTEXT,
    PROFILE,
    TABLE_PATHS,
    USER,
    ProtocolError,
    RecordedCommand,
    RouterOSSimulator,
    decode_length,
    encode_length,
    encode_sentence,
)

__all__ = [
    "ACTIVE",
    "COOKIE",
    "HOTSPOT_LOGIN_FAILED",
    "HOTSPOT_NO_MORE_SESSIONS",
    "LOGIN_FAILED_LEGACY",
    "LOGIN_FAILED_PLAINTEXT",
    "PROFILE",
    "TABLE_PATHS",
    "USER",
    "FakeRouterOS",
    "ProtocolError",
    "RecordedCommand",
    "decode_length",
    "encode_length",
    "encode_sentence",
]


class FakeRouterOS(RouterOSSimulator):
    """The RouterOS simulator on 127.0.0.1, a random port, every command recorded (see the module doc)."""
