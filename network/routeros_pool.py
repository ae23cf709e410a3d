"""Live RouterOS API connections kept per process, one per router, so a job skips TCP connect and ``/login``.

On a real network a router is tens of milliseconds away and a fresh session costs connect + login before
the first useful command; an activation needs two commands (``user/add``, ``active/login``). So each
process keeps the last connection to each router and lends it to one job at a time
(:meth:`RouterConnectionPool.lease`; ``routeros-api`` is not thread-safe and the Huey workers are threads).

- Opening always goes through the caller's ``open_driver`` (``network.services.router_driver``: resolve,
  destination check, pinned address, login). Nothing here connects by itself.
- A connection belongs to a router id *and* a fingerprint of how it was opened (host, port, username,
  password, TLS): a router whose settings changed gets a new connection and the old one is closed.
- Before each loan: a zero-round-trip look at the socket (a router that closed, reset, or sent ``!fatal``
  leaves it readable: dropped). A path can also die silently (NAT and firewalls forget idle flows), so an
  idle connection is kept alive in the background: the sweeper sends it one cheap command
  (``/system/identity/print``) every ``ping_after / 2`` seconds, off every job's critical path. Only a
  connection not heard from for ``ping_after`` seconds (the sweeper was held up) is pinged before a loan.
  Past ``idle_seconds`` unused or ``max_age_seconds`` old it is closed (the sweeper looks every second,
  jobs or not), so a process notices a deleted or changed router, or a changed name resolution and
  destination policy, within that time at most.
- At most ``max_size`` connections (least recently used closed first). A router whose connection is lent
  out gets a one-off connection, closed after use (what every job did before the pool).
- Forked children forget the parent's connections (the sockets are shared; the child must neither use nor
  shut them); process exit closes them.

A job that finds its *reused* connection dead mid-command can start again on a fresh one (``lease.reused``);
whether repeating its commands is safe is the caller's to judge (see ``network.activation._router_work``).

This module imports nothing from Django; callers pass plain values.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from network.routeros import RouterAddress, RouterError, RouterOSDriver

# How often idle and old connections are looked for (a few dozen entries under a lock: cheap).
SWEEP_INTERVAL_SECONDS = 1.0


def address_fingerprint(address: RouterAddress) -> str:
    """A digest of everything a connection was opened with (the password is never kept as such)."""
    parts = (address.host, str(address.port), address.username, address.password, str(address.use_ssl))
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Entry:
    fingerprint: str
    driver: RouterOSDriver
    opened_at: float
    last_used: float  # the last job (idle expiry counts from here)
    last_heard: float  # the last command answered, a job's or a keepalive's
    busy: bool = False
    discarded: bool = False  # dropped from the registry while lent out: closed when returned


@dataclass
class Lease:
    """What a job borrowed: the driver, and whether its connection was used before (may be stale)."""

    driver: RouterOSDriver
    reused: bool


class RouterConnectionPool:
    def __init__(
        self,
        *,
        max_size: int = 64,
        idle_seconds: float = 900.0,
        ping_after: float = 30.0,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_size = max_size
        self.idle_seconds = idle_seconds
        self.ping_after = ping_after
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._sweeper: threading.Thread | None = None

    # ---- lending --------------------------------------------------------------------------------

    @contextmanager
    def lease(self, router_id: int, fingerprint: str, open_driver: Callable[[], RouterOSDriver]) -> Iterator[Lease]:
        """The router's live connection (checked), else a newly opened one; back in the pool afterwards."""
        entry, to_close = self._take(router_id, fingerprint)
        _close_all(to_close)
        reused = False
        if entry is not None:
            if self._healthy(entry):
                reused = True
            else:
                self._forget(router_id, entry)
                entry.driver.close()
                entry = None
        transient = False
        if entry is None:
            driver = open_driver()
            driver.connect()  # raises: nothing is stored
            entry, transient = self._store(router_id, fingerprint, driver)
        try:
            yield Lease(entry.driver, reused)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Interrupted mid-command (a signal, a cancelled thread): the answer may be half read.
                entry.driver.close()
            raise
        finally:
            self._give_back(router_id, entry, transient)

    def _take(self, router_id: int, fingerprint: str) -> tuple[_Entry | None, list[RouterOSDriver]]:
        """The idle entry for this router and fingerprint (marked busy), and connections to close."""
        now = self._clock()
        with self._lock:
            to_close = self._expire_locked(now)
            entry = self._entries.get(router_id)
            if entry is None:
                return None, to_close
            if entry.fingerprint != fingerprint:
                # The router's address or credentials changed: never reuse the old login.
                self._drop_locked(router_id, entry, to_close)
                return None, to_close
            if entry.busy:
                return None, to_close  # one job at a time per connection: this one gets its own
            entry.busy = True
            self._entries.move_to_end(router_id)
            return entry, to_close

    def _healthy(self, entry: _Entry) -> bool:
        if not entry.driver.quiet():
            return False  # closed, reset or an unsolicited !fatal: nothing to ask
        if self._clock() - entry.last_heard < self.ping_after:
            return True
        return self._ping(entry)

    def _ping(self, entry: _Entry) -> bool:
        try:
            entry.driver.ping()
        except RouterError:
            return False
        entry.last_heard = self._clock()
        return True

    def _store(self, router_id: int, fingerprint: str, driver: RouterOSDriver) -> tuple[_Entry, bool]:
        """Register a fresh connection (busy); ``transient`` when the router's slot is taken meanwhile."""
        now = self._clock()
        entry = _Entry(fingerprint, driver, opened_at=now, last_used=now, last_heard=now, busy=True)
        to_close: list[RouterOSDriver] = []
        with self._lock:
            if self.max_size <= 0 or router_id in self._entries:
                transient = True
            else:
                self._entries[router_id] = entry
                transient = False
                self._start_sweeper_locked()
                while len(self._entries) > self.max_size:
                    victim_id = next((rid for rid, e in self._entries.items() if not e.busy), None)
                    if victim_id is None:
                        break
                    self._drop_locked(victim_id, self._entries[victim_id], to_close)
        _close_all(to_close)
        return entry, transient

    def _give_back(self, router_id: int, entry: _Entry, transient: bool) -> None:
        lost = not entry.driver.connected
        with self._lock:
            entry.busy = False
            entry.last_used = entry.last_heard = self._clock()
            close = transient or lost or entry.discarded
            if close and self._entries.get(router_id) is entry:
                del self._entries[router_id]
        if close:
            entry.driver.close()

    def _forget(self, router_id: int, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(router_id) is entry:
                del self._entries[router_id]

    # ---- housekeeping ---------------------------------------------------------------------------

    def discard(self, router_id: int) -> None:
        """Close the router's connection (now, or when the job using it is done): deleted or changed."""
        to_close: list[RouterOSDriver] = []
        with self._lock:
            entry = self._entries.get(router_id)
            if entry is not None:
                self._drop_locked(router_id, entry, to_close)
        _close_all(to_close)

    def close_all(self) -> None:
        to_close: list[RouterOSDriver] = []
        with self._lock:
            for router_id, entry in list(self._entries.items()):
                self._drop_locked(router_id, entry, to_close)
        _close_all(to_close)

    def router_ids(self) -> list[int]:
        with self._lock:
            return list(self._entries)

    def _drop_locked(self, router_id: int, entry: _Entry, to_close: list[RouterOSDriver]) -> None:
        del self._entries[router_id]
        if entry.busy:
            entry.discarded = True
        else:
            to_close.append(entry.driver)

    def _expire_locked(self, now: float) -> list[RouterOSDriver]:
        to_close: list[RouterOSDriver] = []
        for router_id, entry in list(self._entries.items()):
            if entry.busy:
                continue
            if now - entry.last_used > self.idle_seconds or now - entry.opened_at > self.max_age_seconds:
                self._drop_locked(router_id, entry, to_close)
        return to_close

    def expire(self) -> None:
        """Close the connections idle or old past their limits."""
        with self._lock:
            to_close = self._expire_locked(self._clock())
        _close_all(to_close)

    def _start_sweeper_locked(self) -> None:
        # Expiry also runs without any further job (a process whose routers all went quiet or were deleted).
        if self._sweeper is None or not self._sweeper.is_alive():
            self._sweeper = threading.Thread(target=self._sweep, name="router-pool-sweeper", daemon=True)
            self._sweeper.start()

    def _sweep(self) -> None:
        while True:
            time.sleep(SWEEP_INTERVAL_SECONDS)
            self.expire()
            self.keep_alive()

    def keep_alive(self) -> None:
        """Ping the idle connections not heard from for ``ping_after / 2`` seconds, one at a time; drop the
        ones that do not answer. Each is lent to the sweeper meanwhile, like to a job."""
        due: list[tuple[int, _Entry]] = []
        if self.ping_after <= 0:  # every loan pings first: nothing to keep alive
            return
        with self._lock:
            now = self._clock()
            for router_id, entry in self._entries.items():
                if not entry.busy and now - entry.last_heard >= self.ping_after / 2:
                    entry.busy = True
                    due.append((router_id, entry))
        for router_id, entry in due:
            alive = entry.driver.quiet() and self._ping(entry)
            with self._lock:
                entry.busy = False
                close = not alive or entry.discarded
                if close and self._entries.get(router_id) is entry:
                    del self._entries[router_id]
            if close:
                entry.driver.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's connections without a word on the wire.

        Garbage collection closes the child's copies of the descriptors (close, not shutdown), which
        leaves the parent's sockets working.
        """
        self._lock = threading.Lock()  # may have been held by another thread of the parent
        self._entries = OrderedDict()
        self._sweeper = None  # threads do not survive a fork


def _close_all(drivers: list[RouterOSDriver]) -> None:
    for driver in drivers:
        driver.close()


# The process's registry (configured by network.services from the settings).
pool = RouterConnectionPool()
os.register_at_fork(after_in_child=pool.after_fork_in_child)
atexit.register(pool.close_all)
