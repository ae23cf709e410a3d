#!/usr/bin/env python
"""Benchmark 5, throughput: sustained webhooks/s that end in COMPLETED and activated payments.

Usage (repo root; loopback only; needs PostgreSQL, and Redis for the scaled mode)::

    .venv/bin/python tests/benchmarks/throughput.py [--modes embedded,scaled,scaled2] [--payments 300]
        [--concurrency 16]

Each mode runs in a child interpreter of this script on a fresh PostgreSQL database
``cloudpilot_bench_tp`` (dropped afterwards), with the loopback IntaSend and a loopback RouterOS
router (``FakeRouterOS``) in that child:

* ``embedded``: one daphne, no REDIS_URL (task consumer inside daphne, SQLite queue);
* ``scaled``: REDIS_URL ``redis://127.0.0.1:6379/10`` (FLUSHDB first), two daphne processes
  (webhooks alternate between them) and one ``manage.py run_huey`` (its default 4 worker threads);
* ``scaled2``: the same with two ``run_huey`` processes (the second with ``--no-periodic``).

``--payments`` PROCESSING payments are seeded (with a fresh phone each, so no renewal merges two
customers), their invoices settled COMPLETE at the fake IntaSend, then every webhook is POSTed by
``--concurrency`` client threads at once. The clock runs from the first POST until every payment
is COMPLETED with an ACTIVE activation (polled). Nothing may be lost: at the end every payment is
COMPLETED, has exactly one COMPLETED event and an ACTIVE activation, and the router holds exactly
one hotspot user per payment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    REPO,
    ROUTER_PASSWORD,
    ROUTER_USERNAME,
    WEBHOOK_CHALLENGE,
    BenchDaphne,
    Process,
    Shop,
    bench_env,
    cpu_seconds,
    django_setup,
    finish,
    fmt,
    machine_line,
    percentile,
    postgres_cpu_seconds,
    postgres_database,
    running,
)

DATABASE = "cloudpilot_bench_tp"
REDIS_URL = "redis://127.0.0.1:6379/10"
MODES = ("embedded", "scaled", "scaled2")


@dataclass
class Result:
    mode: str
    processes: str = ""
    payments: int = 0
    posted_s: float = float("nan")  # first POST → last POST answered
    done_s: float = float("nan")  # first POST → every payment COMPLETED + ACTIVE
    webhook_p50_ms: float = float("nan")
    webhook_p99_ms: float = float("nan")
    completed: int = 0
    activated: int = 0
    completed_events: int = 0
    router_users: int = 0
    lost: str = ""
    server_cpu_pct: float = float("nan")  # all server processes, over the run (100 = one core)
    cpu_by_process: str = ""  # each server process's CPU %, and this process's (the fakes and the clients)
    error: str | None = None

    @property
    def accepted_per_s(self) -> float:
        return self.payments / self.posted_s if self.posted_s else float("nan")

    @property
    def sustained_per_s(self) -> float:
        return self.payments / self.done_s if self.done_s else float("nan")


def table(results: list[Result]) -> str:
    lines = [
        "| mode | processes | payments | webhooks accepted /s | **completed + activated /s** | POST p50 / p99 ms "
        "| COMPLETED | ACTIVE | router users | lost | server CPU % | CPU % by process |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.mode} | {r.processes} | {r.payments} | error: {r.error} | | | | | | | | |")
            continue
        lines.append(
            f"| {r.mode} | {r.processes} | {r.payments} | {fmt(r.accepted_per_s)} | **{fmt(r.sustained_per_s)}** | "
            f"{fmt(r.webhook_p50_ms)} / {fmt(r.webhook_p99_ms)} | {r.completed} | {r.activated} | {r.router_users} | "
            f"{r.lost or 'none'} | {fmt(r.server_cpu_pct)} | {r.cpu_by_process} |"
        )
    return "\n".join(lines)


# --- the parent ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10, help="payments pushed through before the clock starts")
    parser.add_argument("--concurrency", type=int, default=16, help="webhook POSTs in flight")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one mode to finish everything")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment of run_huey only"
    )
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    args.worker_env = dict(item.split("=", 1) for item in args.worker_env)
    if args.child:
        return child_main(args)

    results: list[Result] = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        child = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--child", mode,
                 "--child-out", str(out)]
        print(f"== {mode} ==", file=sys.stderr, flush=True)
        code = subprocess.call(child, cwd=REPO)
        try:
            results.append(Result(**json.loads(out.read_text())))
        except (OSError, ValueError, TypeError):
            results.append(Result(mode=mode, error=f"child exit {code}"))
        finally:
            out.unlink(missing_ok=True)
    print()
    print("### 5. Throughput: webhooks that end in COMPLETED + ACTIVE payments (PostgreSQL)")
    print()
    print(table(results))
    print()
    print(
        f"Every webhook POSTed at once by {args.concurrency} client threads; the clock stops when the last payment "
        f"is COMPLETED with an ACTIVE activation (FakeRouterOS, loopback IntaSend confirming each webhook); "
        f"{machine_line()}."
    )
    return 0 if all(r.error is None and not r.lost for r in results) else 1


# --- the child: one mode -------------------------------------------------------------------------


def post_all(urls: list[str], bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    import requests

    def post(index: int) -> float:
        started = time.perf_counter()
        response = requests.post(
            urls[index % len(urls)], data=bodies[index], headers={"Content-Type": "application/json"}, timeout=60
        )
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(post, range(len(bodies))))
    return time.perf_counter() - started, latencies


def done_count(payment_ids: list[str]) -> int:
    from billing.models import Payment

    return Payment.objects.filter(
        pk__in=payment_ids, status=Payment.Status.COMPLETED, activation__status="ACTIVE"
    ).count()


def push_through(shop: Shop, fake, urls: list[str], count: int, concurrency: int, timeout: float):
    """Seed `count` payments, settle them at IntaSend, POST every webhook; returns timings."""
    made = shop.payments(count)
    bodies = []
    for _, invoice_id in made:
        fake.settle(invoice_id, "COMPLETE", webhook=False)
        bodies.append(json.dumps(fake.webhook_body(invoice_id, challenge=WEBHOOK_CHALLENGE)).encode())
    ids = [payment_id for payment_id, _ in made]
    started = time.perf_counter()
    posted_s, latencies = post_all(urls, bodies, concurrency)
    deadline = started + timeout
    while True:
        finished = done_count(ids)
        if finished == len(ids):
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {finished} of {len(ids)} payments completed and activated after {timeout:g} s")
        time.sleep(0.1)
    return ids, posted_s, time.perf_counter() - started, latencies


def verify(result: Result, ids: list[str], router) -> None:
    from billing.models import Payment, PaymentEvent
    from network.models import Activation

    result.completed = Payment.objects.filter(pk__in=ids, status=Payment.Status.COMPLETED).count()
    result.activated = Activation.objects.filter(payment_id__in=ids, status=Activation.Status.ACTIVE).count()
    events = Counter(
        str(pid)
        for pid in PaymentEvent.objects.filter(payment_id__in=ids, new_status=Payment.Status.COMPLETED)
        .exclude(old_status=Payment.Status.COMPLETED)
        .values_list("payment_id", flat=True)
    )
    result.completed_events = sum(events.values())
    users = router.users
    per_payment = Counter()
    for user in users:
        match = re.search(r"pay:([0-9a-f-]{36})", user.get("comment", ""))
        if match:
            per_payment[match.group(1)] += 1
    wanted = set(ids)
    result.router_users = sum(n for pid, n in per_payment.items() if pid in wanted)
    problems = []
    if result.completed != len(ids):
        problems.append(f"{len(ids) - result.completed} not COMPLETED")
    if result.activated != len(ids):
        problems.append(f"{len(ids) - result.activated} not ACTIVE")
    if any(events[pid] != 1 for pid in ids):
        problems.append(f"{sum(1 for pid in ids if events[pid] != 1)} without exactly one COMPLETED event")
    if any(per_payment[pid] != 1 for pid in ids):
        problems.append(f"{sum(1 for pid in ids if per_payment[pid] != 1)} without exactly one router user")
    result.lost = "; ".join(problems)


def child_main(args: argparse.Namespace) -> int:
    from tests.fakes.intasend_server import FakeIntaSend
    from tests.fakes.routeros_server import FakeRouterOS

    mode: str = args.child
    result = Result(mode=mode, payments=args.payments)
    work_dir = Path(tempfile.mkdtemp(prefix=f"cloudpilot-bench-tp-{mode}-"))
    ok = False
    with ExitStack() as stack:
        try:
            fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
            router = stack.enter_context(FakeRouterOS(username=ROUTER_USERNAME, password=ROUTER_PASSWORD))
            redis_url = None
            if mode != "embedded":
                import redis

                redis_url = REDIS_URL
                redis.Redis.from_url(REDIS_URL).flushdb()
            postgres_database(DATABASE, "create")
            stack.callback(postgres_database, DATABASE, "drop")
            extra = {"ACTIVATION_RETRIES": "6", **args.extra_env}
            env = bench_env(
                work_dir,
                fake.base_url,
                database_url=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
                redis_url=redis_url,
                extra=extra,
            )
            django_setup(env)
            from django.db import connections

            from network.models import Router

            stack.callback(connections.close_all)
            shop = Shop.create(fake)
            Router.objects.filter(pk=shop.router.pk).update(api_port=router.port)

            if mode == "embedded":
                servers = [BenchDaphne(env, work_dir, "daphne")]
                workers: list[Process] = []
            else:
                servers = [BenchDaphne(env, work_dir, "daphne-a"), BenchDaphne(env, work_dir, "daphne-b")]
                workers = [
                    Process(
                        f"huey-{i}",
                        [sys.executable, "manage.py", "run_huey", *([] if i == 0 else ["--no-periodic"])],
                        {**env, **args.worker_env},
                        work_dir,
                    )
                    for i in range(2 if mode == "scaled2" else 1)
                ]
            processes = [*servers, *workers]
            result.processes = (
                "1 daphne (consumer inside)"
                if mode == "embedded"
                else f"2 daphne + {len(workers)} run_huey"
            )
            urls = [f"{server.url}/payments/webhook/" for server in servers]
            with running(*processes):
                for server in servers:
                    server.wait_healthy(60)
                pids = [p.popen.pid for p in processes]
                if args.warmup:
                    push_through(shop, fake, urls, args.warmup, args.concurrency, 120)
                cpu_before = cpu_seconds(*pids)
                each_before = {p.name: cpu_seconds(p.popen.pid) for p in processes}
                own_before = time.process_time()
                pg_before = postgres_cpu_seconds()
                ids, posted_s, done_s, latencies = push_through(
                    shop, fake, urls, args.payments, args.concurrency, args.timeout
                )
                result.server_cpu_pct = 100 * (cpu_seconds(*pids) - cpu_before) / done_s
                shares = [
                    f"{p.name} {100 * (cpu_seconds(p.popen.pid) - each_before[p.name]) / done_s:.0f}"
                    for p in processes
                ]
                shares.append(f"bench {100 * (time.process_time() - own_before) / done_s:.0f}")
                shares.append(f"postgres {100 * (postgres_cpu_seconds() - pg_before) / done_s:.0f}")
                result.cpu_by_process = ", ".join(shares)
                result.posted_s, result.done_s = posted_s, done_s
                result.webhook_p50_ms, result.webhook_p99_ms = percentile(latencies, 50), percentile(latencies, 99)
                time.sleep(1.0)  # any duplicate job would show up now
                verify(result, ids, router)
                for process in processes:
                    if process.popen.poll() is not None:
                        raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
            ok = not result.lost
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:300]
            print(f"{mode}: {result.error}", file=sys.stderr)
        finally:
            args.child_out.write_text(json.dumps(asdict(result)))
            print(table([result]).splitlines()[-1], file=sys.stderr, flush=True)
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs, label=f"{mode}: ")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
