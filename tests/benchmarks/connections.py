#!/usr/bin/env python
"""Benchmark 3, connections: memory per idle subscribed WebSocket on one daphne process.

Usage (repo root; loopback only)::

    .venv/bin/python tests/benchmarks/connections.py [--levels 1000,5000,10000] [--payments 10]
        [--mode embedded|scaled] [--database cloudpilot_bench_connections] [--redis-url redis://127.0.0.1:6379/11]

For each level N a fresh daphne (``bash -c "ulimit -n <hard limit> && exec daphne ..."``; mode
``embedded``: SQLite, in-memory channel layer, the task consumer inside; mode ``scaled``: a fresh
PostgreSQL database and REDIS_URL (flushed first), one daphne, no worker) is started and warmed
with a few subscriptions that are then closed. Its VmRSS (``/proc/<pid>/status``) is read, then N
graphql-transport-ws connections are opened from 1-4 client processes (asyncio ``websockets``, at
most 2,500 per process, RLIMIT_NOFILE raised), each sending ``connection_init`` with the portal key
and subscribing to ``paymentUpdates`` of one of ``--payments`` PROCESSING payments, and waiting for
the first message. After a settle pause VmRSS is read again: (after - before) / N is the cost of
one idle subscribed connection. Also reported: how long connecting took and daphne's CPU while
the N subscriptions sit idle (their periodic resync).

Stalls (issue 14 items 1 and 2), per phase: ``setup`` (the N sockets connecting and subscribing),
``idle`` (the settle pause and the idle window) and ``close`` (all N closing). A thread GETs
``/healthz/`` every ``--health-interval`` seconds throughout (p50, max, non-200 answers). Every
garbage collection in daphne is timed by a ``gc.callbacks`` probe the benchmark injects
(``sitecustomize`` on daphne's PYTHONPATH, writing one line per collection), so versions without
the server's own probe are measured the same way; the longest pause per phase and the number of
full (generation 2) collections are reported, and, where the server has it, the longest pause its
``/metrics`` reports (``cloudpilot_gc_longest_pause_seconds``), as a check of that probe.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    CLIENT_SECRET,
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    PAYMENT_UPDATES,
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
    postgres_database,
    raise_open_files_limit,
    rss_kib,
    running,
)

SUBSCRIBE = PAYMENT_UPDATES
PER_CLIENT_PROCESS = 2500
TARGET_KIB = 50
TARGET_GC_PAUSE_MS = 200
METRICS_TOKEN = "bench-metrics-token-0123456789abcdef"
PHASES = ("setup", "idle", "close")
# One address opens every socket here: the per-address caps and pacing (issue 9) would refuse or
# pace them, which is not what this measures. (Versions without these settings ignore them.)
SERVER_ENV = {**UNCAPPED_SOCKETS_ENV, "METRICS_TOKEN": METRICS_TOKEN}
# Imported by every Python process started with the benchmark's PYTHONPATH (daphne, migrate):
# "<unix time> <generation> <seconds> <collected> <CPU seconds>" per collection, into gc-<pid>.log.
# The CPU time (of the collecting thread) tells the collector's work from the machine's other load.
GC_PROBE = """
import gc, os, time

_dir = os.environ.get("BENCH_GC_LOG_DIR")
if _dir:
    _log = open(os.path.join(_dir, f"gc-{os.getpid()}.log"), "a", buffering=1)
    _started = [0.0, 0.0]

    def _bench_gc_probe(phase, info):
        if phase == "start":
            _started[:] = time.perf_counter(), time.thread_time()
        else:
            seconds, cpu = time.perf_counter() - _started[0], time.thread_time() - _started[1]
            _log.write(f"{time.time():.3f} {info['generation']} {seconds:.6f} {info['collected']} {cpu:.6f}\\n")

    gc.callbacks.append(_bench_gc_probe)
