"""A small driver over ``routeros-api`` for what CloudPilot does on a MikroTik hotspot router.

One :class:`RouterOSDriver` is one API connection, used by one job at a time (``network.routeros_pool``
keeps it open between jobs), as a context manager::

    with RouterOSDriver(RouterAddress(host, port, username, password)) as router:
        router.ensure_profile(HotspotProfileSpec(name="cp-1h", rate_limit="2M/5M", shared_users=1))
        router.ensure_user(HotspotUserSpec(name=code, password=code, profile="cp-1h",
                                           limit_uptime_seconds=3600, limit_bytes_total=None,
                                           comment="pay:<id>;exp:<unix>"))
        router.login_active(user=code, password=code, mac_address=mac, ip_address=ip)

Every operation but :meth:`RouterOSDriver.add_user` is idempotent (look up by name, then add or set;
removing something already gone is fine), so a job that failed half-way can simply run again.

Errors: everything the library or the socket can raise comes out as :class:`RouterError` or one of its
subclasses, :class:`RouterUnreachable` (retry later) and :class:`RouterAuthFailed` (fix the router's
credentials). Library exceptions are never chained onto ours, because their text embeds the full
command sentence, passwords included.

Logging: each command is logged at INFO on ``network.routeros`` with the router host, command path,
outcome and duration, plus the *names* of its arguments and queries, never their values: the hotspot
user's password is the customer's access code, and in our scheme its name is the code too.

This module imports nothing from Django; callers pass plain values.
"""

from __future__ import annotations

import logging
import re
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import routeros_api
from routeros_api import api_communicator, api_socket, base_api
from routeros_api import exceptions as ros_exc
from routeros_api.api import RouterOsApi

__all__ = [
    "HotspotProfileSpec",
    "HotspotSession",
    "HotspotUserSpec",
    "RouterAddress",
    "RouterAuthFailed",
    "RouterError",
    "RouterIdentity",
    "RouterNotAllowed",
    "RouterOSDriver",
    "RouterUnreachable",
    "format_limit_uptime",
    "format_rate_limit",
    "resolve_all",
    "resolve_first",
    "unreachable_text",
]

USER_PATH = "/ip/hotspot/user"
PROFILE_PATH = "/ip/hotspot/user/profile"
ACTIVE_PATH = "/ip/hotspot/active"
COOKIE_PATH = "/ip/hotspot/cookie"

AUTH_FAILED_TEXT = "Router rejected the API username or password"


