"""Issue 9, item 1: a router is not a way into the server's own network (API.md "Routers").

An operator registered "a router" whose host was a Redis on loopback and whose password carried CR/LF
and Redis commands; checkRouterConnection sent them. The same mutation told closed, filtered and
foreign ports apart. Real loopback listeners stand in for the internal services here, and the suite's
usual allowance for loopback routers (tests/conftest.py) is taken away where the test is about it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from network import services
from network.models import Package, Router
from network.routeros import RouterNotAllowed
from tests.fakes.routeros_server import FakeRouterOS

pytestmark = pytest.mark.django_db(transaction=True)

CREATE_ROUTER = """
mutation($input: CreateRouterInput!) { createRouter(input: $input) {
  router { id host hotspotAddress } errors { field code message }
} }
"""
CHECK = """
mutation($id: ID!) { checkRouterConnection(routerId: $id) { ok identity error errors { field code message } } }
"""
ROUTER_USER = "cloudpilot"
ROUTER_PASSWORD = "router-pass-123"
REDIS_COMMANDS = "\r\nSET pwned 1\r\nRPUSH huey.queue payload\r\n"


class Listener:
    """A loopback TCP service that records what it receives: stands in for Redis, an HTTP server, ...

    ``mode``: "redis" answers every line with a Redis error, "http" answers an HTTP 400 and closes,
    "silent" never answers.
    """

    def __init__(self, mode: str = "redis", host: str = "127.0.0.1", port: int = 0) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()
        self.connections = 0
        self.received = b""
        self._lock = threading.Lock()
        self._closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    with self._lock:
                        self.received += data
                    if self.mode == "http":
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n")
                        return
                    if self.mode == "redis":
                        conn.sendall(b"-ERR unknown command\r\n" * max(data.count(b"\n"), 1))
            except OSError:
                return

    def close(self) -> None:
        self._closing = True
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener("redis")
    yield server
    server.close()


@pytest.fixture
def loopback_refused(settings) -> None:
    """A real installation: no loopback allowance, simulators off."""
    settings.ROUTER_ALLOWED_NETWORKS = []
    settings.ROUTER_DENIED_NETWORKS = []
    settings.SIMULATORS_ENABLED = False


@pytest.fixture(autouse=True)
def _quick_routers(settings) -> None:
    settings.ROUTER_API_TIMEOUT_SECONDS = 1


def create_router(gql, operator, **fields) -> dict:
    data = {"name": "Main Street", "host": "203.0.113.10", "username": ROUTER_USER, "password": ROUTER_PASSWORD}
    data.update(fields)
    return gql(CREATE_ROUTER, {"input": data}, **operator.auth)["data"]["createRouter"]


def check(gql, operator, router_id) -> dict:
    return gql(CHECK, {"id": str(router_id)}, **operator.auth)["data"]["checkRouterConnection"]


def stored_before_the_fix(operator, *, host: str, port: int, password: str = ROUTER_PASSWORD, **fields) -> Router:
    """A router row as the old code let it in (no checks): the checks at connection time must hold."""
    router = Router(owner=operator.user, name="Old", host=host, api_port=port, username=ROUTER_USER, **fields)
    router.set_password(password)
    router.save()
    return router


# --- control characters --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "host", "username", "password"])
@pytest.mark.parametrize("bad", ["\r\n", "\x1b", "\x7f"])
def test_router_fields_with_control_characters_are_refused(gql, operator, listener, field, bad):
    fields = {"host": listener.host, "apiPort": listener.port, field: f"x{bad}y"}
    result = create_router(gql, operator, **fields)

    assert result["router"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [(field, "INVALID_INPUT")]
    assert Router.objects.count() == 0


@pytest.mark.parametrize("field", ["name", "host", "username", "password"])
def test_router_fields_with_nul_are_refused_before_the_mutation_runs(gql, operator, listener, field):
    # NUL is refused in every JSON the server reads (project.safe_json): the whole request is a 400.
    data = {"name": "Main Street", "host": listener.host, "apiPort": listener.port, "username": ROUTER_USER}
    data["password"] = ROUTER_PASSWORD
    data[field] = "x\x00y"
    answer = gql(CREATE_ROUTER, {"input": data}, **operator.auth)

    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert Router.objects.count() == 0 and listener.connections == 0


def test_router_password_with_crlf_is_refused(gql, operator, listener):
    # The attack as it was run: loopback Redis, RouterOS login carrying Redis commands.
    result = create_router(gql, operator, host="127.0.0.1", apiPort=listener.port, password="x" + REDIS_COMMANDS)

    assert [(e["field"], e["code"]) for e in result["errors"]] == [("password", "INVALID_INPUT")]
    assert listener.connections == 0 and listener.received == b""


def test_crlf_password_stored_before_the_fix_never_reaches_a_redis_like_listener(gql, operator, listener):
    # Loopback stays allowed here (tests/conftest.py): only the credentials check stands in the way.
    router = stored_before_the_fix(operator, host="127.0.0.1", port=listener.port, password="x" + REDIS_COMMANDS)
    package = Package.objects.create(router=router, name="1 Hour", price="25.00", duration_minutes=60)

    result = check(gql, operator, router.pk)
    with pytest.raises(Exception, match="control characters"):
        services.package_profile_sync(package_id=package.pk)  # the profile-sync job's connection

    assert result["ok"] is False and "control characters" in result["error"]
    time.sleep(0.2)
    assert listener.connections == 0 and listener.received == b""


# --- destinations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.10.0.5",
        "169.254.169.254",  # cloud metadata
        "::ffff:127.0.0.1",  # IPv4-mapped: judged as 127.0.0.1
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "::",
        "::1",
        "fe80::1",
        "224.0.0.251",
        "ff02::1",
        "240.0.0.1",
    ],
)
def test_router_pointing_inside_is_refused_with_router_not_allowed(gql, operator, loopback_refused, host):
    result = create_router(gql, operator, host=host)

    assert result["router"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("host", "ROUTER_NOT_ALLOWED")]


def test_denied_network_is_refused_on_top_of_allowed_ones(gql, operator, loopback_refused, settings):
    settings.ROUTER_DENIED_NETWORKS = ["10.20.0.0/16"]  # where this installation's database and Redis live
    settings.ROUTER_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    for host in ("10.20.1.5", "::ffff:10.20.1.5"):
        result = create_router(gql, operator, host=host)
        assert [(e["field"], e["code"]) for e in result["errors"]] == [("host", "ROUTER_NOT_ALLOWED")], host
    assert create_router(gql, operator, host="10.21.0.1")["errors"] == []
    assert create_router(gql, operator, host="192.168.88.1")["errors"] == []  # a router on a private LAN/VPN


def test_router_allowed_once_is_checked_again_at_every_connection(gql, operator, loopback_refused, listener):
    router = stored_before_the_fix(operator, host="127.0.0.1", port=listener.port)

    result = check(gql, operator, router.pk)

    assert result["ok"] is False
    assert [e["code"] for e in result["errors"]] == ["ROUTER_NOT_ALLOWED"]
    assert listener.connections == 0


def test_hostname_resolving_to_loopback_is_refused_when_stored(gql, operator, loopback_refused):
    # Found from outside: `localhost` (and /etc/hosts names) were stored, only refused when used.
    created = create_router(gql, operator, host="localhost", apiPort=8728)
    assert [(e["field"], e["code"]) for e in created["errors"]] == [("host", "ROUTER_NOT_ALLOWED")]
    assert not Router.objects.filter(host="localhost").exists()


def test_hostname_resolving_to_loopback_is_refused_at_connection_time(gql, operator, loopback_refused):
    with FakeRouterOS(username=ROUTER_USER, password=ROUTER_PASSWORD) as fake:
        # Stored while its name pointed elsewhere: DNS answers change, so every connection checks again.
        router = stored_before_the_fix(operator, host="localhost", port=fake.port)
        package = Package.objects.create(router=router, name="1 Hour", price="25.00", duration_minutes=60)

        result = check(gql, operator, router.pk)
        with pytest.raises(RouterNotAllowed):
            services.package_profile_sync(package_id=package.pk)

        assert [e["code"] for e in result["errors"]] == ["ROUTER_NOT_ALLOWED"]
        assert fake.commands == []


def test_simulator_exception_covers_its_own_port_only(gql, operator, loopback_refused, settings, listener):
    with FakeRouterOS(username=ROUTER_USER, password=ROUTER_PASSWORD, identity="sim") as fake:
        settings.SIMULATORS_ENABLED = True
        settings.ROUTEROS_SIMULATOR_PORT = fake.port

        simulator = create_router(gql, operator, host="127.0.0.1", apiPort=fake.port)
        elsewhere = create_router(gql, operator, host="127.0.0.1", apiPort=listener.port)

        assert simulator["errors"] == []
        assert check(gql, operator, simulator["router"]["id"])["identity"] == "sim"
        assert [e["code"] for e in elsewhere["errors"]] == ["ROUTER_NOT_ALLOWED"]
        settings.SIMULATORS_ENABLED = False
        assert [e["code"] for e in check(gql, operator, simulator["router"]["id"])["errors"]] == ["ROUTER_NOT_ALLOWED"]


def _listeners_on_one_port() -> tuple[Listener, Listener]:
    """A silent listener on 127.0.0.2 and a "redis" one on 127.0.0.1, same port (a port free on the
    first may be taken on the second by another test run: try another)."""
    for _ in range(20):
        allowed = Listener("silent", host="127.0.0.2")
        try:
            return allowed, Listener("redis", host="127.0.0.1", port=allowed.port)
        except OSError:
            allowed.close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_dns_rebinding_cannot_switch_the_checked_address(gql, operator, loopback_refused, settings, monkeypatch):
    # "rebind.example" answers an allowed address (when stored, at the first check), then the internal one.
    allowed, internal = _listeners_on_one_port()
    settings.ROUTER_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_dns(host, port, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            host = "127.0.0.2" if len(lookups) <= 2 else "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    try:
        created = create_router(gql, operator, host="rebind.example", apiPort=allowed.port)
        assert created["errors"] == [] and len(lookups) == 1
        first = check(gql, operator, created["router"]["id"])  # the checked address, resolved once
        assert len(lookups) == 2
        assert allowed.connections == 1 and b"/login" in allowed.received
        assert first["ok"] is False and first["errors"] == []

        second = check(gql, operator, created["router"]["id"])  # the name now points inside: refused
        assert [e["code"] for e in second["errors"]] == ["ROUTER_NOT_ALLOWED"]
        assert len(lookups) == 3
        assert internal.connections == 0 and internal.received == b""
    finally:
        allowed.close()
        internal.close()


# --- what a failed connection tells ------------------------------------------------------------------


def test_closed_http_and_silent_ports_give_the_same_error(gql, operator):
    closed = Listener("silent")
    closed.close()  # nothing listens there any more: connection refused
    services_on_ports = [closed, Listener("http"), Listener("silent"), Listener("redis")]
    try:
        errors = []
        for server in services_on_ports:
            router = stored_before_the_fix(operator, host="127.0.0.1", port=server.port)
            result = check(gql, operator, router.pk)
            assert result["ok"] is False and result["errors"] == []
            errors.append(result["error"].replace(str(server.port), "PORT"))
    finally:
        for server in services_on_ports[1:]:
            server.close()

    assert len(set(errors)) == 1, errors
    assert errors[0] == "Could not connect to router 127.0.0.1:PORT: unreachable, or not a RouterOS API"
    for word in ("refused", "reset", "closed", "timed out", "HTTP", "nginx", "ERR"):
        assert word not in errors[0]


def test_check_router_connection_is_throttled_per_operator(gql, operator, other_operator, settings):
    settings.ROUTER_CHECK_RATE_LIMIT = 3
    mine = stored_before_the_fix(operator, host="127.0.0.1", port=1)
    theirs = stored_before_the_fix(other_operator, host="127.0.0.1", port=1)

    answers = [check(gql, operator, mine.pk) for _ in range(4)]

    assert [a["errors"] for a in answers[:3]] == [[], [], []]
    assert [e["code"] for e in answers[3]["errors"]] == ["RATE_LIMITED"]
    assert check(gql, other_operator, theirs.pk)["errors"] == []  # per operator


# --- the admin ------------------------------------------------------------------------------------


def test_admin_router_form_refuses_control_characters_and_inside_addresses(client, operator, loopback_refused):
    operator.user.is_superuser = operator.user.is_staff = True
    operator.user.save()
    client.force_login(operator.user)
    router = Router(owner=operator.user, name="Main", host="203.0.113.10", api_port=8728, username=ROUTER_USER)
    router.set_password(ROUTER_PASSWORD)
    router.save()
    form = {"name": "Main", "host": "203.0.113.10", "api_port": 8728, "username": ROUTER_USER, "hotspot_address": ""}
    url = f"/admin/network/router/{router.pk}/change/"

    for change in (
        {"username": "admin\r\nSET pwned 1"},
        {"name": "Main\x1bStreet"},
        {"host": "169.254.169.254"},
        {"host": "::ffff:127.0.0.1"},
        {"hotspot_address": "http://evil.example/login"},
    ):
        response = client.post(url, {**form, **change})
        assert response.status_code == 200, change  # the form again, with the error
        assert response.context["adminform"].form.errors, change

    assert client.post(url, {**form, "hotspot_address": "hotspot.lan:8080"}).status_code == 302
    router.refresh_from_db()
    assert (router.username, router.host, router.hotspot_address) == (ROUTER_USER, "203.0.113.10", "hotspot.lan:8080")
