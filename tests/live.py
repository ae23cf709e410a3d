"""Running the real thing for end-to-end tests: daphne (and Huey) processes, and a WebSocket client.

The processes use the test database of the current pytest run (tests that use them must commit:
`django_db(transaction=True)`), so tests arrange data with the ORM and watch the system work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from django.db import connection
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_redis_url() -> str:
    """A Redis database for tests that start their own scaled-out servers (each flushes it first).

    Its own per suite run (TEST_SCRATCH_REDIS_DB, default 7): .ci/run runs passes side by side, and
    two of them sharing a database would share task queues and channel groups.
    """
    return f"redis://127.0.0.1:6379/{os.environ.get('TEST_SCRATCH_REDIS_DB', '7')}"


def test_database_url() -> str:
    """DATABASE_URL of the database this pytest run created (so child processes see our rows)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    host, port = settings.get("HOST") or "127.0.0.1", settings.get("PORT") or 5432
    user = settings.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


class Process:
    """A child process whose output goes to a log file (shown when something fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        """Until the process has written `text` (a worker starting up, say, on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} never wrote {text!r}:\n{self.output()}")
            time.sleep(0.1)


def base_env(log_dir: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DATABASE_URL=test_database_url(),
        DEBUG="1",
        HUEY_SQLITE_PATH=str(log_dir / "huey.sqlite3"),
        PYTHONUNBUFFERED="1",
        # Test servers run the RouterOS simulator only when a test asks (ROUTEROS_SIMULATOR_AUTOSTART=1
        # and a free ROUTEROS_SIMULATOR_PORT): never on the demo's fixed port.
        ROUTEROS_SIMULATOR_AUTOSTART="0",
        # The tests' fake routers listen on loopback, which a real installation refuses.
        ROUTER_ALLOWED_NETWORKS="127.0.0.1/32",
    )
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


class Daphne(Process):
    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "daphne") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"]
        super().__init__(name, argv, env, log_dir)

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} never became healthy:\n{self.output()}")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql/"


class HueyWorker(Process):
    def __init__(self, env: dict[str, str], log_dir: Path, *, periodic: bool = True, name: str = "huey") -> None:
        argv = [sys.executable, "manage.py", "run_huey", "--workers", "2", "--worker-type", "thread"]
        if not periodic:
            argv.append("--no-periodic")
        # Workers run as README's "Running scaled out" says: connections kept across jobs.
        super().__init__(name, argv, {"DATABASE_CONN_MAX_AGE": "60", **env}, log_dir)


@contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for process in processes:
            sys.stderr.write(f"\n----- {process.name} log -----\n{process.output()[-6000:]}\n")
        raise
    finally:
        for process in processes:
            process.stop()


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over a real WebSocket (the `websockets` library)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @contextmanager
    def connect(
        cls, url: str, payload: dict[str, Any] | None = None, *, origin: str | None = None, timeout: float = 10
    ) -> Iterator[GraphQLWebSocket]:
        headers = {"Origin": origin} if origin else None
        with connect(
            url, subprotocols=["graphql-transport-ws"], additional_headers=headers, open_timeout=timeout
        ) as ws:
            client = cls(ws)
            ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
            ack = client.receive(timeout)
            assert ack["type"] == "connection_ack", ack
            yield client

    def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(self.ws.recv(timeout=timeout))
            if message["type"] == "ping":
                self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
            )
        )
        return operation_id

    def next_data(self, timeout: float = 10) -> dict[str, Any]:
        message = self.receive(timeout)
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]
