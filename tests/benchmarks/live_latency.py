#!/usr/bin/env python
"""Webhook → subscriber latency: how long after IntaSend's COMPLETE webhook a portal hears COMPLETED.

Usage (from the repo root; loopback only; needs Redis and PostgreSQL for the scaled mode)::

    .venv/bin/python tests/benchmarks/live_latency.py [--modes embedded,scaled]
        [--subscribers 1,100,1000] [--samples N] [--gap-ms 20] [--env KEY=VALUE ...] [--json out.json]

For each mode the script runs the real system as separate processes:

* ``embedded``: one ``daphne project.asgi:application`` (no REDIS_URL: SQLite database, SQLite
  task queue whose consumer runs inside daphne, in-memory channel layer);
* ``scaled``: REDIS_URL (db 8, flushed first) + PostgreSQL (a fresh database, dropped afterwards),
  two daphne processes A and B and one ``manage.py run_huey``; subscribers connect to B,
  webhooks go to A.

For each subscriber count N it opens N graphql-transport-ws connections (one process, asyncio),
each subscribed to ``paymentUpdates`` of its own PROCESSING payment, and waits until every one got
its first message. Then, one sample at a time: settle a random subscriber's invoice at the loopback
IntaSend, take t0, POST the webhook body to daphne (A), record when the POST returned 200 and
when that subscriber received status COMPLETED (t1). latency = t1 - t0 (one process, one
monotonic clock). The completed subscriber is then replaced by a fresh one on a fresh payment, so
exactly N subscriptions are live at every webhook; a short gap separates webhooks so this measures
latency, not a burst. The POST→200 times of the same webhooks are reported as the baseline.

Also reported per row: how long the N subscriptions took to open, the server processes' CPU over
5 idle seconds with the N subscriptions open, the machine's load average (other work on the
machine skews everything: check it), and where the time goes: four stages cut by timestamps the
system writes anyway (WebhookDelivery.received_at, the status request the loopback IntaSend sees,
the COMPLETED PaymentEvent.created_at), wall clock across processes of one machine.

Each mode runs in a child interpreter of this script (Django's settings are per process). Exit
status 1 if a row failed, a COMPLETED never arrived (``--timeout``) or a subscription dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.benchmarks.common import (  # noqa: E402
    CLIENT_SECRET,
    DEPLOYED_WORKER_ENV,
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    PAYMENT_UPDATES,
    WEBHOOK_CHALLENGE,
    Shop,
    bench_env,
    cpu_seconds,
    django_setup,
    finish,
    fmt,
    percentile,
    postgres_database,
    raise_open_files_limit,
)

MODES = ("embedded", "scaled")
REDIS_URL = "redis://127.0.0.1:6379/8"
POSTGRES_DB = "cloudpilot_bench_latency"

SUBSCRIBE = PAYMENT_UPDATES

# --- results -------------------------------------------------------------------------------------


@dataclass
class Row:
    mode: str
    subscribers: int
    samples: int = 0
    missed: int = 0
    dropped: int = 0  # subscriptions that ended or errored on their own during the row
    latencies_ms: list[float] = field(default_factory=list)
    webhook_ms: list[float] = field(default_factory=list)
    connect_s: float = 0.0
    idle_cpu_pct: float = math.nan  # the server processes' CPU while the N subscribers sit idle (100 = one core)
    load_1m: float = math.nan  # the machine's 1-minute load average when the row ended (noise check)
    # Where the time goes, per sample (wall clock, same host): see STAGES.
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None


# t0 = POST sent; "stored" = the webhook's WebhookDelivery row (received_at); "status call" = the
# confirmation job's request to IntaSend's status API (seen by the loopback fake); "applied" = the
# COMPLETED PaymentEvent (created_at, inside the job's transaction); t1 = the subscriber has it.
STAGES = {
    "POST→stored": ("t0", "stored"),
    "stored→status call (commit, enqueue, queue wait)": ("stored", "status_call"),
    "status call→applied": ("status_call", "applied"),
    "applied→subscriber (commit, publish, re-read, push)": ("applied", "t1"),
}


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| mode | subscribers | samples | p50 ms | p99 ms | min ms | max ms "
        "| webhook POST→200 p50 / p99 ms | connect all s | idle server CPU % | load 1m |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.mode} | {row.subscribers} | error: {row.error} | | | | | | | | |")
            continue
        lat, hook = row.latencies_ms, row.webhook_ms
        samples = f"{row.samples}" + (f" ({row.missed} missed)" if row.missed else "")
        if row.dropped:
            samples += f" ({row.dropped} dropped)"
        lines.append(
            f"| {row.mode} | {row.subscribers} | {samples} | {fmt(percentile(lat, 50))} | {fmt(percentile(lat, 99))} | "
            f"{fmt(min(lat) if lat else math.nan)} | {fmt(max(lat) if lat else math.nan)} | "
            f"{fmt(percentile(hook, 50))} / {fmt(percentile(hook, 99))} | {row.connect_s:.1f} | "
            f"{fmt(row.idle_cpu_pct)} | {fmt(row.load_1m)} |"
        )
    return "\n".join(lines)


def stages_table(rows: list[Row]) -> str:
    names = list(STAGES)
    lines = [
        "| mode | subscribers | " + " | ".join(f"{name} p50 / p99 ms" for name in names) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for row in rows:
        if row.error or not row.stages_ms:
            continue
        cells = []
        for name in names:
            values = row.stages_ms.get(name, [])
            cells.append(f"{fmt(percentile(values, 50))} / {fmt(percentile(values, 99))}")
        lines.append(f"| {row.mode} | {row.subscribers} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the parent: one child interpreter per mode ----------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,scaled", help="comma-separated: embedded,scaled")
    parser.add_argument("--subscribers", default="1,100,1000", help="comma-separated subscriber counts")
    parser.add_argument(
        "--samples", type=int, default=None, help="webhooks measured per row (default: min(max(N, 50), 200))"
    )
    parser.add_argument("--warmup", type=int, default=2, help="webhooks completed before measuring each row")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause after one sample, before the next webhook")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for one COMPLETED before a miss")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="WebSocket handshakes in flight at once")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the server processes"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs directory")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.mode_list = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    for mode in args.mode_list:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}")
    args.subscriber_list = [int(n) for n in args.subscribers.split(",") if n.strip()]
    if any(n < 1 for n in args.subscriber_list):
        parser.error("subscriber counts must be positive")
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    return args


def samples_for(args: argparse.Namespace, subscribers: int) -> int:
    return args.samples if args.samples is not None else min(max(subscribers, 50), 200)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_files_limit()
    if args.child:
        return child_main(args)

    started = time.monotonic()
    rows: list[Row] = []
    for mode in args.mode_list:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        child_argv = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
        child_argv += ["--child", mode, "--child-out", str(out)]
        print(f"== {mode} ==", file=sys.stderr, flush=True)
        code = subprocess.call(child_argv, cwd=REPO)
        try:
            produced = [Row(**item) for item in json.loads(out.read_text() or "[]")]
        except (OSError, json.JSONDecodeError):
            produced = []
        finally:
            out.unlink(missing_ok=True)
        if code != 0 and not produced:
            produced = [Row(mode=mode, subscribers=n, error=f"exit {code}") for n in args.subscriber_list]
        rows.extend(produced)

    print()
    print(markdown_table(rows))
    print()
    print("Where the time goes (per stage, wall clock across processes; ms):")
    print()
    print(stages_table(rows))
    print()
    print(
        f"gap {args.gap_ms:g} ms, warm-up {args.warmup}, timeout {args.timeout:g} s, "
        f"server env overrides: {args.extra_env or 'none'}; total {time.monotonic() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))
    return 0 if all(row.error is None and not row.missed and not row.dropped for row in rows) else 1


# --- the child: one mode -------------------------------------------------------------------------


def server_env(mode: str, work_dir: Path, intasend_base_url: str, extra: dict[str, str]) -> dict[str, str]:
    if mode == "embedded":
        database_url, redis_url = f"sqlite:///{work_dir / 'bench.sqlite3'}", None
    else:
        database_url, redis_url = f"postgres://postgres@127.0.0.1:5432/{POSTGRES_DB}", REDIS_URL
    return bench_env(work_dir, intasend_base_url, database_url=database_url, redis_url=redis_url, extra=extra)


def child_main(args: argparse.Namespace) -> int:
    from tests.fakes.intasend_server import FakeIntaSend

    mode: str = args.child
    rows: list[Row] = []
    work_dir = Path(tempfile.mkdtemp(prefix=f"cloudpilot-bench-{mode}-"))
    ok = False
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        status_calls = record_status_calls(fake)
        env = server_env(mode, work_dir, fake.base_url, args.extra_env)
        if mode == "scaled":
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            postgres_database(POSTGRES_DB, "create")
            stack.callback(postgres_database, POSTGRES_DB, "drop")
        try:
            django_setup(env)  # this process seeds the data through Django with the servers' settings
        except RuntimeError as exc:
            sys.stderr.write(f"{exc}\n")
            rows = [Row(mode=mode, subscribers=n, error="migrate failed") for n in args.subscriber_list]
            args.child_out.write_text(json.dumps([asdict(row) for row in rows]))
            return 1
        from django.db import connections

        stack.callback(connections.close_all)  # before the database is dropped
        shop = Shop.create(fake)

        from tests.live import Daphne, Process, running

        if mode == "embedded":
            web = Daphne(env, work_dir, "daphne")
            processes: list[Process] = [web]
            webhook_server, subscriber_server = web, web
        else:
            server_a, server_b = Daphne(env, work_dir, "daphne-a"), Daphne(env, work_dir, "daphne-b")
            worker = Process(
                "huey", [sys.executable, "manage.py", "run_huey"], {**env, **DEPLOYED_WORKER_ENV}, work_dir
            )
            processes = [server_a, server_b, worker]
            webhook_server, subscriber_server = server_a, server_b
        try:
            with running(*processes):
                for process in processes:
                    if isinstance(process, Daphne):
                        process.wait_healthy(60)
                for subscribers in args.subscriber_list:
                    row = Row(mode=mode, subscribers=subscribers)
                    samples = samples_for(args, subscribers)
                    timings: list[SampleTiming] = []
                    try:
                        pool = shop.payments(subscribers + args.warmup + samples)
                        asyncio.run(
                            measure(
                                row,
                                shop=shop,
                                pool=pool,
                                timings=timings,
                                webhook_url=f"{webhook_server.url}/payments/webhook/",
                                ws_url=subscriber_server.ws_url,
                                server_pids=[process.popen.pid for process in processes],
                                samples=samples,
                                args=args,
                            )
                        )
                        row.stages_ms = stage_breakdown(timings, status_calls)
                        row.load_1m = os.getloadavg()[0]
                    except Exception as exc:  # one row failing must not lose the others
                        row.error = f"{type(exc).__name__}: {exc}"[:200]
                    rows.append(row)
                    print(markdown_table([row]).splitlines()[-1], file=sys.stderr, flush=True)
                    for process in processes:
                        if process.popen.poll() is not None:
                            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
            ok = all(row.error is None and not row.dropped for row in rows)
        except Exception as exc:
            sys.stderr.write(f"{mode}: {type(exc).__name__}: {exc}\n")
            done = {row.subscribers for row in rows}
            rows += [Row(mode=mode, subscribers=n, error=str(exc)[:200]) for n in args.subscriber_list if n not in done]
        finally:
            args.child_out.write_text(json.dumps([asdict(row) for row in rows]))
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs, label=f"{mode}: ")


# --- seed data (this process's Django, the same database as the servers) -------------------------


# --- where the time goes ---------------------------------------------------------------------------

# perf_counter (precise, monotonic) → wall clock, to line up with timestamps other processes wrote.
WALL_OFFSET = time.time() - time.perf_counter()


@dataclass
class SampleTiming:
    payment_id: str
    invoice_id: str
    t0: float
    t1: float


def record_status_calls(fake) -> dict[str, float]:
    """Note (wall clock) when the fake first hears a status request for each invoice."""
    seen: dict[str, float] = {}
    original = fake.ledger.record

    def record(request) -> None:
        if request.path.endswith("/payment/status/") and isinstance(request.json, dict):
            seen.setdefault(str(request.json.get("invoice_id")), time.time())
        original(request)

    fake.ledger.record = record
    return seen


def stage_breakdown(timings: list[SampleTiming], status_calls: dict[str, float]) -> dict[str, list[float]]:
    from billing.models import Payment, PaymentEvent, WebhookDelivery

    ids = [t.payment_id for t in timings]
    stored = {}
    for delivery in WebhookDelivery.objects.filter(payment_id__in=ids).order_by("received_at"):
        stored.setdefault(str(delivery.payment_id), delivery.received_at.timestamp())
    applied = {
        str(event.payment_id): event.created_at.timestamp()
        for event in PaymentEvent.objects.filter(payment_id__in=ids, new_status=Payment.Status.COMPLETED)
    }
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for timing in timings:
        points = {
            "t0": timing.t0,
            "stored": stored.get(timing.payment_id),
            "status_call": status_calls.get(timing.invoice_id),
            "applied": applied.get(timing.payment_id),
            "t1": timing.t1,
        }
        for name, (start, end) in STAGES.items():
            if points[start] is not None and points[end] is not None:
                stages[name].append((points[end] - points[start]) * 1000)
    return stages


# --- the measurement (asyncio: all subscribers in this one process) ------------------------------

IDLE_CPU_WINDOW_S = 5.0


class Subscriber:
    """One portal: a graphql-transport-ws connection subscribed to its payment's updates."""

    def __init__(self, payment_id: str, invoice_id: str) -> None:
        self.payment_id = payment_id
        self.invoice_id = invoice_id
        self.ws = None
        self.finished = asyncio.Event()  # COMPLETED arrived, or the subscription broke
        self.completed_at: float | None = None
        self.problem: str | None = None
        self._first = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task | None = None

    async def open(self, url: str, public_key: str, timeout: float) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=timeout, ping_interval=None)
        await self.ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": public_key}}))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        self._reader = asyncio.create_task(self._read())
        variables = {"id": self.payment_id, "secret": CLIENT_SECRET}
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
        await self.ws.send(json.dumps(subscribe))
        status = await asyncio.wait_for(asyncio.shield(self._first), timeout)
        if status != "PROCESSING":
            raise RuntimeError(f"first message of {self.payment_id} was {status}, not PROCESSING")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        self._problem(f"errors: {payload['errors']}")
                        continue
                    status = payload["data"]["paymentUpdates"]["status"]
                    if not self._first.done():
                        self._first.set_result(status)
                    elif status == "COMPLETED" and self.completed_at is None:
                        self.completed_at = now
                        self.finished.set()
                elif kind == "complete" and self.completed_at is not None:
                    return  # the stream may end once the router answered (or failed) for the payment
                elif kind in {"error", "complete"}:
                    self._problem(f"{kind}: {message}")
        except Exception as exc:  # the connection dropped
            self._problem(f"{type(exc).__name__}: {exc}")

    def _problem(self, text: str) -> None:
        self.problem = self.problem or text
        self.finished.set()
        if not self._first.done():
            self._first.set_exception(RuntimeError(text))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: S110 - closing is best effort
                pass


