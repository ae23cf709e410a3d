"""The RouterOS simulator inside the server process: one per process, for the demo router.

``project.asgi`` calls :func:`start_router_simulator` when simulators are on (and
``ROUTEROS_SIMULATOR_AUTOSTART``, default: on with them): it listens on
``127.0.0.1:ROUTEROS_SIMULATOR_PORT`` with the API login ``seed_demo`` gives the demo router, so the
activation jobs of this process (or of any process on this machine) put paid customers on it, and
``/simulator/router/`` shows its tables. A port already taken (a second server, another demo) is a
warning, not a crash: the server runs without its own simulator.

Like the IntaSend simulator, it keeps its state in memory: a restart starts with an empty router
(customers already paid for are not re-created on it; the demo is for watching new payments).
"""

from __future__ import annotations

import logging
import threading

from network.simulator.server import RouterOSSimulator

logger = logging.getLogger(__name__)

# The demo router's API login (billing/management/commands/seed_demo.py registers the same).
USERNAME = "admin"
PASSWORD = "demo-router-pass"
IDENTITY = "CloudPilot demo router"
MAX_RECORDED_COMMANDS = 200

_lock = threading.Lock()
_simulator: RouterOSSimulator | None = None
_start_error: str | None = None


def start_router_simulator(*, port: int | None = None, host: str = "127.0.0.1") -> RouterOSSimulator | None:
    """Start this process's simulator once (later calls return the same one).

    Returns None, after logging a warning, when the port cannot be bound.
    """
    global _simulator, _start_error
    from django.conf import settings

    with _lock:
        if _simulator is not None:
            return _simulator
        if _start_error is not None:
            return None
        bind_port = settings.ROUTEROS_SIMULATOR_PORT if port is None else port
        simulator = RouterOSSimulator(
            username=USERNAME,
            password=PASSWORD,
            identity=IDENTITY,
            version="7.16.2 (stable)",
            board="CHR (simulated)",
            bind_host=host,
            bind_port=bind_port,
            max_commands=MAX_RECORDED_COMMANDS,
        )
        try:
            simulator.start()
        except OSError as error:
            _start_error = f"{host}:{bind_port}: {error.strerror or error}"
            logger.warning(
                "RouterOS simulator not started: cannot listen on %s:%s (%s); "
                "the demo router is unreachable from this process",
                host,
                bind_port,
                error.strerror or error,
            )
            return None
        _simulator = simulator
        logger.info("RouterOS simulator listening on %s:%s (API user %r)", host, simulator.port, USERNAME)
        return simulator


def router_simulator() -> RouterOSSimulator | None:
    """This process's simulator, or None when it is not running."""
    return _simulator


def start_error() -> str | None:
    """Why the simulator did not start (the address and the OS error), if it tried and failed."""
    return _start_error


def stop_router_simulator() -> None:
    """Stop and forget the simulator (tests); the next start binds again."""
    global _simulator, _start_error
    with _lock:
        simulator, _simulator, _start_error = _simulator, None, None
    if simulator is not None:
        simulator.stop()
