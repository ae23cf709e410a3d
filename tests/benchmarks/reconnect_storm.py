#!/usr/bin/env python
"""Benchmark 8, reconnect storm: N portals reconnect at once to one freshly started daphne (issue 14 item 5).

Usage (repo root; loopback only)::

    .venv/bin/python tests/benchmarks/reconnect_storm.py [--levels 1000,5000,10000]
        [--database-url postgres://postgres@127.0.0.1:5432/<own db> --redis-url redis://127.0.0.1:6379/<own db>]
        [--addresses 5000] [--py-spy out.txt]

After a restart every portal reconnects: a WebSocket handshake, ``connection_init`` with the
operator's public key, ``subscribe`` to ``paymentUpdates`` with its clientSecret, and the first
message. For each level N a fresh daphne (RLIMIT_NOFILE raised; embedded: SQLite, in-memory layer,
the task consumer inside; or PostgreSQL + a Redis layer with ``--database-url``/``--redis-url``) is
warmed with a few sockets that are then closed; then 2-4 client processes (asyncio ``websockets``,
started first and released together) open their share of the N sockets with up to
``--in-flight`` portals each mid-handshake at any moment, i.e. as fast as the server accepts them.

The run models portals from many addresses: from loopback all clients share one address, so the
per-address caps and pacing (``project.socket_caps``, ``project.ws_pacing``) are raised for the run
(``common.UNCAPPED_SOCKETS_ENV``: the checks still run, they just never refuse or wait). With
``--addresses K`` daphne trusts loopback as a proxy (``TRUSTED_PROXIES``) and portal i sends
``X-Forwarded-For`` with the i-th of K addresses, so the per-address bookkeeping holds K entries as
behind a real load balancer (0, the default: every portal is 127.0.0.1). Reported:
time from release to the last portal hearing its first message, portals/s, the p50/p99 of one
portal's time, daphne's CPU over the storm
(% of one core and CPU ms per portal), failures. ``--py-spy FILE`` records daphne's stacks
(``py-spy record -f raw``) during the largest level's storm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    CLIENT_SECRET,
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    PAYMENT_UPDATES,
    POSTGRES_ADMIN_DSN,
    UNCAPPED_SOCKETS_ENV,
    BenchDaphne,
    Shop,
    bench_env,
    cpu_seconds,
    django_setup,
    finish,
    fmt,
    machine_line,
    percentile,
    raise_open_files_limit,
    running,
)

SUBSCRIBE = PAYMENT_UPDATES
PER_CLIENT_PROCESS = 2500
TARGET_SECONDS_AT_10K = 20.0


# --- client processes ------------------------------------------------------------------------------


def forwarded_for(index: int, addresses: int) -> dict[str, str]:
    """Portal `index`'s address behind the proxy, one of `addresses` (none: the TCP peer's)."""
    if not addresses:
        return {}
    n = index % addresses
    return {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}


async def _storm(
    url: str, key: str, payment_ids: list[str], share: tuple[int, int], addresses: int, in_flight: int, conn, timeout
):
    from websockets.asyncio.client import connect

    first, count = share  # this process's portals are first .. first + count - 1

    gate = asyncio.Semaphore(in_flight)
    sockets = []
    problems: list[str] = []
    done_at: list[float] = []

    async def one(index: int) -> None:
        async with gate:
            try:
                ws = await connect(
                    url,
                    subprotocols=["graphql-transport-ws"],
                    additional_headers=forwarded_for(first + index, addresses),
                    open_timeout=timeout,
                    ping_interval=None,
                    max_queue=4,
                )
                sockets.append(ws)
                await ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": key}}))
                ack = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no ack: {ack}")
                variables = {"id": payment_ids[index % len(payment_ids)], "secret": CLIENT_SECRET}
                await ws.send(
                    json.dumps(
                        {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
                    )
                )
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                    if message.get("type") == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if message.get("type") != "next" or message["payload"].get("errors"):
                        raise RuntimeError(f"first message: {message}")
                    break
                done_at.append(time.time())
            except Exception as exc:  # counted and reported, never fatal to the others
                problems.append(f"{type(exc).__name__}: {exc}"[:200])

    loop = asyncio.get_running_loop()
    conn.send("ready")
    released_at = await loop.run_in_executor(None, conn.recv)  # the parent's time.time() at release
    try:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout)
    except TimeoutError:
        problems.append(f"timed out after {timeout:g} s")
    conn.send(
        {
            "ok": len(done_at),
            "failed": count - len(done_at),
            "problem": problems[0] if problems else None,
            "seconds": [at - released_at for at in done_at],
        }
    )
    await loop.run_in_executor(None, conn.recv)  # hold the sockets until told to go
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    conn.send("closed")


def client_process(url, key, payment_ids, share: tuple[int, int], addresses: int, in_flight: int, conn, timeout):
    raise_open_files_limit()
    asyncio.run(_storm(url, key, payment_ids, share, addresses, in_flight, conn, timeout))


# --- the parent ----------------------------------------------------------------------------------


@dataclass
class Level:
    portals: int
    processes: int = 0
    ok: int = 0
    failed: int = 0
    all_s: float = math.nan
    cpu_s: float = math.nan
    client_cpu_s: float = math.nan  # the client processes', on the same cores
    seconds: list[float] = field(default_factory=list)
    problem: str | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.all_s if self.ok and self.all_s else math.nan


def _spawn(context, url, key, payment_ids, shares, args) -> list:
    clients = []
    first = 0
    for count in shares:
        parent_conn, child_conn = context.Pipe()
        process = context.Process(
            target=client_process,
            args=(url, key, payment_ids, (first, count), args.addresses, args.in_flight, child_conn, args.timeout),
            daemon=True,
        )
        process.start()
        clients.append((process, parent_conn))
        first += count
    for _, conn in clients:
        if not conn.poll(120) or conn.recv() != "ready":
            raise RuntimeError("a client process never became ready")
    return clients


def _release_and_collect(clients, timeout: float) -> list[dict]:
    released_at = time.time()
    for _, conn in clients:
        conn.send(released_at)
    missing = {"ok": 0, "failed": 0, "seconds": [], "problem": "no report"}
    return [conn.recv() if conn.poll(timeout + 60) else missing for _, conn in clients]


def _close(clients) -> None:
    for _, conn in clients:
        try:
            conn.send("close")
        except OSError:
            pass
    for process, conn in clients:
        if conn.poll(60):
            conn.recv()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


def run_level(n: int, env: dict, work_dir: Path, shop: Shop, payment_ids: list[str], args, profile: str | None):
    level = Level(n)
    nofile = raise_open_files_limit()
    daphne = BenchDaphne(env, work_dir, f"daphne-{n}", nofile=nofile)
    context = multiprocessing.get_context("spawn")
    with running(daphne):
        daphne.wait_healthy(60)
        pid = daphne.popen.pid
        # Warm-up: load every code path a portal touches, then let it go (a restarted server has
        # imported its code but served nothing: this only spares the storm the imports).
        warm = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, [20], args)
        _release_and_collect(warm, args.timeout)
        _close(warm)
        time.sleep(1.0)

        level.processes = max(args.min_processes, min(4, math.ceil(n / PER_CLIENT_PROCESS)))
        shares = [n // level.processes + (1 if i < n % level.processes else 0) for i in range(level.processes)]
        clients = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, shares, args)
        spy = None
        if profile:
            spy = subprocess.Popen(
                [args.py_spy_bin, "record", "-p", str(pid), "-f", "raw", "-o", profile, "-r", "50", "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        client_pids = [process.pid for process, _ in clients]
        cpu_before, client_cpu_before = cpu_seconds(pid), cpu_seconds(*client_pids)
        reports = _release_and_collect(clients, args.timeout)
        level.cpu_s = cpu_seconds(pid) - cpu_before
        level.client_cpu_s = cpu_seconds(*client_pids) - client_cpu_before
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes what it has
            spy.wait(timeout=60)
        for report in reports:
            level.ok += report["ok"]
            level.failed += report["failed"]
            level.seconds += report["seconds"]
            level.problem = level.problem or report.get("problem")
        level.all_s = max(level.seconds, default=math.nan)
        _close(clients)
        if daphne.popen.poll() is not None:
            level.problem = f"daphne exited with {daphne.popen.returncode}"
    return level


def table(levels: list[Level]) -> str:
    lines = [
        "| portals | subscribed | failed | client procs | **all subscribed s** | portals / s | one portal p50 s "
        "| p99 s | daphne CPU s | CPU % of a core | CPU ms / portal | clients' CPU s | machine busy % |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in levels:
        busy = 100 * lv.cpu_s / lv.all_s if lv.all_s else math.nan
        per = 1000 * lv.cpu_s / lv.ok if lv.ok else math.nan
        machine = 100 * (lv.cpu_s + lv.client_cpu_s) / (lv.all_s * (os.cpu_count() or 1)) if lv.all_s else math.nan
        lines.append(
            f"| {lv.portals} | {lv.ok} | {lv.failed} | {lv.processes} | **{fmt(lv.all_s)}** | {fmt(lv.rate, 0)} | "
            f"{fmt(percentile(lv.seconds, 50))} | {fmt(percentile(lv.seconds, 99))} | {fmt(lv.cpu_s)} | "
            f"{fmt(busy, 0)} | {fmt(per, 2)} | {fmt(lv.client_cpu_s)} | {fmt(machine, 0)} |"
        )
    return "\n".join(lines)


def _fresh_postgres_database(url: str) -> None:
    import psycopg2

    name = urlsplit(url).path.lstrip("/")
    # Another session's database is never dropped: only a benchmark's or a helper's own.
    if name in {"test", "postgres", "cloudpilot_redis"} or not name.startswith("cloudpilot_"):
        raise SystemExit(f"refusing to recreate database {name!r}")
    admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1000,5000,10000")
    parser.add_argument("--payments", type=int, default=10, help="payments the portals subscribe to")
    parser.add_argument("--in-flight", type=int, default=200, help="portals mid-setup at once per client process")
    parser.add_argument(
        "--addresses", type=int, default=0, help="client addresses behind a trusted proxy (0: all 127.0.0.1)"
    )
    parser.add_argument("--min-processes", type=int, default=2, help="client processes (2-4 by N)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one level may take")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL database (dropped and created anew; its name must start with cloudpilot_)",
    )
    parser.add_argument("--redis-url", default=None, help="Redis channel layer (with --database-url: scaled mode)")
    parser.add_argument("--py-spy", default=None, metavar="FILE", help="py-spy raw profile of the largest level")
    parser.add_argument("--py-spy-bin", default=str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    levels_wanted = [int(n) for n in args.levels.split(",") if n.strip()]
    extra = {
        **UNCAPPED_SOCKETS_ENV,  # many addresses, not one: see the module docstring
        **({"TRUSTED_PROXIES": "127.0.0.1"} if args.addresses else {}),
        **dict(item.split("=", 1) for item in args.env),
    }
    nofile = raise_open_files_limit()
    if args.py_spy and not shutil.which(args.py_spy_bin):
        raise SystemExit(f"no py-spy at {args.py_spy_bin} (.venv/bin/pip install py-spy)")

    from tests.fakes.intasend_server import FakeIntaSend

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-storm-"))
    levels: list[Level] = []
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        if args.database_url:
            _fresh_postgres_database(args.database_url)
        database_url = args.database_url or f"sqlite:///{work_dir / 'bench.sqlite3'}"
        env = bench_env(work_dir, fake.base_url, database_url=database_url, redis_url=args.redis_url, extra=extra)
        django_setup(env)
        from django.db import connections

        shop = Shop.create(fake)
        payment_ids = [payment_id for payment_id, _ in shop.payments(args.payments)]
        connections.close_all()
        for n in levels_wanted:
            if n + 100 > nofile:
                levels.append(Level(n, problem=f"RLIMIT_NOFILE is {nofile}: daphne cannot hold {n}"))
                continue
            print(f"== {n} portals ==", file=sys.stderr, flush=True)
            profile = args.py_spy if n == max(levels_wanted) else None
            try:
                level = run_level(n, env, work_dir, shop, payment_ids, args, profile)
            except Exception as exc:  # one level failing must not lose the others
                level = Level(n, problem=f"{type(exc).__name__}: {exc}"[:300])
            levels.append(level)
            print(table([level]).splitlines()[-1], file=sys.stderr, flush=True)
    mode = "PostgreSQL + Redis layer" if args.redis_url else "embedded (SQLite, in-memory layer)"
    print()
    print(f"### 8. Reconnect storm: N portals reconnect at once ({mode})")
    print()
    print(table(levels))
    print()
    for lv in levels:
        if lv.problem:
            print(f"- {lv.portals}: {lv.problem}")
    print(
        f"One daphne, RLIMIT_NOFILE {nofile}; each portal: handshake, connection_init with the public key, "
        f"subscribe paymentUpdates (one of {args.payments} PROCESSING payments) with its clientSecret, first "
        f"message; up to {args.in_flight} in flight per client process; per-address caps and pacing raised "
        f"(many addresses); client addresses: {args.addresses or '127.0.0.1 only'}; {machine_line()}. "
        f"Target: 10,000 in <= {TARGET_SECONDS_AT_10K:.0f} s."
    )
    ok = all(lv.problem is None and lv.failed == 0 for lv in levels)
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