"""


# --- client processes ------------------------------------------------------------------------------


async def _hold(url: str, key: str, payment_ids: list[str], count: int, concurrency: int, conn, timeout: float):
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(concurrency)
    sockets = []
    problems: list[str] = []

    async def one(index: int) -> None:
        async with gate:
            try:
                ws = await connect(
                    url, subprotocols=["graphql-transport-ws"], open_timeout=60, ping_interval=None, max_queue=4
                )
                sockets.append(ws)
                await ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": key}}))
                ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no ack: {ack}")
                variables = {"id": payment_ids[index % len(payment_ids)], "secret": CLIENT_SECRET}
                await ws.send(
                    json.dumps(
                        {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
                    )
                )
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
    conn.send(
        {
            "ok": count - len(problems),
            "failed": len(problems),
            "seconds": time.perf_counter() - started,
            "problem": problems[0] if problems else None,
        }
    )
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
    # per phase: longest GC pause (s), full collections, /healthz/ latencies (s) and non-200 answers
    gc_max_s: dict = field(default_factory=dict)
    gc_max_cpu_s: dict = field(default_factory=dict)
    gc_total_s: dict = field(default_factory=dict)
    gc_full: dict = field(default_factory=dict)
    health_s: dict = field(default_factory=dict)
    health_bad: dict = field(default_factory=dict)
    metrics_longest_s: float = math.nan

    @property
    def kib_each(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.ok if self.ok else math.nan


def stable_rss(pid: int, samples: int = 5, gap: float = 0.2) -> int:
    values = []
    for _ in range(samples):
        values.append(rss_kib(pid))
        time.sleep(gap)
    return sorted(values)[len(values) // 2]


class HealthPoller(threading.Thread):
    """GETs /healthz/ every `interval` seconds, filing each answer's latency under the current phase."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.phase: str | None = None
        self.samples: dict[str, list[tuple[float, bool]]] = {phase: [] for phase in PHASES}
        self.stopped = threading.Event()

    def run(self) -> None:
        import requests

        while not self.stopped.is_set():
            phase, started = self.phase, time.perf_counter()
            try:
                ok = requests.get(f"{self.url}/healthz/", timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            if phase in self.samples:
                self.samples[phase].append((time.perf_counter() - started, ok))
            self.stopped.wait(max(0.0, self.interval - (time.perf_counter() - started)))


def gc_pauses(log: Path) -> list[tuple[float, int, float, float]]:
    """(unix time, generation, seconds, CPU seconds) of each collection the injected probe logged."""
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5:
            rows.append((float(parts[0]), int(parts[1]), float(parts[2]), float(parts[4])))
    return rows


def metrics_longest_pause(url: str) -> float:
    """The server's own probe (/metrics), where the version has it."""
    import requests

    try:
        text = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    except requests.RequestException:
        return math.nan
    for line in text.splitlines():
        if line.startswith("cloudpilot_gc_longest_pause_seconds "):
            return float(line.split()[1])
    return math.nan


def run_level(n: int, env: dict, work_dir: Path, shop: Shop, payment_ids: list[str], args) -> Level:
    level = Level(n)
    nofile = raise_open_files_limit()
    daphne = BenchDaphne(env, work_dir, f"daphne-{n}", nofile=nofile)
    context = multiprocessing.get_context("spawn")
    poller = HealthPoller(daphne.url, args.health_interval)
    bounds: dict[str, tuple[float, float]] = {}
    with running(daphne):
        daphne.wait_healthy(60)
        pid = daphne.popen.pid
        poller.start()
        # Warm-up: load every code path a subscription touches, then let it go.
        warm = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, [20], args)
        _finish(warm)
        time.sleep(args.settle)
        level.rss_before_kib = stable_rss(pid)

        processes = max(1, min(4, math.ceil(n / PER_CLIENT_PROCESS)))
        level.processes = processes
        shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
        poller.phase, phase_started = "setup", time.time()
        started = time.perf_counter()
        clients = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, shares, args)
        for _, conn in clients:
            missing = {"ok": 0, "failed": 0, "problem": "no report"}
            report = conn.recv() if conn.poll(args.connect_timeout + 30) else missing
            level.ok += report["ok"]
            level.failed += report["failed"]
            level.problem = level.problem or report.get("problem")
        level.connect_s = time.perf_counter() - started
        bounds["setup"] = (phase_started, time.time())
        poller.phase, phase_started = "idle", time.time()
        time.sleep(args.settle)
        level.rss_after_kib = stable_rss(pid)
        cpu_before, t_before = cpu_seconds(pid), time.perf_counter()
        time.sleep(args.idle_window)
        level.idle_cpu_pct = 100 * (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - t_before)
        bounds["idle"] = (phase_started, time.time())
        poller.phase, phase_started = "close", time.time()
        level.dropped = _finish(clients)
        time.sleep(args.settle)  # what closing leaves to collect
        bounds["close"] = (phase_started, time.time())
        poller.phase = None
        level.metrics_longest_s = metrics_longest_pause(daphne.url)
        poller.stopped.set()
        poller.join(timeout=70)
        if daphne.popen.poll() is not None:
            level.problem = f"daphne exited with {daphne.popen.returncode}"
    pauses = gc_pauses(work_dir / f"gc-{pid}.log")
    for phase, (start, end) in bounds.items():
        inside = [(generation, seconds, cpu) for at, generation, seconds, cpu in pauses if start <= at <= end]
        level.gc_max_s[phase] = max((seconds for _, seconds, _ in inside), default=math.nan if not pauses else 0.0)
        level.gc_max_cpu_s[phase] = max((cpu for _, _, cpu in inside), default=math.nan if not pauses else 0.0)
        level.gc_full[phase] = sum(1 for generation, _, _ in inside if generation == 2)
        level.gc_total_s[phase] = sum(seconds for _, seconds, _ in inside)
    for phase, samples in poller.samples.items():
        level.health_s[phase] = [seconds for seconds, _ in samples]
        level.health_bad[phase] = sum(1 for _, ok in samples if not ok)
    return level


