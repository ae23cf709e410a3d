"""Found from outside: portals that subscribed to their payment and then went away (a tab closed, a
phone lost its signal) made the server log `ERROR asyncio Task exception was never retrieved ...
RuntimeError('aclose(): asynchronous generator is already running')`. A client leaving is not a
fault of the server: its logs must stay free of ERROR lines and tracebacks.

The error came from the garbage collector finalizing a subscription's abandoned async generators
all at once, so the servers here collect garbage every few tenths of a second (as a busy server
does all the time), and use Redis, whose group cleanup awaits.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
import requests
from websockets.sync.client import ClientConnection, connect

from tests.documents import INITIATE
from tests.e2e.test_live_updates import OPERATOR_SUBSCRIBE, SUBSCRIBE, complete_at_intasend, initiate_over_http
from tests.live import Daphne, base_env, running, scratch_redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SOCKETS = 10
# Long enough for the server to collect the closed subscriptions and run their finalizers.
SETTLE_SECONDS = 2.0
COLLECTING_GARBAGE = """
import gc, threading, time

def _collect():
    while True:
        time.sleep(0.2)
        gc.collect()

threading.Thread(target=_collect, daemon=True).start()
"""


@contextmanager
def server_collecting_garbage(shop, tmp_path: Path) -> Iterator[Daphne]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(COLLECTING_GARBAGE)
    redis.Redis.from_url(scratch_redis_url()).flushdb()
    env = base_env(
        tmp_path,
        INTASEND_API_BASE_URL=shop.intasend.base_url,
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=scratch_redis_url(),
        PYTHONPATH=str(tmp_path / "site"),
    )
    server = Daphne(env, tmp_path)
    with running(server):
        server.wait_healthy()
        yield server


def subscribe(stack: ExitStack, server: Daphne, credentials: dict, protocol: str, query: str, variables: dict):
    ws = stack.enter_context(connect(server.ws_url, subprotocols=[protocol], open_timeout=10))
    ws.send(json.dumps({"type": "connection_init", "payload": credentials}))
    assert receive(ws)["type"] == "connection_ack"
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": query, "variables": variables}}))
    return ws


def receive(ws: ClientConnection) -> dict:
    while True:
        frame = json.loads(ws.recv(timeout=10))
        if frame["type"] not in ("ping", "ka"):
            return frame


def first_result(ws: ClientConnection) -> None:
    frame = receive(ws)
    assert frame["type"] in ("next", "data") and not frame["payload"].get("errors"), frame


def leave(sockets: list[ClientConnection]) -> None:
    """A third close cleanly, a third complete their operation first, a third vanish (TCP reset)."""
    for index, ws in enumerate(sockets):
        if index % 3 == 0:
            raw: socket.socket = ws.socket
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            raw.close()
            continue
        if index % 3 == 1:
            ws.send(json.dumps({"id": "1", "type": "complete" if "transport" in ws.subprotocol else "stop"}))
        ws.close()


def assert_quiet(server: Daphne) -> None:
    output = server.output()
    offending = [line for line in output.splitlines() if " ERROR " in line or line.startswith("ERROR")]
    assert not offending and "Traceback" not in output, output[-6000:]


def leave_at_every_moment(
    server: Daphne, open_one: Callable[[ExitStack], ClientConnection], change: Callable[[], None]
) -> None:
    """Sockets leave while their first read is under way (at a few moments), after their first
    result, and while they read a change."""
    for stay in (0.0, 0.005, 0.01, 0.02, 0.05, None, "change"):
        with ExitStack() as stack:
            sockets = [open_one(stack) for _ in range(SOCKETS)]
            if stay is None or stay == "change":
                for ws in sockets:
                    first_result(ws)
                time.sleep(1.0)  # the reported clients stayed about a second
                if stay == "change":
                    change()
            else:
                time.sleep(stay)
            leave(sockets)
    time.sleep(SETTLE_SECONDS)
    assert server.popen.poll() is None
    assert_quiet(server)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_portals_leaving_their_payment_updates_log_no_error(shop, tmp_path, protocol):
    with server_collecting_garbage(shop, tmp_path) as server:
        payment = initiate_over_http(server, shop)
        credentials = {"X-Public-Key": shop.operator.public_key}
        variables = {"id": payment["id"], "secret": payment["clientSecret"]}
        leave_at_every_moment(
            server,
            lambda stack: subscribe(stack, server, credentials, protocol, SUBSCRIBE, variables),
            # Paid: every portal wakes up and reads the payment (which still awaits its activation).
            lambda: complete_at_intasend(shop, payment, f"{server.url}/payments/webhook/"),
        )


def test_dashboards_leaving_operator_updates_log_no_error(shop, tmp_path):
    with server_collecting_garbage(shop, tmp_path) as server:
        credentials = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
        with ExitStack() as stack:
            sockets = [
                subscribe(stack, server, credentials, "graphql-transport-ws", OPERATOR_SUBSCRIBE, {})
                for _ in range(SOCKETS)
            ]
            time.sleep(0.5)  # let the subscriptions join their operator's group
            initiate_over_http(server, shop)  # the operator stream's first result is a change
            for ws in sockets:
                first_result(ws)
            time.sleep(1.0)
            # Each payment that changes wakes every dashboard: they leave while reading it.
            another_buyer = requests.post(
                f"{server.url}/graphql/",
                json={"query": INITIATE, "variables": {"input": shop.payment_input(phoneNumber="0712345679")}},
                headers={"X-Public-Key": shop.operator.public_key},
                timeout=10,
            )
            assert another_buyer.json()["data"]["initiatePayment"]["errors"] == []
            leave(sockets)
        time.sleep(SETTLE_SECONDS)
        assert server.popen.poll() is None
        assert_quiet(server)
