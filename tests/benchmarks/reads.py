#!/usr/bin/env python
"""Benchmark 4, reads: the operator's ``payments`` page of 10 and 100, with router, package and activation.

Usage (repo root; loopback only; needs PostgreSQL)::

    .venv/bin/python tests/benchmarks/reads.py [--payments 300] [--samples 200] [--sizes 10,100]

A fresh PostgreSQL database ``cloudpilot_bench_reads`` seeded with ``--payments`` COMPLETED payments,
each with an ACTIVE activation (bulk inserts through this process's Django). For each page size:

* **SQL queries per request**, counted in this process: the same GraphQL request through Django's
  test client under ``CaptureQueriesContext`` (auth, count, page and every nested object: the
  number must not grow with the page);
* **latency over HTTP** on one daphne process (``--samples`` sequential requests after a warm-up,
  one keep-alive connection, operator JWT), with daphne's CPU per request.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    BenchDaphne,
    Shop,
    bench_env,
    cpu_seconds,
    django_setup,
    fmt,
    machine_line,
    percentile,
    postgres_database,
    running,
)

DATABASE = "cloudpilot_bench_reads"

QUERY = """
query Page($limit: Int!, $offset: Int!) {
  payments(pagination: {offset: $offset, limit: $limit}) {
    totalCount
    results {
      id status phoneNumber amount currency createdAt completedAt packageExpiryTime
      router { id name }
      package { id name price durationMinutes }
      activation { status accessCode attempts expiresAt }
    }
  }
}
"""


def seed_completed(shop: Shop, count: int) -> None:
    """`count` COMPLETED payments, each with an ACTIVE activation."""
    from django.utils import timezone

    from billing.models import Payment
    from network.activation import new_access_code
    from network.models import Activation

    made = shop.payments(count)
    now = timezone.now()
    ids = [payment_id for payment_id, _ in made]
    Payment.objects.filter(pk__in=ids).update(
        status=Payment.Status.COMPLETED,
        intasend_state="COMPLETE",
        completed_at=now,
        package_expiry_time=now + timedelta(hours=1),
    )
    Activation.objects.bulk_create(
        [
            Activation(
                payment_id=payment_id,
                status=Activation.Status.ACTIVE,
                access_code=new_access_code(),
                attempts=1,
                activated_at=now,
                expires_at=now + timedelta(hours=1),
            )
            for payment_id in ids
        ],
        batch_size=500,
    )


def count_queries(token: str, limit: int) -> tuple[int, list[str]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {"query": QUERY, "variables": {"limit": limit, "offset": 0}}
    client.post("/graphql/", body, content_type="application/json")  # warm (imports, schema) outside the count
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/graphql/", body, content_type="application/json")
    data = response.json()
    if data.get("errors") or len(data["data"]["payments"]["results"]) != limit:
        raise RuntimeError(f"bad page: {json.dumps(data)[:500]}")
    return len(captured.captured_queries), [q["sql"][:160] for q in captured.captured_queries]


def measure_http(url: str, token: str, limit: int, samples: int, warmup: int, pid: int) -> tuple[list[float], float]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    body = {"query": QUERY, "variables": {"limit": limit, "offset": 0}}
    latencies: list[float] = []
    cpu_before = 0.0
    for index in range(warmup + samples):
        if index == warmup:
            cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        response = session.post(f"{url}/graphql/", json=body, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        data = response.json()
        if response.status_code != 200 or data.get("errors") or len(data["data"]["payments"]["results"]) != limit:
            raise RuntimeError(f"bad answer {response.status_code}: {response.text[:300]}")
        if index >= warmup:
            latencies.append(elapsed)
    return latencies, 1000 * (cpu_seconds(pid) - cpu_before) / samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of the largest page")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    extra = dict(item.split("=", 1) for item in args.env)

    from tests.fakes.intasend_server import FakeIntaSend

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-reads-"))
    rows = []
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        postgres_database(DATABASE, "create")
        stack.callback(postgres_database, DATABASE, "drop")
        database_url = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
        env = bench_env(work_dir, fake.base_url, database_url=database_url, extra=extra)
        django_setup(env)
        from django.db import connections

        stack.callback(connections.close_all)
        from project.auth import issue_tokens

        shop = Shop.create(fake)
        seed_completed(shop, max(args.payments, max(sizes)))
        token = issue_tokens(shop.operator).access_token
        counts = {}
        for size in sizes:
            counts[size], sql = count_queries(token, size)
            if args.show_queries and size == max(sizes):
                print("\n".join(sql), file=sys.stderr)
        connections.close_all()

        daphne = BenchDaphne(env, work_dir)
        with running(daphne):
            daphne.wait_healthy(60)
            for size in sizes:
                latencies, cpu_ms = measure_http(daphne.url, token, size, args.samples, args.warmup, daphne.popen.pid)
                rows.append((size, counts[size], latencies, cpu_ms))
    print()
    print("### 4. Reads: `payments` page with router, package and activation (operator JWT)")
    print()
    print("| page size | SQL queries / request | p50 ms | p99 ms | daphne CPU ms/req | samples |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, queries, latencies, cpu_ms in rows:
        print(
            f"| {size} | {queries} | {fmt(percentile(latencies, 50))} | {fmt(percentile(latencies, 99))} | "
            f"{fmt(cpu_ms, 2)} | {len(latencies)} |"
        )
    print()
    print(
        f"PostgreSQL, {max(args.payments, max(sizes))} payments, one daphne, sequential requests over one "
        f"keep-alive connection; queries counted in-process (test client + CaptureQueriesContext); {machine_line()}."
    )
    constant = len({queries for _, queries, _, _ in rows}) == 1
    if not constant:
        print("queries per request grow with the page size!", file=sys.stderr)
    if not args.keep_logs:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if constant else 1


if __name__ == "__main__":
    sys.exit(main())