def post_webhook(url: str, body: bytes) -> tuple[float, float, int]:
    """POST like IntaSend does (a fresh connection each time); returns (t0, t_response, status)."""
    import requests

    t0 = time.perf_counter()
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    return t0, time.perf_counter(), response.status_code


async def measure(
    row: Row,
    *,
    shop: Shop,
    pool: list[tuple[str, str]],
    timings: list[SampleTiming],
    webhook_url: str,
    ws_url: str,
    samples: int,
    server_pids: list[int],
    args,
) -> None:
    n = row.subscribers
    warmup = args.warmup
    spare = iter(pool[n:])
    live: list[Subscriber] = []
    opened: list[Subscriber] = []
    gate = asyncio.Semaphore(args.connect_concurrency)

    async def open_one(payment: tuple[str, str]) -> Subscriber:
        subscriber = Subscriber(*payment)
        opened.append(subscriber)
        async with gate:
            await subscriber.open(ws_url, shop.public_key, timeout=60)
        return subscriber

    started = time.perf_counter()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(open_one(p) for p in pool[:n]), return_exceptions=True), timeout=max(120, n * 0.5)
        )
        live = [r for r in results if isinstance(r, Subscriber)]
        failures = [r for r in results if not isinstance(r, Subscriber)]
        if failures:
            raise RuntimeError(f"{len(failures)} of {n} subscribers could not subscribe: {failures[0]!r}")
        row.connect_s = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let the connection burst drain before measuring
        # What N idle subscriptions cost the servers (resyncs, pings): CPU over a quiet window.
        before, t_before = cpu_seconds(*server_pids), time.perf_counter()
        await asyncio.sleep(IDLE_CPU_WINDOW_S)
        row.idle_cpu_pct = 100 * (cpu_seconds(*server_pids) - before) / (time.perf_counter() - t_before)

        rng = random.Random(n)
        for index in range(warmup + samples):
            subscriber = live.pop(rng.randrange(len(live)))
            shop.fake.settle(subscriber.invoice_id, "COMPLETE", webhook=False)  # IntaSend now says COMPLETE
            body = json.dumps(shop.fake.webhook_body(subscriber.invoice_id, challenge=WEBHOOK_CHALLENGE)).encode()
            t0, t_response, status = await asyncio.to_thread(post_webhook, webhook_url, body)
            if status != 200:
                raise RuntimeError(f"webhook answered {status}")
            try:
                await asyncio.wait_for(subscriber.finished.wait(), args.timeout)
            except TimeoutError:
                pass
            if index >= warmup:
                row.samples += 1
                if subscriber.completed_at is None:
                    row.missed += 1
                else:
                    row.latencies_ms.append((subscriber.completed_at - t0) * 1000)
                    row.webhook_ms.append((t_response - t0) * 1000)
                    timings.append(
                        SampleTiming(
                            subscriber.payment_id,
                            subscriber.invoice_id,
                            t0=t0 + WALL_OFFSET,
                            t1=subscriber.completed_at + WALL_OFFSET,
                        )
                    )
            await subscriber.close()
            live.append(await open_one(next(spare)))  # keep exactly N subscriptions live
            await asyncio.sleep(args.gap_ms / 1000)
    finally:
        broken = [s for s in opened if s.problem]
        row.dropped = len(broken)
        if broken:
            print(f"{row.mode}/{n}: {len(broken)} subscriptions dropped, e.g. {broken[0].problem}", file=sys.stderr)
        await asyncio.gather(*(s.close() for s in live), return_exceptions=True)


if __name__ == "__main__":
    sys.exit(main())
