#!/usr/bin/env python
"""Benchmark 3, connections: memory per idle subscribed WebSocket on one daphne process.

Usage (repo root; loopback only)::

    .venv/bin/python tests/benchmarks/connections.py [--levels 1000,5000,10000] [--payments 10]

For each level N a fresh daphne (``bash -c "ulimit -n <hard limit> && exec daphne ..."``, the
embedded system: SQLite, in-memory channel layer, the task consumer inside) is started and warmed
with a few subscriptions that are then closed. Its VmRSS (``/proc/<pid>/status``) is read, then N
graphql-transport-ws connections are opened from 1-4 client processes (asyncio ``websockets``, at
most 2,500 per process, RLIMIT_NOFILE raised), each sending ``connection_init`` with the portal key
and subscribing to ``paymentUpdates`` of one of ``--payments`` PROCESSING payments, and waiting for
the first message. After a settle pause VmRSS is read again: (after - before) / N is the cost of
one idle subscribed connection. Also reported: how long connecting took and daphne's CPU while
the N subscriptions sit idle (their periodic resync).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    CLIENT_SECRET,
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    BenchDaphne,
    Shop,
    bench_env,
    cpu_seconds,
    django_setup,
    finish,
    fmt,
    machine_line,
    raise_open_files_limit,
    rss_kib,
    running,
)

SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id status } }"
)
PER_CLIENT_PROCESS = 2500
TARGET_KIB = 50


# --- client processes ------------------------------------------------------------------------------


async def _hold(url: str, key: str, payment_ids: list[str], count: int, concurrency: int, conn, timeout: float):
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(concurrency)
    sockets = []
    problems: list[str] = []

    async def one(index: int) -> None:
        async with gate:
            try:
                ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=60, ping_interval=None,
                                   max_queue=4)
                sockets.append(ws)
                await ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": key}}))
                ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no ack: {ack}")
                variables = {"id": payment_ids[index % len(payment_ids)], "secret": CLIENT_SECRET}
                await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": {"query": SUBSCRIBE, "variables": variables}}))
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if message.get("type") == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if message.get("type") != "next" or message["payload"].get("errors"):
                        raise RuntimeError(f"first message: {message}")
                    break
            except Exception as exc:  # counted and reported, never fatal to the others
                problems.append(f"{type(exc).__name__}: {exc}"[:200])

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), timeout)
    except TimeoutError:
        problems.append(f"timed out after {timeout:g} s")
    conn.send({"ok": count - len(problems), "failed": len(problems), "seconds": time.perf_counter() - started,
               "problem": problems[0] if problems else None})
    # Idle until told to go; drain whatever arrives (pings are answered by the library).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)
    dropped = sum(1 for ws in sockets if ws.state.name != "OPEN")
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    conn.send({"dropped": dropped})


def client_process(url: str, key: str, payment_ids: list[str], count: int, concurrency: int, conn, timeout: float):
    raise_open_files_limit()
    asyncio.run(_hold(url, key, payment_ids, count, concurrency, conn, timeout))


# --- the parent ----------------------------------------------------------------------------------


@dataclass
class Level:
    connections: int
    ok: int = 0
    failed: int = 0
    dropped: int = 0
    connect_s: float = math.nan
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    idle_cpu_pct: float = math.nan
    processes: int = 0
    problem: str | None = None

    @property
    def kib_each(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.ok if self.ok else math.nan


def stable_rss(pid: int, samples: int = 5, gap: float = 0.2) -> int:
    values = []
    for _ in range(samples):
        values.append(rss_kib(pid))
        time.sleep(gap)
    return sorted(values)[len(values) // 2]


def run_level(n: int, env: dict, work_dir: Path, shop: Shop, payment_ids: list[str], args) -> Level:
    level = Level(n)
    nofile = raise_open_files_limit()
    daphne = BenchDaphne(env, work_dir, f"daphne-{n}", nofile=nofile)
    context = multiprocessing.get_context("spawn")
    with running(daphne):
        daphne.wait_healthy(60)
        pid = daphne.popen.pid
        # Warm-up: load every code path a subscription touches, then let it go.
        warm = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, [20], args)
        _finish(warm)
        time.sleep(args.settle)
        level.rss_before_kib = stable_rss(pid)

        processes = max(1, min(4, math.ceil(n / PER_CLIENT_PROCESS)))
        level.processes = processes
        shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
        started = time.perf_counter()
        clients = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, shares, args)
        for _, conn in clients:
            missing = {"ok": 0, "failed": 0, "problem": "no report"}
            report = conn.recv() if conn.poll(args.connect_timeout + 30) else missing
            level.ok += report["ok"]
            level.failed += report["failed"]
            level.problem = level.problem or report.get("problem")
        level.connect_s = time.perf_counter() - started
        time.sleep(args.settle)
        level.rss_after_kib = stable_rss(pid)
        cpu_before, t_before = cpu_seconds(pid), time.perf_counter()
        time.sleep(args.idle_window)
        level.idle_cpu_pct = 100 * (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - t_before)
        level.dropped = _finish(clients)
        if daphne.popen.poll() is not None:
            level.problem = f"daphne exited with {daphne.popen.returncode}"
    return level


def _spawn(context, url, key, payment_ids, shares, args):
    clients = []
    for share in shares:
        parent_conn, child_conn = context.Pipe()
        process = context.Process(
            target=client_process,
            args=(url, key, payment_ids, share, args.connect_concurrency, child_conn, args.connect_timeout),
            daemon=True,
        )
        process.start()
        clients.append((process, parent_conn))
    if shares == [20]:
        for _, conn in clients:
            conn.recv() if conn.poll(120) else None
    return clients


def _finish(clients) -> int:
    dropped = 0
    for _, conn in clients:
        try:
            conn.send("close")
        except OSError:
            pass
    for process, conn in clients:
        if conn.poll(60):
            try:
                dropped += conn.recv().get("dropped", 0)
            except EOFError:
                pass
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return dropped


def table(levels: list[Level]) -> str:
    lines = [
        "| connections | subscribed ok | failed | client procs | connect s | RSS before MiB | RSS after MiB "
        "| KiB / connection | idle daphne CPU % | dropped |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in levels:
        lines.append(
            f"| {lv.connections} | {lv.ok} | {lv.failed} | {lv.processes} | {fmt(lv.connect_s)} | "
            f"{fmt(lv.rss_before_kib / 1024)} | {fmt(lv.rss_after_kib / 1024)} | **{fmt(lv.kib_each)}** | "
            f"{fmt(lv.idle_cpu_pct)} | {lv.dropped} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1000,5000,10000")
    parser.add_argument("--payments", type=int, default=10, help="payments the subscriptions watch")
    parser.add_argument("--connect-concurrency", type=int, default=100, help="handshakes in flight per client")
    parser.add_argument("--connect-timeout", type=float, default=240.0, help="seconds for one level to connect")
    parser.add_argument("--settle", type=float, default=3.0, help="pause before reading RSS")
    parser.add_argument("--idle-window", type=float, default=10.0, help="seconds over which idle CPU is measured")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    levels_wanted = [int(n) for n in args.levels.split(",") if n.strip()]
    extra = dict(item.split("=", 1) for item in args.env)
    nofile = raise_open_files_limit()

    from tests.fakes.intasend_server import FakeIntaSend

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-conn-"))
    levels: list[Level] = []
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        env = bench_env(work_dir, fake.base_url, database_url=f"sqlite:///{work_dir / 'bench.sqlite3'}", extra=extra)
        django_setup(env)
        from django.db import connections

        shop = Shop.create(fake)
        payment_ids = [payment_id for payment_id, _ in shop.payments(args.payments)]
        connections.close_all()
        for n in levels_wanted:
            if n + 100 > nofile:
                levels.append(Level(n, problem=f"RLIMIT_NOFILE hard limit is {nofile}: daphne cannot hold {n}"))
                continue
            print(f"== {n} connections ==", file=sys.stderr, flush=True)
            try:
                level = run_level(n, env, work_dir, shop, payment_ids, args)
            except Exception as exc:  # one level failing must not lose the others
                level = Level(n, problem=f"{type(exc).__name__}: {exc}"[:300])
            levels.append(level)
            print(table([level]).splitlines()[-1], file=sys.stderr, flush=True)
    print()
    print("### 3. Connections: memory per idle subscribed WebSocket (one daphne process)")
    print()
    print(table(levels))
    print()
    for lv in levels:
        if lv.problem:
            print(f"- {lv.connections}: {lv.problem}")
    print(
        f"Embedded daphne (SQLite, in-memory layer, consumer inside), RLIMIT_NOFILE {nofile}, each connection "
        f"subscribed to one of {args.payments} PROCESSING payments; {machine_line()}. Target: < {TARGET_KIB} KiB each."
    )
    ok = all(lv.problem is None and lv.failed == 0 and lv.dropped == 0 for lv in levels)
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