def run_churn(n: int, env: dict, work_dir: Path, shop: Shop, payment_ids: list[str], args) -> list[int]:
    """`--churn K`: N sockets open, held `--churn-hold` s, closed, K times over; daphne's VmRSS (KiB)
    before and after each round. Garbage the server can never collect shows as RSS growing every round."""
    nofile = raise_open_files_limit()
    daphne = BenchDaphne(env, work_dir, f"daphne-churn-{n}", nofile=nofile)
    context = multiprocessing.get_context("spawn")
    shares = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)] if n > PER_CLIENT_PROCESS else [n]
    with running(daphne):
        daphne.wait_healthy(60)
        _finish(_spawn(context, daphne.ws_url, shop.public_key, payment_ids, [20], args))
        time.sleep(args.settle)
        rss = [stable_rss(daphne.popen.pid)]
        for round_ in range(args.churn):
            clients = _spawn(context, daphne.ws_url, shop.public_key, payment_ids, shares, args)
            failed = 0
            for _, conn in clients:
                failed += conn.recv()["failed"] if conn.poll(args.connect_timeout + 30) else n
            time.sleep(args.churn_hold)
            _finish(clients)
            time.sleep(args.settle)
            rss.append(stable_rss(daphne.popen.pid))
            print(f"churn {n}: round {round_ + 1}, {failed} failed, RSS {rss[-1] / 1024:.1f} MiB", file=sys.stderr)
    return rss


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


