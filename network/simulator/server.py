"""A TCP server that speaks the RouterOS API wire protocol: a MikroTik router's hotspot, simulated.

It is a *simulated router*, not a mock of our driver: the real ``routeros-api`` client talks to it over
a real socket, so framing, tags, login (plaintext and the legacy MD5 challenge),
``!trap``/``!done``/``!fatal`` and the hotspot tables (users, user profiles, active sessions, MAC
cookies) behave the way the client library and our driver will see them on a router.

The server process runs one for the demo when simulators are on (``network.simulator.runtime``,
started by project.asgi; its tables are at ``/simulator/router/``), and the tests run their own through
``tests/fakes/routeros_server.py`` (``FakeRouterOS``), one per test on a random port.

Behaviour follows /work/shared/reference/mikrotik-activation-notes.md §3. Texts marked "[I]" there are
educated guesses at RouterOS' wording; the driver only relies on substrings ("already have",
"no such item").

Usage::

    with RouterOSSimulator(username="api", password="s3cret") as router:  # 127.0.0.1, a free port
        ...connect to 127.0.0.1:router.port...
        router.table("/ip/hotspot/user")  # snapshot, list of dicts with ".id"

Test controls are plain methods: ``set_down``, ``set_unresponsive``, ``drop_next``, ``trap_next``,
``fatal_next``, ``on_next``, ``fail_hotspot_logins``, ``seed_session``, ``seed_row``, ``commands``.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import socket
import socketserver
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------------
# Wire codec
# --------------------------------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    """Encode a word length the RouterOS way (1 to 5 bytes, big-endian, prefix bits mark the size)."""
    if n < 0:
        raise ValueError("negative length")
    if n < 0x80:
        return bytes([n])
    if n < 0x4000:
        return (n | 0x8000).to_bytes(2, "big")
    if n < 0x200000:
        return (n | 0xC00000).to_bytes(3, "big")
    if n < 0x10000000:
        return (n | 0xE0000000).to_bytes(4, "big")
    if n < 0x100000000:
        return b"\xf0" + n.to_bytes(4, "big")
    raise ValueError("word too long")


def decode_length(read: Callable[[int], bytes]) -> int:
    """Decode a word length; ``read(k)`` must return exactly k bytes."""
    c = read(1)[0]
    if c < 0x80:
        return c
    if c < 0xC0:
        return ((c & 0x3F) << 8) | read(1)[0]
    if c < 0xE0:
        return ((c & 0x1F) << 16) | int.from_bytes(read(2), "big")
    if c < 0xF0:
        return ((c & 0x0F) << 24) | int.from_bytes(read(3), "big")
    if c == 0xF0:
        return int.from_bytes(read(4), "big")
    # 0xF8 and up are control bytes; a client cannot carry on after one.
    raise ProtocolError(f"reserved control byte 0x{c:02x}")


def encode_sentence(words: list[bytes] | list[str]) -> bytes:
    """Words, each length-prefixed, then the empty word that ends a sentence."""
    out = bytearray()
    for word in words:
        raw = word.encode() if isinstance(word, str) else word
        out += encode_length(len(raw)) + raw
    return bytes(out + b"\x00")


class ProtocolError(Exception):
    """The peer sent something that is not the RouterOS API protocol."""


class _CloseConnection(Exception):
    """Internal: stop serving this connection (after a drop, !fatal or /quit)."""


# --------------------------------------------------------------------------------------------------
# Fake router state
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCommand:
    """One command as the simulated router received it (after login or not), for assertions."""

    path: str  # e.g. "/ip/hotspot/user/add"
    args: dict[str, str]  # "=k=v" words, without the "=" prefix; includes ".id", ".proplist"
    queries: tuple[str, ...]  # raw "?..." words, in order
    tag: str | None
    # When it arrived (time.perf_counter), for benchmarks that split a flow into its hops.
    received_at: float = field(default_factory=time.perf_counter, compare=False)


USER = "/ip/hotspot/user"
PROFILE = "/ip/hotspot/user/profile"
ACTIVE = "/ip/hotspot/active"
COOKIE = "/ip/hotspot/cookie"
TABLE_PATHS = (USER, PROFILE, ACTIVE, COOKIE)

# Writable properties per table: anything else gets "unknown parameter", which catches typos such as
# an un-munged "limit_uptime" in driver code.
_WRITABLE: dict[str, frozenset[str]] = {
    USER: frozenset(
        {
            "name",
            "password",
            "profile",
            "limit-uptime",
            "limit-bytes-total",
            "limit-bytes-in",
            "limit-bytes-out",
            "comment",
            "disabled",
            "server",
            "mac-address",
            "email",
            "address",
        }
    ),
    PROFILE: frozenset(
        {
            "name",
            "rate-limit",
            "shared-users",
            "add-mac-cookie",
            "mac-cookie-timeout",
            "session-timeout",
            "idle-timeout",
            "keepalive-timeout",
            "address-pool",
            "on-login",
            "on-logout",
            "parent-queue",
            "status-autorefresh",
            "transparent-proxy",
            "comment",
        }
    ),
    ACTIVE: frozenset({"comment"}),
    COOKIE: frozenset({"comment"}),
}
_DEFAULTS: dict[str, dict[str, str]] = {
    USER: {"profile": "default", "disabled": "false", "uptime": "0s", "bytes-in": "0", "bytes-out": "0"},
    PROFILE: {"shared-users": "1"},
    ACTIVE: {},
    COOKIE: {},
}
_DUPLICATE_MESSAGE = {
    USER: "failure: already have user with this name for this server",
    PROFILE: "failure: already have such name",
}

LOGIN_FAILED_PLAINTEXT = "invalid user name or password (6)"
LOGIN_FAILED_LEGACY = "cannot log in"
HOTSPOT_LOGIN_FAILED = "invalid username or password"
# RouterOS' words when a user's profile allows no further session (shared-users reached).
HOTSPOT_NO_MORE_SESSIONS = "no more sessions are allowed for user"


class RouterOSSimulator:
    """A threaded simulated MikroTik router speaking the RouterOS API (127.0.0.1, a random port by default).

    ``legacy_login_only=True`` behaves like a pre-6.43 router: it ignores ``=name=``/``=password=`` on
    ``/login`` and answers with an MD5 challenge (``!done =ret=<hex>``).
    ``empty_replies=True`` sends ``!empty`` before ``!done`` for prints with no rows (RouterOS 7.18+).
    ``ssl_context`` (server side) turns it into an API-SSL endpoint.
    ``bind_host``/``bind_port`` choose the listening address (port 0: any free one); ``max_commands``
    keeps only that many recorded commands (a long-running simulator; ``None``: all of them).
    ``reply_delay`` (seconds) holds every answer back that long: a router one round trip away on a
    real network (the benchmarks' latency injection; 0, the default, answers at once).
    """

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "",
        legacy_login_only: bool = False,
        identity: str = "MikroTik",
        version: str = "7.14.3 (stable)",
        board: str | None = "hAP ac^2",
        empty_replies: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        bind_host: str = "127.0.0.1",
        bind_port: int = 0,
        max_commands: int | None = None,
        reply_delay: float = 0.0,
    ) -> None:
        self.username = username
        self.reply_delay = reply_delay
        self.password = password
        self.legacy_login_only = legacy_login_only
        self.empty_replies = empty_replies
        self.ssl_context = ssl_context
        self.bind_host = bind_host
        self.bind_port = bind_port

        self._lock = threading.RLock()
        self._next_id = 1
        self._tables: dict[str, dict[str, dict[str, str]]] = {path: {} for path in TABLE_PATHS}
        # RouterOS always has a "default" user profile.
        self._tables[PROFILE]["*0"] = {".id": "*0", "name": "default", "shared-users": "1"}
        self._identity = {"name": identity}
        self._resource = {"version": version, "uptime": "1d2h3m4s", "cpu-load": "3"}
        if board is not None:
            self._resource["board-name"] = board

        self._commands: deque[RecordedCommand] = deque(maxlen=max_commands)
        self._down = False
        self._unresponsive = False
        self._drops: dict[str, bool] = {}  # path -> apply the command before dropping?
        self._traps: dict[str, tuple[str | None, int | None]] = {}
        self._fatals: dict[str, str] = {}
        self._hotspot_login_failure: str | None = None
        self._hooks: dict[str, Callable[[], object]] = {}
        # When each active session began: its ``uptime`` is counted from here whenever it is read.
        self._session_started: dict[str, float] = {}
        self.connection_count = 0

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> RouterOSSimulator:
        """Bind (127.0.0.1 on a random port by default) and serve in a background thread.

        Raises OSError when the address cannot be bound (e.g. the port is taken).
        """
        server = _Server((self.bind_host, self.bind_port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="routeros-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open client connection, and wait for the server thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            _hard_close(sock)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> RouterOSSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return self.bind_host

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---- test controls ---------------------------------------------------------------------------

    def set_down(self, down: bool = True) -> None:
        """While down, new connections are accepted and closed at once, and open ones are cut."""
        with self._lock:
            self._down = down
            clients = list(self._clients) if down else []
        for sock in clients:
            _hard_close(sock)

    def set_unresponsive(self, unresponsive: bool = True) -> None:
        """While set, the router reads commands but never answers (a hung router / black-holed link)."""
        with self._lock:
            self._unresponsive = unresponsive

    def drop_next(self, command_path: str, *, after_apply: bool = False) -> None:
        """Cut the connection in the middle of the reply to the next ``command_path`` command.

        With ``after_apply=True`` the command takes effect first (the reply is what gets lost), which
        is the case idempotent retries must survive.
        """
        with self._lock:
            self._drops[command_path] = after_apply

    def trap_next(self, command_path: str, message: str | None, *, category: int | None = None) -> None:
        """Answer the next ``command_path`` command with ``!trap =message=<message>`` (+ ``!done``).

        ``message=None`` sends a malformed trap without ``=message=`` (routeros-api chokes on it).
        """
        with self._lock:
            self._traps[command_path] = (message, category)

    def fatal_next(self, command_path: str, reason: str = "session terminated on request") -> None:
        """Answer the next ``command_path`` command with ``!fatal <reason>`` and close the socket."""
        with self._lock:
            self._fatals[command_path] = reason

    def on_next(self, command_path: str, callback: Callable[[], object]) -> None:
        """Run ``callback()`` just before the next ``command_path`` command is executed (to stage races)."""
        with self._lock:
            self._hooks[command_path] = callback

    def fail_hotspot_logins(self, message: str | None = HOTSPOT_LOGIN_FAILED) -> None:
        """Make every ``/ip/hotspot/active/login`` trap with ``message`` (``None`` restores normal)."""
        with self._lock:
            self._hotspot_login_failure = message

    def seed_session(
        self,
        user: str,
        *,
        mac_address: str,
        address: str,
        uptime_seconds: int = 0,
        bytes_in: int = 0,
        bytes_out: int = 0,
    ) -> None:
        """Add an active session and a MAC cookie for ``user``, as if the device had logged in itself
        ``uptime_seconds`` ago and moved that many bytes."""
        with self._lock:
            row_id = self._insert(ACTIVE, _active_row(user, mac_address, address))
            self._session_started[row_id] = time.monotonic() - uptime_seconds
            self._tables[ACTIVE][row_id].update({"bytes-in": str(bytes_in), "bytes-out": str(bytes_out)})
            self._insert(COOKIE, _cookie_row(user, mac_address))

    def add_traffic(self, mac_address: str, *, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """The device at ``mac_address`` moves data: its session's counters grow, as a router counts them."""
        with self._lock:
            for row in self._tables[ACTIVE].values():
                if row.get("mac-address") == mac_address:
                    row["bytes-in"] = str(int(row.get("bytes-in", "0")) + bytes_in)
                    row["bytes-out"] = str(int(row.get("bytes-out", "0")) + bytes_out)

    def seed_row(self, path: str, **props: str) -> str:
        """Insert a raw row (keys with ``_`` become ``-``) and return its ``.id``."""
        with self._lock:
            return self._insert(path, {k.replace("_", "-"): v for k, v in props.items()})

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        with self._lock:
            return len(self._clients)

    def delete_rows(self, path: str, **match: str) -> int:
        """Delete the rows whose properties (``_`` read as ``-``) all match, as an operator (or a reset) would."""
        wanted = {k.replace("_", "-"): v for k, v in match.items()}
        with self._lock:
            table = self._tables[path]
            doomed = [row_id for row_id, row in table.items() if all(row.get(k) == v for k, v in wanted.items())]
            for row_id in doomed:
                del table[row_id]
        return len(doomed)

    @property
    def commands(self) -> list[RecordedCommand]:
        """Every command received so far, in order (including ``/login``)."""
        with self._lock:
            return list(self._commands)

    def command_paths(self) -> list[str]:
        return [c.path for c in self.commands]

    def clear_commands(self) -> None:
        with self._lock:
            self._commands.clear()

    def table(self, path: str) -> list[dict[str, str]]:
        """A deep-copied snapshot of a table, rows ordered by insertion, each with ``.id``."""
        with self._lock:
            return [self._as_read(path, row) for row in self._tables[path].values()]

    def _as_read(self, path: str, row: dict[str, str]) -> dict[str, str]:
        """A row as the router prints it: an active session's ``uptime`` is live, e.g. ``1h2m3s``."""
        shown = copy.deepcopy(row)
        started = self._session_started.get(row[".id"]) if path == ACTIVE else None
        if started is not None:
            shown["uptime"] = format_uptime(int(time.monotonic() - started))
        return shown

    @property
    def users(self) -> list[dict[str, str]]:
        return self.table(USER)

    @property
    def profiles(self) -> list[dict[str, str]]:
        return self.table(PROFILE)

    @property
    def active(self) -> list[dict[str, str]]:
        return self.table(ACTIVE)

    @property
    def cookies(self) -> list[dict[str, str]]:
        return self.table(COOKIE)

    @property
    def identity(self) -> str:
        with self._lock:
            return self._identity["name"]

    @identity.setter
    def identity(self, name: str) -> None:
        with self._lock:
            self._identity["name"] = name

    def hotspot_login(self, *, user: str, password: str, mac_address: str, address: str) -> str | None:
        """A device logs in on the hotspot's own login page (where ``$(link-login-only)`` points).

        The same rules as ``/ip/hotspot/active/login``; returns the router's failure text, or None.
        """
        with self._lock:
            if self._hotspot_login_failure is not None:
                return self._hotspot_login_failure
            return self._login_device(user, password, mac_address, address)

    # ---- internals: table helpers (call with the lock held) ---------------------------------------

    def _insert(self, path: str, row: dict[str, str]) -> str:
        row_id = f"*{self._next_id:X}"
        self._next_id += 1
        full = {".id": row_id, **_DEFAULTS[path], **row}
        self._tables[path][row_id] = full
        return row_id

    def _login_device(self, user: str, password: str, mac_address: str, address: str) -> str | None:
        """Start a hotspot session for the device (one per MAC) and give it a MAC cookie; None, or why not.

        As on a router, the user's profile caps its sessions (``shared-users``): a further device is
        refused, a device already logged in as that user logs in again.
        """
        row = next((u for u in self._tables[USER].values() if u.get("name") == user), None)
        if (
            row is None
            or row.get("disabled") in ("true", "yes")
            or not secrets.compare_digest(row.get("password", "").encode(), password.encode())
        ):
            return HOTSPOT_LOGIN_FAILED
        active = self._tables[ACTIVE]
        others = [r for r in active.values() if r.get("user") == user and r.get("mac-address") != mac_address]
        if len(others) >= self._shared_users(row.get("profile", "default")):
            return HOTSPOT_NO_MORE_SESSIONS
        # One session per MAC: a re-login replaces the device's previous session.
        for row_id in [i for i, r in active.items() if r.get("mac-address") == mac_address]:
            del active[row_id]
            self._session_started.pop(row_id, None)
        self._session_started[self._insert(ACTIVE, _active_row(user, mac_address, address))] = time.monotonic()
        cookies = self._tables[COOKIE]
        if not any(c.get("user") == user and c.get("mac-address") == mac_address for c in cookies.values()):
            self._insert(COOKIE, _cookie_row(user, mac_address))
        return None

    def _shared_users(self, profile_name: str) -> int:
        profile = next((p for p in self._tables[PROFILE].values() if p.get("name") == profile_name), None)
        try:
            return max(int((profile or {}).get("shared-users", "1")), 1)
        except ValueError:
            return 1

    def _resolve(self, path: str, ref: str) -> str | None:
        """``=.id=`` / ``=numbers=`` accept an id (``*1A``) or, for named tables, a name."""
        table = self._tables[path]
        if ref in table:
            return ref
        for row_id, row in table.items():
            if row.get("name") == ref:
                return row_id
        return None

    # ---- internals: one connection ----------------------------------------------------------------

    def _register(self, sock: socket.socket) -> bool:
        with self._lock:
            self.connection_count += 1
            if self._down:
                return False
            self._clients.add(sock)
            return True

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._clients.discard(sock)

    def _serve_connection(self, sock: socket.socket) -> None:
        session = _Session(self, sock)
        try:
            while True:
                words = session.read_sentence()
                if not words:
                    continue  # RouterOS ignores empty sentences
                session.handle(words)
        except (_CloseConnection, ProtocolError, OSError, EOFError):
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: RouterOSSimulator


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sim: RouterOSSimulator = self.server.sim  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        if not sim._register(sock):
            _hard_close(sock)
            return
        try:
            if sim.ssl_context is not None:
                sock.settimeout(5)
                try:
                    sock = sim.ssl_context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                sock.settimeout(None)
                with sim._lock:
                    sim._clients.add(sock)
            sim._serve_connection(sock)
        finally:
            sim._unregister(self.request)
            sim._unregister(sock)
            _hard_close(sock)


def _hard_close(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on this socket; close() alone does not on Linux.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _active_row(user: str, mac_address: str, address: str) -> dict[str, str]:
    return {
        "server": "hotspot1",
        "user": user,
        "address": address,
        "mac-address": mac_address,
        "login-by": "api",
        "uptime": "0s",
        "bytes-in": "0",
        "bytes-out": "0",
    }


def format_uptime(seconds: int) -> str:
    """RouterOS' duration format: ``3723`` -> ``"1h2m3s"``, ``0`` -> ``"0s"``, weeks and days too (``1w2d3h``)."""
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _cookie_row(user: str, mac_address: str) -> dict[str, str]:
    return {"user": user, "mac-address": mac_address, "domain": "", "expires-in": "3d"}


class _Session:
    """State of one client connection: login progress and the reader/writer."""

    def __init__(self, sim: RouterOSSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.logged_in = False
        self.challenge: bytes | None = None

    # ---- framing --------------------------------------------------------------------------------

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("peer closed")
            buf += chunk
        return bytes(buf)

    def read_sentence(self) -> list[bytes]:
        words: list[bytes] = []
        while True:
            length = decode_length(self._read_exact)
            if length == 0:
                return words
            words.append(self._read_exact(length))

    def send(self, tag: str | None, *sentences: list[str]) -> None:
        data = bytearray()
        for words in sentences:
            if tag is not None:
                words = [*words, f".tag={tag}"]
            data += encode_sentence(words)
        if self.sim.reply_delay:
            time.sleep(self.sim.reply_delay)  # one answer is one round trip
        self.sock.sendall(bytes(data))

    # ---- dispatch -------------------------------------------------------------------------------

    def handle(self, raw_words: list[bytes]) -> None:
        words = [w.decode("utf-8", errors="backslashreplace") for w in raw_words]
        path = words[0]
        args: dict[str, str] = {}
        queries: list[str] = []
        tag: str | None = None
        for word in words[1:]:
            if word.startswith("="):
                # Split on the *second* "=": values may contain "=", and "=key" alone means empty value.
                key, _, value = word[1:].partition("=")
                args[key] = value
            elif word.startswith("?"):
                queries.append(word)
            elif word.startswith(".tag="):
                tag = word[len(".tag=") :]
            # other API attributes are ignored, like RouterOS does for unknown ones
        sim = self.sim
        with sim._lock:
            sim._commands.append(RecordedCommand(path, dict(args), tuple(queries), tag))
            unresponsive = sim._unresponsive
            drop = sim._drops.pop(path, None)
            trap = sim._traps.pop(path, None)
            fatal = sim._fatals.pop(path, None)
            hook = sim._hooks.pop(path, None)
        if hook is not None:
            hook()

        if unresponsive:
            return  # read the command, never answer
        if fatal is not None:
            # A real !fatal carries a bare reason word (no "=message="), no tag, then the socket closes.
            self.sock.sendall(encode_sentence(["!fatal", fatal]))
            raise _CloseConnection
        if drop is not None:
            if drop:  # after_apply: let the command take effect, lose the reply
                self._execute(path, args, queries, tag, reply=False)
            # Half a reply sentence, then hang up: the client is mid-read when the socket dies.
            self.sock.sendall(encode_length(3) + b"!re" + encode_length(40) + b"=name=")
            raise _CloseConnection
        if trap is not None:
            message, category = trap
            self._trap(tag, message, category)
            return
        self._execute(path, args, queries, tag, reply=True)

    def _trap(self, tag: str | None, message: str | None, category: int | None = None) -> None:
        trap = ["!trap"]
        if category is not None:
            trap.append(f"=category={category}")
        if message is not None:
            trap.append(f"=message={message}")
        # RouterOS always ends a command with !done, also after a !trap (the client waits for it).
        self.send(tag, trap, ["!done"])

    def _execute(self, path: str, args: dict[str, str], queries: list[str], tag: str | None, *, reply: bool) -> None:
        replies: list[list[str]]
        if path == "/login":
            replies = self._login(args)
        elif path == "/quit":
            self.sock.sendall(encode_sentence(["!fatal", "session terminated on request"]))
            raise _CloseConnection
        elif not self.logged_in:
            replies = [["!trap", "=message=not logged in"], ["!done"]]
        else:
            replies = self.run_command(path, args, queries)
        if reply:
            self.send(tag, *replies)

    # ---- /login -----------------------------------------------------------------------------------

    def _login(self, args: dict[str, str]) -> list[list[str]]:
        sim = self.sim
        if "response" in args:  # second step of the legacy challenge flow
            ok = False
            if self.challenge is not None and args.get("name") == sim.username:
                digest = hashlib.md5(b"\x00" + sim.password.encode() + self.challenge).hexdigest()
                ok = secrets.compare_digest(args["response"], "00" + digest)
            self.challenge = None
            if not ok:
                return [["!trap", f"=message={LOGIN_FAILED_LEGACY}"], ["!done"]]
            self.logged_in = True
            return [["!done"]]
        if "password" in args and not sim.legacy_login_only:  # post-6.43 plaintext login
            ok = args.get("name") == sim.username and secrets.compare_digest(args["password"], sim.password)
            if not ok:
                return [["!trap", f"=message={LOGIN_FAILED_PLAINTEXT}"], ["!done"]]
            self.logged_in = True
            return [["!done"]]
        # Bare /login, or a pre-6.43 router that ignores name/password: hand out a challenge.
        self.challenge = secrets.token_bytes(16)
        return [["!done", f"=ret={self.challenge.hex()}"]]

    # ---- everything after login ---------------------------------------------------------------------

    def run_command(self, path: str, args: dict[str, str], queries: list[str]) -> list[list[str]]:
        sim = self.sim
        with sim._lock:
            if path == "/system/identity/print":
                return [_re(sim._identity, args.get(".proplist")), ["!done"]]
            if path == "/system/identity/set":
                if "name" in args:
                    sim._identity["name"] = args["name"]
                return [["!done"]]
            if path == "/system/resource/print":
                return [_re(sim._resource, args.get(".proplist")), ["!done"]]
            if path == f"{ACTIVE}/login":
                return self._hotspot_login(args)
            table_path, _, verb = path.rpartition("/")
            if table_path not in sim._tables:
                return _trap_words("no such command prefix", 0)
            handler = {
                "print": self._print,
                "add": self._add,
                "set": self._set,
                "remove": self._remove,
                "unset": self._unset,
            }.get(verb)
            if handler is None:
                return _trap_words("no such command", 0)
            return handler(table_path, args, queries)

    def _print(self, path: str, args: dict[str, str], queries: list[str]) -> list[list[str]]:
        shown = [self.sim._as_read(path, row) for row in self.sim._tables[path].values()]
        rows = [row for row in shown if _matches(row, queries)]
        replies = [_re(row, args.get(".proplist")) for row in rows]
        if not rows and self.sim.empty_replies:
            replies.append(["!empty"])
        replies.append(["!done"])
        return replies

    def _check_props(self, path: str, props: dict[str, str]) -> list[list[str]] | None:
        for key in props:
            if key not in _WRITABLE[path]:
                return _trap_words(f"unknown parameter {key}", 1)
        if path == USER and "profile" in props:
            if not any(p["name"] == props["profile"] for p in self.sim._tables[PROFILE].values()):
                return _trap_words("input does not match any value of profile", 1)
        return None

    def _add(self, path: str, args: dict[str, str], _queries: list[str]) -> list[list[str]]:
        sim = self.sim
        if path in (ACTIVE, COOKIE):
            return _trap_words("no such command", 0)  # these tables are filled by the router itself
        if error := self._check_props(path, args):
            return error
        name = args.get("name", "")
        if not name:
            return _trap_words("failure: name must be specified", 1)
        if any(row.get("name") == name for row in sim._tables[path].values()):
            return _trap_words(_DUPLICATE_MESSAGE[path])
        row_id = sim._insert(path, dict(args))
        return [["!done", f"=ret={row_id}"]]

    def _ids(self, path: str, args: dict[str, str]) -> tuple[list[str], list[list[str]] | None]:
        refs = args.get(".id") or args.get("numbers")
        if not refs:
            return [], _trap_words("no such item", 0)
        ids = []
        for ref in refs.split(","):
            row_id = self.sim._resolve(path, ref)
            if row_id is None:
                return [], _trap_words("no such item", 0)
            ids.append(row_id)
        return ids, None

    def _set(self, path: str, args: dict[str, str], _queries: list[str]) -> list[list[str]]:
        ids, error = self._ids(path, args)
        if error:
            return error
        props = {k: v for k, v in args.items() if k not in (".id", "numbers")}
        if error := self._check_props(path, props):
            return error
        table = self.sim._tables[path]
        if "name" in props and any(
            row.get("name") == props["name"] and row_id not in ids for row_id, row in table.items()
        ):
            return _trap_words(_DUPLICATE_MESSAGE.get(path, "failure: already have such item"))
        for row_id in ids:
            table[row_id].update(props)
        return [["!done"]]

    def _unset(self, path: str, args: dict[str, str], _queries: list[str]) -> list[list[str]]:
        ids, error = self._ids(path, args)
        if error:
            return error
        prop = args.get("value-name", "")
        if prop not in _WRITABLE[path] or prop == "name":
            return _trap_words(f"unknown parameter {prop}", 1)
        for row_id in ids:
            self.sim._tables[path][row_id].pop(prop, None)
        return [["!done"]]

    def _remove(self, path: str, args: dict[str, str], _queries: list[str]) -> list[list[str]]:
        ids, error = self._ids(path, args)
        if error:
            return error
        for row_id in ids:
            del self.sim._tables[path][row_id]
            self.sim._session_started.pop(row_id, None)
        return [["!done"]]

    def _hotspot_login(self, args: dict[str, str]) -> list[list[str]]:
        sim = self.sim
        if sim._hotspot_login_failure is not None:
            return _trap_words(sim._hotspot_login_failure)
        for required in ("user", "ip", "mac-address"):
            if not args.get(required):
                return _trap_words(f"failure: {required} not specified", 1)
        if failure := sim._login_device(args["user"], args.get("password", ""), args["mac-address"], args["ip"]):
            return _trap_words(failure)
        return [["!done"]]


def _re(row: dict[str, str], proplist: str | None) -> list[str]:
    keys = list(row)
    if proplist is not None:
        wanted = [k for k in proplist.split(",") if k]
        keys = [k for k in wanted if k in row]
    return ["!re", *(f"={k}={row[k]}" for k in keys)]


def _trap_words(message: str, category: int | None = None) -> list[list[str]]:
    trap = ["!trap"]
    if category is not None:
        trap.append(f"=category={category}")
    trap.append(f"=message={message}")
    return [trap, ["!done"]]


def _compare(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit():
        x, y = int(a), int(b)
    else:
        x, y = a, b  # type: ignore[assignment]
    return (x > y) - (x < y)


def _matches(row: dict[str, str], queries: list[str]) -> bool:
    """Evaluate RouterOS query words on a stack (an empty stack reads as an endless run of ``true``)."""
    stack: list[bool] = []

    def pop() -> bool:
        return stack.pop() if stack else True

    for word in queries:
        body = word[1:]
        if body.startswith("#"):
            for op in body[1:]:
                if op == "!":
                    stack.append(not pop())
                elif op == "&":
                    a, b = pop(), pop()
                    stack.append(a and b)
                elif op == "|":
                    a, b = pop(), pop()
                    stack.append(a or b)
                elif op.isdigit():
                    index = int(op)
                    stack.append(stack[-1 - index] if index < len(stack) else True)
                elif op == ".":
                    stack.append(stack[-1] if stack else True)
            continue
        if body.startswith("-"):
            stack.append(body[1:] not in row)
            continue
        op = "="
        if body[:1] in ("<", ">"):
            op, body = body[0], body[1:]
        elif body.startswith("="):
            body = body[1:]  # "?=name=x" is the same as "?name=x"
        key, sep, value = body.partition("=")
        if not sep:
            stack.append(key in row)  # "?name": has the property
        elif key not in row:
            stack.append(False)
        elif op == "=":
            stack.append(row[key] == value)
        elif op == "<":
            stack.append(_compare(row[key], value) < 0)
        else:
            stack.append(_compare(row[key], value) > 0)
    return all(stack)
