#!/usr/bin/env python
"""Benchmark 1, GraphQL overhead: ``initiatePayment`` over GraphQL vs the same service behind a bare view.

Usage (repo root; loopback only; needs PostgreSQL)::

    .venv/bin/python tests/benchmarks/graphql_overhead.py [--requests 600] [--concurrency 8] [--rounds 3]

One daphne (``DJANGO_SETTINGS_MODULE=tests.benchmarks.bench_settings``: the product plus
``/bench/initiate/``, see bench_urls.py) on a fresh PostgreSQL database ``cloudpilot_bench_gql``,
the loopback IntaSend in this process. Both variants send a portal's request (``X-Public-Key``)
for the same router and package with a fresh phone number each time (the already-pending rule),
rate limits raised through the environment. ``--concurrency`` client threads (one keep-alive
session each) send ``--requests`` requests per variant, in ``--rounds`` interleaved batches
(GraphQL, bare, bare, GraphQL, ...) so drift on a shared machine hits both alike. Every answer is
checked (payment PROCESSING, no errors). Reported: requests/s, p50/p99 latency, and daphne's CPU
per request (less sensitive than wall time to other load on the machine), and their ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    BENCH_SETTINGS,
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    PRICE,
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
    running,
)

DATABASE = "cloudpilot_bench_gql"

MUTATION = """
mutation Initiate($input: PaymentInput!) {
  initiatePayment(input: $input) {
    message
    payment { id status phoneNumber amount currency createdAt }
    intasend { paymentId invoiceId state message }
    errors { field code message }
  }
}
"""


@dataclass
class Variant:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    failures: int = 0
    first_failure: str = ""

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.count / self.wall_s if self.wall_s else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.count if self.count else float("nan")


class Client:
    """Builds and checks one request of either variant; phones never repeat."""

    def __init__(self, base_url: str, shop: Shop) -> None:
        self.base_url = base_url
        self.shop = shop
        self._phones = itertools.count(1)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _session(self):
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update({"X-Public-Key": self.shop.public_key})
        return self._local.session

    def _input(self) -> dict:
        with self._lock:
            n = next(self._phones)
        return {
            "routerId": str(self.shop.router.pk),
            "packageId": str(self.shop.package.pk),
            "phoneNumber": f"01{n % 10**8:08d}",  # 2541XXXXXXXX: never one of Shop's 2547 numbers
            "amount": str(PRICE),
        }

    def one(self, variant: str) -> tuple[float, str | None]:
        data = self._input()
        session = self._session()
        started = time.perf_counter()
        if variant == "graphql":
            response = session.post(
                f"{self.base_url}/graphql/", json={"query": MUTATION, "variables": {"input": data}}, timeout=30
            )
        else:
            response = session.post(f"{self.base_url}/bench/initiate/", json={"input": data}, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        try:
            body = response.json()
            payload = body["data"]["initiatePayment"] if variant == "graphql" else body
            top_level_errors = body.get("errors") if variant == "graphql" else None
            ok = (
                response.status_code == 200
                and not top_level_errors
                and not payload["errors"]
                and payload["payment"]["status"] == "PROCESSING"
            )
        except (ValueError, KeyError, TypeError):
            ok, body = False, response.text[:300]
        return elapsed, None if ok else f"{response.status_code}: {str(body)[:300]}"


def run_batch(client: Client, variant: Variant, requests_: int, concurrency: int, daphne_pid: int) -> None:
    cpu_before = cpu_seconds(daphne_pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda _: client.one(variant.name), range(requests_)))
    variant.wall_s += time.perf_counter() - started
    variant.server_cpu_s += cpu_seconds(daphne_pid) - cpu_before
    for elapsed, problem in results:
        if problem:
            variant.failures += 1
            variant.first_failure = variant.first_failure or problem
        else:
            variant.latencies_ms.append(elapsed)


def table(variants: dict[str, Variant], concurrency: int) -> str:
    lines = [
        f"| variant (concurrency {concurrency}) | requests | failures | req/s | p50 ms | p99 ms | daphne CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {"graphql": "GraphQL `initiatePayment`", "bare": "bare Django JSON view"}
    for name in ("graphql", "bare"):
        v = variants[name]
        lines.append(
            f"| {labels[name]} | {v.count} | {v.failures} | {fmt(v.rps)} | {fmt(percentile(v.latencies_ms, 50))} | "
            f"{fmt(percentile(v.latencies_ms, 99))} | {fmt(v.cpu_ms_per_request, 2)} |"
        )
    g, b = variants["graphql"], variants["bare"]

    def ratio(x: float, y: float) -> str:
        return fmt(x / y, 2) if y else "–"

    p50 = ratio(percentile(g.latencies_ms, 50), percentile(b.latencies_ms, 50))
    p99 = ratio(percentile(g.latencies_ms, 99), percentile(b.latencies_ms, 99))
    cpu = ratio(g.cpu_ms_per_request, b.cpu_ms_per_request)
    lines.append(f"| **GraphQL / bare** | | | {ratio(b.rps, g.rps)}× time/req | {p50}× | {p99}× | {cpu}× |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="measured requests per variant")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved batches per variant")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per variant first")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)

    from tests.fakes.intasend_server import FakeIntaSend

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-gql-"))
    ok = False
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        postgres_database(DATABASE, "create")
        stack.callback(postgres_database, DATABASE, "drop")
        env = bench_env(
            work_dir,
            fake.base_url,
            database_url=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
            settings_module=BENCH_SETTINGS,
            extra={"PAYMENT_RATE_LIMIT_PER_PHONE": "1000000", "PAYMENT_RATE_LIMIT_PER_IP": "1000000", **extra},
        )
        django_setup(env)
        from django.db import connections

        stack.callback(connections.close_all)
        shop = Shop.create(fake)
        connections.close_all()

        daphne = BenchDaphne(env, work_dir)
        with running(daphne):
            daphne.wait_healthy(60)
            client = Client(daphne.url, shop)
            variants = {"graphql": Variant("graphql"), "bare": Variant("bare")}
            for name in variants:  # warm-up: imports, connections, caches
                scratch = Variant(name)
                run_batch(client, scratch, args.warmup, args.concurrency, daphne.popen.pid)
                if scratch.failures:
                    raise RuntimeError(f"{name} warm-up failed: {scratch.first_failure}")
            per_batch = max(1, args.requests // args.rounds)
            for round_ in range(args.rounds):
                order = ("graphql", "bare") if round_ % 2 == 0 else ("bare", "graphql")
                for name in order:
                    run_batch(client, variants[name], per_batch, args.concurrency, daphne.popen.pid)
                    print(f"round {round_ + 1}/{args.rounds} {name}: {variants[name].count} ok", file=sys.stderr)
        print()
        print("### 1. GraphQL overhead: `initiatePayment` vs `payment_initiate` behind a bare JSON view")
        print()
        print(table(variants, args.concurrency))
        print()
        print(
            f"PostgreSQL, one daphne, loopback IntaSend, portal key, {args.rounds} interleaved rounds; "
            f"{machine_line()}. Target: GraphQL ≤ 1.25× the bare view."
        )
        for v in variants.values():
            if v.failures:
                print(f"{v.name}: {v.failures} failed, e.g. {v.first_failure}", file=sys.stderr)
        ok = all(v.failures == 0 for v in variants.values())
        print(json.dumps({"bench": "graphql_overhead", **{
            n: {"rps": v.rps, "p50": percentile(v.latencies_ms, 50), "p99": percentile(v.latencies_ms, 99),
                "cpu_ms": v.cpu_ms_per_request} for n, v in variants.items()}}), file=sys.stderr)
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