def unreachable_text(host: str, port: int) -> str:
    """Every failure before a RouterOS login answer reads the same: refused, reset, silent (timed out)
    or another kind of server (HTTP, SSH, Redis...) must not be told apart, or this is a port scanner."""
    return f"Could not connect to router {host}:{port}: unreachable, or not a RouterOS API"


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouterAddress:
    """Where and how to reach a router's API (8728 plain, 8729 API-SSL)."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)  # keep it out of reprs, which end up in logs and tracebacks
    use_ssl: bool = False


@dataclass(frozen=True)
class RouterIdentity:
    identity: str  # /system/identity name
    version: str  # RouterOS version, e.g. "7.14.3 (stable)"
    board: str | None  # board-name; absent on CHR/x86 builds


# rx-rate[/tx-rate] with optional k/M/G suffixes, optionally followed by burst settings.
_RATE_LIMIT_RE = re.compile(r"^\d+[kKMG]?(/\d+[kKMG]?)?( \S+)*$")


@dataclass(frozen=True)
class HotspotProfileSpec:
    """A hotspot user profile (one per package).

    ``rate_limit`` is RouterOS' ``rx-rate[/tx-rate]`` *from the router's point of view*: rx is what the
    router receives from the client (the customer's upload), tx what it sends (the download). So
    ``"2M/5M"`` means 2 Mbit/s up, 5 Mbit/s down, the same "up/down" order the Winbox form shows.
    ``None`` means no limit. Build it with :func:`format_rate_limit`.
    """

    name: str
    rate_limit: str | None
    shared_users: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("profile name must not be empty")
        if self.rate_limit is not None and not _RATE_LIMIT_RE.match(self.rate_limit):
            raise ValueError(f"rate_limit must look like '2M/5M', got {self.rate_limit!r}")
        if self.shared_users < 1:
            raise ValueError("shared_users must be at least 1")


@dataclass(frozen=True)
class HotspotUserSpec:
    """A hotspot user: the customer's access code, capped on the router itself."""

    name: str
    password: str = field(repr=False)
    profile: str
    limit_uptime_seconds: int
    limit_bytes_total: int | None
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("user name must not be empty")
        # routeros-api sends an empty value as a bare "=password" word; and an empty hotspot password
        # would let anyone who guesses the name in.
        if not self.password:
            raise ValueError("user password must not be empty")
        # RouterOS reads limit-uptime=0 / limit-bytes-total=0 as "no limit": a zero here would sell
        # unlimited internet instead of none, so refuse it outright.
        if self.limit_uptime_seconds <= 0:
            raise ValueError("limit_uptime_seconds must be positive")
        if self.limit_bytes_total is not None and self.limit_bytes_total <= 0:
            raise ValueError("limit_bytes_total must be positive or None")


@dataclass(frozen=True)
class HotspotSession:
    """One device online on the hotspot (a row of ``/ip/hotspot/active``)."""

    user: str
    mac_address: str
    address: str
    uptime_seconds: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_uptime(text: str) -> int:
    """RouterOS' duration, ``"1w2d3h4m5s"`` (any part may be missing), to whole seconds; ``0`` when unreadable.

    Newer versions may add milliseconds (``"5s120ms"``) or print ``"00:01:02"``; both are read too.
    """
    value = (text or "").strip()
    if ":" in value:
        try:
            hours, minutes, seconds = (int(float(part)) for part in value.split(":")[-3:])
        except ValueError:
            return 0
        return hours * 3600 + minutes * 60 + seconds
    value = re.sub(r"\d+ms", "", value)
    return sum(int(count) * _DURATION_UNITS[unit] for count, unit in _DURATION_PART.findall(value))


def _counter(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def format_limit_uptime(seconds: int) -> str:
    """``5400`` -> ``"5400s"``.

    Plain seconds rather than ``"1h30m"``: every RouterOS version parses it, it is exact for any
    duration without unit arithmetic, and the router shows it normalised anyway (``1h30m``).
    ``routeros-api``'s own ``TimedeltaField`` uses the same form.
    """
    if seconds <= 0:
        raise ValueError("limit-uptime must be positive (0 means unlimited on RouterOS)")
    return f"{int(seconds)}s"


def format_rate_limit(upload_kbps: int | None, download_kbps: int | None) -> str | None:
    """``(2000, 5000)`` -> ``"2000k/5000k"`` (rx/tx from the router's view = upload/download).

    ``None`` on both sides means no limit. A single missing side becomes ``0``, which RouterOS queues
    read as "unlimited" for that direction.
    """
    if not upload_kbps and not download_kbps:
        return None
    return f"{upload_kbps or 0}k/{download_kbps or 0}k"


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class RouterError(Exception):
    """The router refused a command (``!trap``) or ended the session (``!fatal``).

    ``message`` is the router's own text (e.g. ``"failure: already have user with this name"``),
    ``category`` the ``!trap`` category when the router sent one (0 missing item or command,
    1 bad argument value, 2 interrupted, 3 scripting, 4 general failure, 5 API failure, ...),
    ``command`` the command path. ``str(error)`` is a sentence fit for ``Activation.last_error``.
    """

    def __init__(
        self,
        message: str,
        *,
        category: int | None = None,
        command: str | None = None,
        text: str | None = None,
    ) -> None:
        self.message = message
        self.category = category
        self.command = command
        super().__init__(text or (f"Router refused {command}: {message}" if command else message))


class RouterUnreachable(RouterError):
    """No usable connection: refused, timed out, TLS failure, or dropped mid-command. Retry later."""


class RouterAuthFailed(RouterError):
    """The router rejected the API username or password. Retrying will not help."""


class RouterNotAllowed(RouterError):
    """The router's address is one the server must not connect to (see ``network.destinations``)."""


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def _router_ssl_context() -> ssl.SSLContext:
    """TLS for API-SSL (8729) that accepts the router's self-signed certificate.

    Routers ship with, or are given, a self-signed certificate for an IP address; there is no public
    CA that could vouch for it. We still get encryption against passive eavesdropping on the path,
    but no protection against an active man-in-the-middle: for that, put routers behind a VPN or pass
    an ``ssl_context`` that pins the router's certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def resolve_all(address: RouterAddress) -> list[str]:
    """Every address the router's host resolves to (zone ids dropped), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise RouterUnreachable(
            "name does not resolve", command="/login", text=unreachable_text(address.host, address.port)
        ) from None
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def resolve_first(address: RouterAddress) -> str:
    """The first address the host resolves to, with no policy: for tools and tests that name a router
    themselves. The app passes ``network.destinations.connect_address``, which checks where it goes."""
    return resolve_all(address)[0]


# However it trickles in, one command's answer (or the login) must be complete within this many times the
# per-read timeout, and at most this many bytes: found from outside, a "router" sending a word a second
# held a worker thread for ever (every read came within the timeout), and with a few of them, every
# tenant's activations, code box and health probe waited behind it.
COMMAND_DEADLINE_FACTOR = 3
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class _DeadlineSocket(api_socket.SocketWrapper):
    """The library's socket, with a deadline and a byte budget for each answer (``start_answer``)."""

    def __init__(self, sock: socket.socket, *, read_timeout: float) -> None:
        super().__init__(sock)
        self.read_timeout = read_timeout
        self.start_answer()

    def start_answer(self) -> None:
        self.deadline = time.monotonic() + self.read_timeout * COMMAND_DEADLINE_FACTOR
        self.budget = MAX_ANSWER_BYTES

    def receive(self, length: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or self.budget <= 0:
            raise TimeoutError("the router's answer took too long or was too large")
        self.socket.settimeout(min(self.read_timeout, remaining))
        data = super().receive(length)
        self.budget -= len(data)
        return data


class _PinnedPool(routeros_api.RouterOsApiPool):
    """The library's pool, connected to one address resolved (and checked) beforehand.

    The library would resolve the name again itself, and a second DNS answer (rebinding) could point
    somewhere never checked. TLS still names the router's host (SNI, and hostname checks of a pinning
    ``ssl_context``).
    """

    def __init__(self, ip: str, *, server_name: str, **kwargs: Any) -> None:
        super().__init__(ip, **kwargs)
        self.server_name = server_name

    def get_api(self) -> Any:
        if not self.connected:
            sock = socket.create_connection((self.host, self.port), timeout=self.socket_timeout)
            try:
                api_socket.set_keepalive(sock, after_idle_sec=10)
                if self.ssl_context is not None:
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_name)
            except BaseException:
                sock.close()
                raise
            # From here on as RouterOsApiPool.get_api (routeros-api 0.21), with a deadline on each answer.
            self.socket = _DeadlineSocket(sock, read_timeout=self.socket_timeout)
            communicator = api_communicator.ApiCommunicator(base_api.Connection(self.socket))
            self.api = RouterOsApi(communicator)
            for handler in self._get_exception_handlers():
                communicator.add_exception_handler(handler)
            self.api.login(self.username, self.password, self.plaintext_login)
            self.connected = True
        return self.api


class RouterOSDriver:
    """One RouterOS API connection for one job. Not thread-safe by design, like the library under it.

    Opened on ``__enter__`` (plaintext login first; ``routeros-api`` itself falls back to the legacy MD5
    challenge when an old router answers with ``=ret=``), closed on ``__exit__`` (or kept open by the
    connection pool). After the connection is lost the driver does not reconnect: it raises
    :class:`RouterUnreachable`, and whoever holds it decides whether repeating its commands on a new
    connection is safe (see ``network.services.router_session``), so no command is silently sent twice.
    """

    def __init__(
        self,
        address: RouterAddress,
        *,
        timeout: float = 5.0,
        logger_name: str = "network.routeros",
        ssl_context: ssl.SSLContext | None = None,
        resolve: Callable[[RouterAddress], str] = resolve_first,
    ) -> None:
        self.address = address
        self.timeout = timeout
        # Called on every connect: the one IP address to connect to (may refuse with a RouterError).
        self._resolve = resolve
        self._log = logging.getLogger(logger_name)
        self._ssl_context = ssl_context
        self._pool: routeros_api.RouterOsApiPool | None = None
        self._api: Any = None
        self._lost: str | None = None
        # Guards against accidental sharing between threads: the library would interleave replies.
        self._lock = threading.Lock()
        # Filled by the sentence hook (see _watch_sentences): the library drops these details.
        self._last_trap_category: int | None = None
        self._last_fatal: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> RouterOSDriver:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection and log in. Raises RouterUnreachable / RouterAuthFailed / RouterError."""
        if self._api is not None:
            return
        address = self.address
        use_ssl = address.use_ssl or self._ssl_context is not None
        started = time.monotonic()
        try:
            ip = self._resolve(address)
        except RouterError as refused:
            self._log_command("/login", (), (), started, refused)
            raise
        pool = _PinnedPool(
            ip,
            server_name=address.host,
            username=address.username,
            password=address.password,
            port=address.port,
            plaintext_login=True,
            use_ssl=use_ssl,
            ssl_context=(self._ssl_context or _router_ssl_context()) if use_ssl else None,
        )
        # The class default is 15 s, used for connect, TLS handshake and every read.
        pool.socket_timeout = self.timeout
        error: RouterError | None = None
        try:
            api = pool.get_api()
        except Exception as exc:  # noqa: BLE001 - every library/socket failure is translated below
            error = self._translate(exc, "/login", during_login=True)
        if error is not None:
            # The library leaves the socket open when login fails.
            self._safe_disconnect(pool)
            self._log_command("/login", (), (), started, error)
            raise error  # raised outside the except block: no library exception chained on
        self._pool, self._api, self._lost = pool, api, None
        self._no_delay(pool)
        self._watch_sentences(api)
        self._log_command("/login", (), (), started, None)

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        pool, self._pool, self._api = self._pool, None, None
        if pool is not None:
            self._safe_disconnect(pool)

    @property
    def connected(self) -> bool:
        return self._api is not None

    def quiet(self) -> bool:
        """Connected, and nothing waiting on the socket between commands (no round trip).

        Between commands a router sends nothing: a readable socket means it closed or reset the
        connection, or sent ``!fatal``. Silently lost paths are not seen here (see :meth:`ping`).
        """
        pool = self._pool
        if self._api is None or pool is None:
            return False
        try:
            readable, _, _ = select.select([pool.socket.socket], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def ping(self) -> None:
        """One cheap command, to prove an idle connection still reaches the router; raises RouterError."""
        self._call("/system/identity", "print", proplist="name")

    # ---- operations -----------------------------------------------------------------------------

    def identity(self) -> RouterIdentity:
        """Identity name, RouterOS version and board (``/system/identity``, ``/system/resource``)."""
        identity_rows = self._call("/system/identity", "print")
        resource_rows = self._call("/system/resource", "print")
        identity_row = identity_rows[0] if identity_rows else {}
        resource_row = resource_rows[0] if resource_rows else {}
        return RouterIdentity(
            identity=identity_row.get("name", ""),
            version=resource_row.get("version", ""),
            board=resource_row.get("board-name") or None,
        )

    def ensure_profile(self, spec: HotspotProfileSpec) -> None:
        """Create or update the hotspot user profile named ``spec.name`` (idempotent)."""
        props: dict[str, str | None] = {
            "rate-limit": spec.rate_limit,
            "shared-users": str(spec.shared_users),
        }
        self._ensure(PROFILE_PATH, spec.name, props)

    def ensure_user(self, spec: HotspotUserSpec) -> str:
        """Create or update the hotspot user ``spec.name``; returns its router ``.id`` (e.g. ``*1A``).

        Updating keeps the user's used-uptime and byte counters (RouterOS only resets them on remove):
        fine for retries of the same activation; a new sale should use a new code.
        """
        return self._ensure(USER_PATH, spec.name, _user_props(spec))

    def add_user(self, spec: HotspotUserSpec) -> str:
        """Add hotspot user ``spec.name`` in one command (no look-up); returns its ``.id``.

        Refused with RouterError when the name exists (``already have``) or the profile does not
        (``input does not match any value of profile``); :meth:`ensure_user` is the idempotent form.
        """
        args = {"name": spec.name, **{k: v for k, v in _user_props(spec).items() if v is not None}}
        return self._call_raw(USER_PATH, "add", args).done_message.get("ret", "")

    def user_matches(self, spec: HotspotUserSpec) -> bool:
        """Whether hotspot user ``spec.name`` exists exactly as ``spec`` says (password included,
        compared here and never returned)."""
        rows = self._call(USER_PATH, "print", queries={"name": spec.name})
        if len(rows) != 1:
            return False
        row = rows[0]
        wanted = _user_props(spec)
        if not secrets.compare_digest(row.get("password", "").encode(), spec.password.encode()):
            return False
        # The router prints limit-uptime normalised ("1h"), not as we sent it ("3600s").
        if parse_uptime(row.get("limit-uptime", "")) != spec.limit_uptime_seconds:
            return False
        return all(row.get(key) == value for key, value in wanted.items() if key not in ("password", "limit-uptime"))

    def login_active(self, *, user: str, password: str, mac_address: str, ip_address: str) -> None:
        """Log the device waiting on the hotspot login page in as ``user`` (``/ip/hotspot/active/login``).

        RouterOS needs the device's current IP and MAC, as captured by the portal from ``$(ip)``/``$(mac)``.
        Raises RouterError when the router refuses (unknown host, wrong password, ...).
        """
        self._call(
            ACTIVE_PATH,
            "login",
            {"user": user, "password": password, "mac-address": mac_address, "ip": ip_address},
        )

    def active_sessions(self, user: str) -> list[HotspotSession]:
        """The devices online as hotspot user ``user`` (what its profile's ``shared-users`` counts)."""
        rows = self._call(ACTIVE_PATH, "print", queries={"user": user}, proplist="user,mac-address,address")
        return [
            HotspotSession(
                user=row.get("user", ""), mac_address=row.get("mac-address", ""), address=row.get("address", "")
            )
            for row in rows
        ]

    def hotspot_sessions(self) -> list[HotspotSession]:
        """Every device online on the hotspot now, with its uptime and byte counters (from the device's view
        ``bytes-in`` is what it uploaded, as RouterOS counts it)."""
        rows = self._call(ACTIVE_PATH, "print", proplist="user,mac-address,address,uptime,bytes-in,bytes-out")
        return [
            HotspotSession(
                user=row.get("user", ""),
                mac_address=row.get("mac-address", ""),
                address=row.get("address", ""),
                uptime_seconds=parse_uptime(row.get("uptime", "")),
                bytes_in=_counter(row.get("bytes-in")),
                bytes_out=_counter(row.get("bytes-out")),
            )
            for row in rows
        ]

    def remove_session(self, mac_address: str) -> bool:
        """Log the device with ``mac_address`` off (``/ip/hotspot/active/remove``); False when it had no session.

        Its MAC cookie goes first: left behind, it would log the device straight back in. The code still
        works: the customer can type it again.
        """
        rows = self._call(ACTIVE_PATH, "print", queries={"mac-address": mac_address}, proplist=".id")
        if not rows:
            return False
        for row in self._call(COOKIE_PATH, "print", queries={"mac-address": mac_address}, proplist=".id"):
            self._remove_id(COOKIE_PATH, row[".id"])
        for row in rows:
            self._remove_id(ACTIVE_PATH, row[".id"])
        return True

    def set_user_limit_uptime(self, name: str, seconds: int) -> bool:
        """Change hotspot user ``name``'s ``limit-uptime``; False when the router has no such user."""
        rows = self._call(USER_PATH, "print", queries={"name": name}, proplist=".id")
        for row in rows:
            self._call(USER_PATH, "set", {".id": row[".id"], "limit-uptime": format_limit_uptime(seconds)})
        return bool(rows)

    def remove_user(self, name: str) -> None:
        """Take ``name`` off the router: the user, its active sessions and its MAC cookies.

        Each part is idempotent; anything already gone is not an error, so a retry after a partial run
        finishes the job. The user goes first: once it is gone, neither the login page nor a MAC cookie
        can start a new session while we kick the existing ones (the other order leaves a window where
        a kicked device logs straight back in).
        """
        for row in self._call(USER_PATH, "print", queries={"name": name}, proplist=".id"):
            self._remove_id(USER_PATH, row[".id"])
        for row in self._call(ACTIVE_PATH, "print", queries={"user": name}, proplist=".id"):
            self._remove_id(ACTIVE_PATH, row[".id"])
        for row in self._call(COOKIE_PATH, "print", queries={"user": name}, proplist=".id"):
            self._remove_id(COOKIE_PATH, row[".id"])

    def find_user(self, name: str) -> dict[str, str] | None:
        """The hotspot user row (RouterOS property names, ``.id`` included), or None.

        The ``password`` property is dropped: it is the customer's access code and has no business
        travelling further (logs, error reports).
        """
        rows = self._call(USER_PATH, "print", queries={"name": name})
        if not rows:
            return None
        row = dict(rows[0])
        row.pop("password", None)
        return row

    # ---- building blocks ------------------------------------------------------------------------

    def _ensure(self, path: str, name: str, props: dict[str, str | None]) -> str:
        """Look up by name, then set (or add); ``None`` values are unset on an existing row."""
        rows = self._call(path, "print", queries={"name": name})
        if not rows:
            add_args = {"name": name, **{k: v for k, v in props.items() if v is not None}}
            try:
                reply = self._call_raw(path, "add", add_args)
                return reply.done_message.get("ret", "")
            except RouterError as error:
                if isinstance(error, RouterUnreachable) or "already have" not in error.message:
                    raise
            # Someone (another job, an operator) created it between our print and add: update it.
            rows = self._call(path, "print", queries={"name": name})
            if not rows:
                # No name in the text: for users it is the access code.
                raise RouterError("reported as existing but not found", command=f"{path}/add")
        row = rows[0]
        row_id = row[".id"]
        set_args = {k: v for k, v in props.items() if v is not None}
        self._call(path, "set", {".id": row_id, **set_args})
        # routeros-api cannot send an empty value ("=key=" becomes "=key"), so clear with unset.
        for key, value in props.items():
            if value is None and row.get(key):
                self._call(path, "unset", {"numbers": row_id, "value-name": key})
        return row_id

    def _remove_id(self, path: str, row_id: str) -> None:
        try:
            self._call(path, "remove", {".id": row_id})
        except RouterError as error:
            # Gone between our print and remove (session ended, another job): that is the goal anyway.
            if isinstance(error, RouterUnreachable) or "no such item" not in error.message:
                raise

    def _call(
        self,
        path: str,
        command: str,
        args: dict[str, str] | None = None,
        *,
        queries: dict[str, str] | None = None,
        proplist: str | None = None,
    ) -> list[dict[str, str]]:
        """Run one command; rows come back with RouterOS' own ``.id`` key (the library renames it ``id``)."""
        if proplist is not None:
            args = {**(args or {}), ".proplist": proplist}
        reply = self._call_raw(path, command, args, queries)
        return [{(".id" if k == "id" else k): v for k, v in row.items()} for row in reply]

    def _call_raw(
        self,
        path: str,
        command: str,
        args: dict[str, str] | None = None,
        queries: dict[str, str] | None = None,
    ) -> Any:
        """Run one command through the library, translating failures and logging the outcome."""
        full = f"{path}/{command}"
        args = args or {}
        queries = queries or {}
        if self._api is None:
            if self._lost is not None:
                raise RouterUnreachable(
                    f"Connection to router {self.address.host} was lost earlier ({self._lost})",
                    command=full,
                    text=f"Connection to router {self.address.host} was lost earlier ({self._lost})",
                )
            raise RuntimeError("RouterOSDriver is not connected: use it as a context manager")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("RouterOSDriver is used from two threads at once; use one driver per job")
        started = time.monotonic()
        error: RouterError | None = None
        try:
            self._last_trap_category = None
            self._last_fatal = None
            try:
                self._pool.socket.start_answer()
                # Keys pass through the library's munging unchanged: they already use "-" and ".id".
                reply = self._api.get_resource(path).call(command, args, queries)
            except Exception as exc:  # noqa: BLE001 - translated below; nothing from the library escapes
                error = self._translate(exc, full)
        finally:
            self._lock.release()
        self._log_command(full, tuple(args), tuple(queries), started, error)
        if error is not None:
            raise error  # outside the except block: the library's exception text holds the arguments
        return reply

    # ---- error handling -------------------------------------------------------------------------

    def _translate(self, exc: BaseException, command: str, *, during_login: bool = False) -> RouterError:
        """Map any library/socket exception to ours, and drop the connection unless it is still sound."""
        host = self.address.host
        if isinstance(exc, ros_exc.RouterOsApiCommunicationError):
            # A clean !trap ... !done: the connection is fine and stays open.
            message = _text(exc.original_message)
            if during_login:
                return RouterAuthFailed(message, command=command, text=AUTH_FAILED_TEXT)
            return RouterError(message, category=self._last_trap_category, command=command)

        # Anything else leaves the session unusable (half-read replies, closed socket, ...).
        self._mark_lost(type(exc).__name__)
        connection_failed = isinstance(exc, ros_exc.RouterOsApiConnectionError | OSError | EOFError)
        if during_login:
            # No RouterOS answer to the login: whatever answered (or did not) stays unnamed. The detail
            # (socket text only, no arguments) goes to our log, never to the operator.
            detail = (
                f"{type(exc).__name__}: {_text(exc.args[0])}" if connection_failed and exc.args else type(exc).__name__
            )
            return RouterUnreachable(detail, command=command, text=unreachable_text(host, self.address.port))
        if self._last_fatal is not None or isinstance(exc, ros_exc.RouterOsApiFatalCommunicationError):
            # !fatal: the router ends the session (e.g. "session terminated on request").
            reason = self._last_fatal or "session terminated"
            return RouterError(reason, command=command, text=f"Router {host} ended the API session: {reason}")
        if connection_failed:
            # Timeouts, resets, TLS errors (ssl.SSLError is an OSError), RouterOsApiConnectionClosedError.
            reason = "timed out" if _timed_out(exc) else "connection lost"
            where = f"{host}:{self.address.port}"
            return RouterUnreachable(
                reason, command=command, text=f"Connection to router {where} lost during {command}: {reason}"
            )
        if isinstance(exc, KeyError):
            # The library indexes b'message' blindly: a !trap without =message= surfaces as KeyError.
            return RouterError(
                "router sent !trap without a message", category=self._last_trap_category, command=command
            )
        # RouterOsApiParsingError, FatalRouterOsApiError (unknown tag), assertion in the framing code...
        return RouterError(
            f"protocol error ({type(exc).__name__})",
            command=command,
            text=f"Unexpected reply from router {host} to {command}: not a RouterOS API reply",
        )

    def _mark_lost(self, reason: str) -> None:
        pool, self._pool, self._api = self._pool, None, None
        self._lost = reason
        if pool is not None:
            self._safe_disconnect(pool)

    @staticmethod
    def _safe_disconnect(pool: routeros_api.RouterOsApiPool) -> None:
        try:
            pool.disconnect()
        except (OSError, ros_exc.RouterOsApiError):
            pass

    @staticmethod
    def _no_delay(pool: routeros_api.RouterOsApiPool) -> None:
        """Disable Nagle: the library writes every word with its own send(), so without this each
        command waits for the router's delayed ACK (~40 ms a command on Linux)."""
        try:
            pool.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            pass

    def _watch_sentences(self, api: Any) -> None:
        """Record ``!trap =category=`` and ``!fatal <reason>``, which routeros-api 0.21 throws away.

        Hooks the library's sentence reader on this one connection. If a future library version moves
        things around, we simply go without categories.
        """
        try:
            connection = api.communicator.exception_aware_communicator.inner.inner.base
            receive_sentence: Callable[[], list[bytes]] = connection.receive_sentence
        except AttributeError:
            return

        def watched() -> list[bytes]:
            words = receive_sentence()
            if words and words[0] == b"!trap":
                for word in words[1:]:
                    if word.startswith(b"=category="):
                        try:
                            self._last_trap_category = int(word[len(b"=category=") :])
                        except ValueError:
                            pass
            elif words and words[0] == b"!fatal":
                self._last_fatal = " ".join(_text(w) for w in words[1:]) or "fatal"
            return words

        connection.receive_sentence = watched

    # ---- logging --------------------------------------------------------------------------------

    def _log_command(
        self,
        command: str,
        arg_names: tuple[str, ...],
        query_names: tuple[str, ...],
        started: float,
        error: RouterError | None,
    ) -> None:
        duration_ms = round((time.monotonic() - started) * 1000)
        if error is None:
            outcome = "ok"
        elif isinstance(error, RouterAuthFailed):
            outcome = "auth_failed"
        elif isinstance(error, RouterNotAllowed):
            outcome = "not_allowed"
        elif isinstance(error, RouterUnreachable):
            outcome = "unreachable"
        else:
            outcome = "error"
        # Argument and query NAMES only: values include the access code (user name and password).
        self._log.info(
            "routeros %s %s %s in %d ms args=%s query=%s%s",
            self.address.host,
            command,
            outcome,
            duration_ms,
            ",".join(sorted(arg_names)) or "-",
            ",".join(sorted(query_names)) or "-",
            f" error={error.message!r}" if error is not None else "",
            extra={
                "router_host": self.address.host,
                "router_command": command,
                "router_outcome": outcome,
                "duration_ms": duration_ms,
            },
        )


def _user_props(spec: HotspotUserSpec) -> dict[str, str | None]:
    """A hotspot user's properties as RouterOS names them; ``None``: not set."""
    return {
        "password": spec.password,
        "profile": spec.profile,
        "limit-uptime": format_limit_uptime(spec.limit_uptime_seconds),
        "limit-bytes-total": None if spec.limit_bytes_total is None else str(spec.limit_bytes_total),
        "comment": spec.comment or None,
    }


def _timed_out(exc: BaseException) -> bool:
    # The library wraps socket errors: RouterOsApiConnectionError(TimeoutError) or (str(TimeoutError)).
    return isinstance(exc, TimeoutError) or any(isinstance(arg, TimeoutError) or arg == "timed out" for arg in exc.args)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