def stall_table(levels: list[Level]) -> str:
    lines = [
        "| connections | phase | longest GC pause ms | its CPU ms | all GC s | full collections | /healthz/ p50 ms "
        "| /healthz/ max ms | /healthz/ polls (non-200) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in levels:
        for phase in PHASES:
            if phase not in lv.gc_max_s:
                continue
            health = lv.health_s.get(phase, [])
            lines.append(
                f"| {lv.connections} | {phase} | **{fmt(1000 * lv.gc_max_s[phase], 0)}** | "
                f"{fmt(1000 * lv.gc_max_cpu_s[phase], 0)} | {fmt(lv.gc_total_s[phase])} | {lv.gc_full[phase]} | "
                f"{fmt(1000 * percentile(health, 50), 0)} | {fmt(1000 * max(health, default=math.nan), 0)} | "
                f"{len(health)} ({lv.health_bad.get(phase, 0)}) |"
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
    parser.add_argument("--mode", choices=("embedded", "scaled"), default="embedded")
    parser.add_argument(
        "--database", default="cloudpilot_bench_connections", help="scaled: PostgreSQL db (made afresh)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="scaled: Redis db (flushed first)")
    parser.add_argument("--health-interval", type=float, default=0.5, help="seconds between /healthz/ polls")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--churn", type=int, default=0, help="instead: open and close each level this many times")
    parser.add_argument("--churn-hold", type=float, default=10.0, help="seconds the churn's sockets stay open")
    args = parser.parse_args(argv)
    levels_wanted = [int(n) for n in args.levels.split(",") if n.strip()]
    extra = dict(item.split("=", 1) for item in args.env)
    extra_shown = " ".join(args.env) or "default settings"
    nofile = raise_open_files_limit()

    from tests.fakes.intasend_server import FakeIntaSend

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-conn-"))
    probe_dir = work_dir / "gc-probe"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(GC_PROBE)
    extra = {
        **SERVER_ENV,
        "BENCH_GC_LOG_DIR": str(work_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")])),
        **extra,
    }
    levels: list[Level] = []
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        if args.mode == "scaled":
            import redis

            postgres_database(args.database, "create")
            stack.callback(postgres_database, args.database, "drop")
            redis.Redis.from_url(args.redis_url).flushdb()
            database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
        else:
            database_url = f"sqlite:///{work_dir / 'bench.sqlite3'}"
        redis_url = args.redis_url if args.mode == "scaled" else None
        env = bench_env(work_dir, fake.base_url, database_url=database_url, redis_url=redis_url, extra=extra)
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
            if args.churn:
                rss = run_churn(n, env, work_dir, shop, payment_ids, args)
                print(f"\n#### Churn: {n} sockets opened and closed {args.churn} times ({args.mode}, {extra_shown})\n")
                print("| after round | " + " | ".join(str(i) for i in range(len(rss))) + " |")
                print("| --- |" + " ---: |" * len(rss))
                print("| daphne VmRSS MiB | " + " | ".join(fmt(kib / 1024) for kib in rss) + " |")
                continue
            try:
                level = run_level(n, env, work_dir, shop, payment_ids, args)
            except Exception as exc:  # one level failing must not lose the others
                level = Level(n, problem=f"{type(exc).__name__}: {exc}"[:300])
            levels.append(level)
            print(table([level]).splitlines()[-1], file=sys.stderr, flush=True)
            print("\n".join(stall_table([level]).splitlines()[2:]), file=sys.stderr, flush=True)
        connections.close_all()
    if args.churn:
        print(machine_line())
        return finish(work_dir, ok=True, keep_logs=args.keep_logs)
    setup = (
        "Embedded daphne (SQLite, in-memory layer, consumer inside)"
        if args.mode == "embedded"
        else "Scaled daphne (PostgreSQL, Redis channel layer and queue, no worker)"
    )
    print()
    print(f"### 3. Connections: memory per idle subscribed WebSocket (one daphne process, {args.mode})")
    print()
    print(table(levels))
    print()
    for lv in levels:
        if lv.problem:
            print(f"- {lv.connections}: {lv.problem}")
    print(
        f"{setup}, RLIMIT_NOFILE {nofile}, each connection "
        f"subscribed to one of {args.payments} PROCESSING payments; {machine_line()}. Target: < {TARGET_KIB} KiB each."
    )
    print()
    print(f"#### GC pauses and /healthz/ while connecting, idle and closing ({args.mode})")
    print()
    print(stall_table(levels))
    print()
    print(
        f"GC pauses from a gc.callbacks probe injected into daphne; /healthz/ every {args.health_interval:g} s. "
        f"Longest pause on the server's own /metrics over the whole level: "
        + ", ".join(f"{lv.connections}: {fmt(1000 * lv.metrics_longest_s, 0)} ms" for lv in levels)
        + f". Target: no pause over {TARGET_GC_PAUSE_MS} ms."
    )
    ok = all(lv.problem is None and lv.failed == 0 and lv.dropped == 0 for lv in levels)
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
