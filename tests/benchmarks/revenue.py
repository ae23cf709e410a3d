#!/usr/bin/env python
"""Benchmark 7, money: ``revenueReport`` over a year of 10,000 payments, per grouping.

Usage (repo root; loopback only; needs PostgreSQL)::

    .venv/bin/python tests/benchmarks/revenue.py [--payments 10000] [--vouchers 1000] [--samples 30]

A fresh PostgreSQL database ``cloudpilot_bench_revenue`` seeded (bulk inserts) with ``--payments`` COMPLETED
payments spread over 2025 on two routers and two packages (some with IntaSend's charges), ``--vouchers``
redeemed vouchers and 1% paid-after-failure payments, plus as many payments of another operator. For each
grouping over the whole year, in this process: the SQL queries per report (CaptureQueriesContext: must be 1),
the report's time through the service (p50/p99 of ``--samples`` after 3 warm-ups), and a check that its
totals equal a Python sum over the seeded rows (Decimal, exact).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import bench_env, django_setup, fmt, machine_line, percentile, postgres_database  # noqa: E402

DATABASE = "cloudpilot_bench_revenue"
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


def seed(count: int, vouchers: int) -> tuple[object, dict[str, Decimal]]:
    """Alice's year and Bob's noise; returns Alice and the totals her report must show."""
    from django.contrib.auth import get_user_model

    from billing.models import Payment, Voucher, VoucherBatch
    from network.models import Package, Router

    rng = random.Random(12)
    users = get_user_model().objects
    expected = {"total": Decimal("0"), "count": Decimal("0"), "charges": Decimal("0"), "vouchers": Decimal("0")}
    expected["after_failure"] = Decimal("0")
    alice = None
    for name in ("alice", "bob"):
        user = users.create_user(username=name, password="bench-pass-123")
        routers = [
            Router.objects.create(owner=user, name=f"{name} {i}", host="127.0.0.1", username="u") for i in (1, 2)
        ]
        packages = [
            Package.objects.create(router=router, name=f"{minutes} min", price=price, duration_minutes=minutes)
            for router in routers
            for minutes, price in ((60, Decimal("25.00")), (1440, Decimal("100.00")))
        ]
        payments = []
        for index in range(count):
            package = rng.choice(packages)
            at = YEAR_START + timedelta(seconds=rng.randrange(365 * 86400 - 4 * 3600))  # inside Nairobi's 2025
            after_failure = index % 100 == 0
            charges = Decimal(rng.randrange(0, 300)) / 100 if index % 3 == 0 else None
            payments.append(
                Payment(
                    owner=user,
                    router=package.router,
                    package=package,
                    phone_number="254712345678",
                    amount=package.price,
                    status=Payment.Status.FAILED if after_failure else Payment.Status.COMPLETED,
                    completed_at=None if after_failure else at,
                    paid_after_failure=after_failure,
                    paid_after_failure_at=at if after_failure else None,
                    charges=None if after_failure else charges,
                    net_amount=None if after_failure or charges is None else package.price - charges,
                )
            )
            if name == "alice":
                if after_failure:
                    expected["after_failure"] += package.price
                else:
                    expected["total"] += package.price
                    expected["count"] += 1
                    expected["charges"] += charges or 0
        Payment.objects.bulk_create(payments, batch_size=1000)
        batch = VoucherBatch.objects.create(
            owner=user, router=routers[0], package=packages[0], price=Decimal("20.00"), count=vouchers
        )
        Voucher.objects.bulk_create(
            [
                Voucher(
                    batch=batch,
                    router=routers[0],
                    code=f"B{index:011d}",
                    status=Voucher.Status.REDEEMED,
                    redeemed_at=YEAR_START + timedelta(seconds=rng.randrange(365 * 86400 - 4 * 3600)),
                )
                for index in range(vouchers)
            ],
            batch_size=1000,
        )
        if name == "alice":
            alice = user
            expected["vouchers"] = batch.price * vouchers
    return alice, expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--vouchers", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-revenue-"))
    rows, ok = [], True
    with ExitStack() as stack:
        postgres_database(DATABASE, "create")
        stack.callback(postgres_database, DATABASE, "drop")
        env = bench_env(work_dir, "http://127.0.0.1:9", database_url=f"postgres://postgres@127.0.0.1:5432/{DATABASE}")
        django_setup(env)
        from django.db import connection, connections
        from django.test.utils import CaptureQueriesContext

        from billing import revenue

        stack.callback(connections.close_all)
        alice, expected = seed(args.payments, args.vouchers)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for group_by in revenue.GroupBy:
            data = revenue.ReportInput(start=date(2025, 1, 1), end=date(2025, 12, 31), group_by=group_by)
            for _ in range(3):
                revenue.revenue_report(operator=alice, data=data)
            with CaptureQueriesContext(connection) as captured:
                report = revenue.revenue_report(operator=alice, data=data)
            exact = (
                report.total_amount == expected["total"]
                and report.count == expected["count"]
                and report.charges == expected["charges"]
                and report.voucher_amount == expected["vouchers"]
                and report.paid_after_failure_amount == expected["after_failure"]
                and sum(row.amount for row in report.rows) == report.total_amount
            )
            ok = ok and exact and len(captured) == 1
            times = []
            for _ in range(args.samples):
                started = time.perf_counter()
                revenue.revenue_report(operator=alice, data=data)
                times.append((time.perf_counter() - started) * 1000)
            rows.append((group_by.value, len(report.rows), len(captured), times, exact))
    print()
    print(f"### 7. Money: `revenueReport` over a year, {args.payments:,} payments + {args.vouchers:,} vouchers")
    print()
    print("| groupBy | rows | SQL queries / report | p50 ms | p99 ms | totals exact | samples |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for group_by, count, queries, times, exact in rows:
        print(
            f"| {group_by} | {count} | {queries} | {fmt(percentile(times, 50))} | {fmt(percentile(times, 99))} | "
            f"{'yes' if exact else 'NO'} | {len(times)} |"
        )
    print()
    print(
        f"PostgreSQL, the same again for a second operator (never counted), through the service in one process "
        f"(no HTTP); {machine_line()}."
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
