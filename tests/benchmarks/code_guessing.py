#!/usr/bin/env python
"""Brute force on the code box: how many codes can be tried, from one device and from one router's clients.

Usage (repo root; loopback only; embedded: one daphne on SQLite, as ``make run``)::

    .venv/bin/python tests/benchmarks/code_guessing.py [--seconds 60] [--workers 32] [--env KEY=VALUE]

Three rounds, each on a router of its own (budgets are per router), every guess a well-formed access
code that exists nowhere (``redeemCode``; only failures count):

* **one device**: one MAC, one address, one request at a time;
* **one address, rotating MACs**: ``--workers`` parallel clients, a fresh MAC on every request (a guesser
  behind the hotspot's NAT, or anyone on the internet: the router id and public key are public);
* **rotating addresses and MACs**: the same, every request from another client address (a botnet;
  the server believes ``X-Forwarded-For`` from loopback here, ``TRUSTED_PROXIES``).

Meanwhile a customer from the hotspot's own address checks a valid code every 2 s (``accessStatus``,
which waits for its turn like any code on a slowed router): does a customer still get in, and how long
does it take? "Looked up" counts the guesses the server really checked (CODE_INVALID answers); the
per-hour rate is the one after the router's free failures ran out, measured over the round. Then the
arithmetic: expected time to hit a valid code at those rates.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.common import (  # noqa: E402
    BenchDaphne,
    Shop,
    bench_env,
    django_setup,
    fmt,
    machine_line,
    percentile,
    running,
)

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
VALID_CODE = "K7PX4TQM"
CUSTOMER_ADDRESS = "198.51.100.7"
REDEEM = """mutation($input: RedeemCodeInput!) { redeemCode(input: $input) { kind errors { code } } }"""
STATUS = """query($routerId: ID!, $code: String!) {
  accessStatus(routerId: $routerId, code: $code) { status errors { code } }
}"""


def random_code(length: int = 8) -> str:
    return "".join(random.choice(ALPHABET) for _ in range(length))


def random_mac() -> str:
    return ":".join(f"{random.randrange(256):02X}" for _ in range(6))


def random_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@dataclass
class Round:
    name: str
    seconds: float = 0.0
    sent: int = 0
    looked_up: list[float] = field(default_factory=list)  # monotonic times of CODE_INVALID answers
    refused: int = 0  # RATE_LIMITED
    other: dict[str, int] = field(default_factory=dict)
    customer_ok: int = 0
    customer_refused: int = 0
    customer_latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def guesser(url: str, key: str, router_id: int, result: Round, stop: float, *, fixed_mac: str | None, addresses: bool):
    import requests

    session = requests.Session()
    session.headers["X-Public-Key"] = key
    while time.monotonic() < stop:
        headers = {"X-Forwarded-For": random_address()} if addresses else {}
        variables = {
            "input": {"routerId": str(router_id), "code": random_code(), "macAddress": fixed_mac or random_mac()}
        }
        try:
            body = session.post(
                f"{url}/graphql/", json={"query": REDEEM, "variables": variables}, headers=headers, timeout=60
            ).json()
        except Exception:  # noqa: BLE001 - counted, the round goes on
            body = {}
        errors = (body.get("data") or {}).get("redeemCode", {}).get("errors") or [{"code": "NO_ANSWER"}]
        code = errors[0]["code"]
        with result.lock:
            result.sent += 1
            if code == "CODE_INVALID":
                result.looked_up.append(time.monotonic())
            elif code == "RATE_LIMITED":
                result.refused += 1
            else:
                result.other[code] = result.other.get(code, 0) + 1


def customer(url: str, key: str, router_id: int, result: Round, stop: float) -> None:
    import requests

    session = requests.Session()
    session.headers.update({"X-Public-Key": key, "X-Forwarded-For": CUSTOMER_ADDRESS})
    while time.monotonic() < stop - 2:
        started = time.monotonic()
        body = session.post(
            f"{url}/graphql/",
            json={"query": STATUS, "variables": {"routerId": str(router_id), "code": VALID_CODE}},
            timeout=60,
        ).json()
        answer = body["data"]["accessStatus"]
        if answer["errors"]:
            result.customer_refused += 1
        else:
            result.customer_ok += 1
            result.customer_latencies.append((time.monotonic() - started) * 1000)
        time.sleep(max(0.0, 2 - (time.monotonic() - started)))


def run_round(url, key, router_id, name, seconds, workers, *, fixed_mac=None, addresses=False) -> Round:
    result = Round(name)
    stop = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=guesser,
            args=(url, key, router_id, result, stop),
            kwargs={"fixed_mac": fixed_mac, "addresses": addresses},
        )
        for _ in range(workers)
    ]
    # The customer's first check comes before the guessing starts: a hotspot in use has had good codes.
    threads.insert(0, threading.Thread(target=customer, args=(url, key, router_id, result, stop)))
    started = time.monotonic()
    for index, thread in enumerate(threads):
        thread.start()
        if index == 0:
            time.sleep(0.5)
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def seed(shop: Shop, rounds: int) -> list[int]:
    """A router per round, each with a customer's ACTIVE grant holding VALID_CODE."""
    from datetime import timedelta

    from django.utils import timezone

    from network.models import Activation, Package, Router

    routers = []
    for index in range(rounds):
        router = Router.objects.create(
            owner=shop.operator,
            name=f"Bench {index}",
            host="127.0.0.1",
            api_port=1,
            username="u",
            password_encrypted="",
        )
        package = Package.objects.create(router=router, name="1 Hour", price=shop.package.price, duration_minutes=60)
        Activation.objects.create(
            owner=shop.operator,
            router=router,
            package=package,
            status=Activation.Status.ACTIVE,
            access_code=VALID_CODE,
            expires_at=timezone.now() + timedelta(days=1),
        )
        routers.append(router.pk)
    return routers


def per_hour_after_budget(result: Round, free: int, window: float) -> float:
    """Lookups per hour once the free failures were spent (the rate a guesser keeps up). None got through
    after them: the budget itself, which comes back as the window slides."""
    times = sorted(result.looked_up)
    if len(times) <= free + 1:
        return free * 3600 / window
    return (len(times) - free - 1) * 3600 / (times[-1] - times[free])


def human(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    extra = {"TRUSTED_PROXIES": "127.0.0.1/32", **dict(item.split("=", 1) for item in args.env)}

    work_dir = Path(tempfile.mkdtemp(prefix="cp-perf-codes-"))
    with ExitStack() as stack:
        env = bench_env(
            work_dir, "http://127.0.0.1:1/", database_url=f"sqlite:///{work_dir / 'bench.sqlite3'}", extra=extra
        )
        django_setup(env)
        from django.conf import settings
        from django.db import connections

        shop = Shop.create(None)
        routers = seed(shop, 3)
        connections.close_all()
        free_device, free_router = settings.CODE_FAILURES_PER_DEVICE, settings.CODE_FAILURES_PER_ROUTER
        window, slowed = settings.CODE_FAILURE_WINDOW_SECONDS, settings.CODE_ROUTER_SLOWED_PER_SECOND
        daphne = BenchDaphne(env, work_dir)
        stack.enter_context(running(daphne))
        daphne.wait_healthy(60)
        rounds = [
            run_round(
                daphne.url,
                shop.public_key,
                routers[0],
                "one device (one MAC, one address)",
                args.seconds,
                1,
                fixed_mac="02:00:00:00:00:01",
            ),
            run_round(
                daphne.url,
                shop.public_key,
                routers[1],
                f"one address, {args.workers} parallel, rotating MACs",
                args.seconds,
                args.workers,
            ),
            run_round(
                daphne.url,
                shop.public_key,
                routers[2],
                f"{args.workers} parallel, rotating addresses and MACs",
                args.seconds,
                args.workers,
                addresses=True,
            ),
        ]
    bound = 2 * slowed * 3600 + free_router * 3600 / window  # both lanes of turns, plus the free failures
    print()
    print("### Guessing codes (`code_guessing.py`)")
    print()
    print(
        "| round | s | requests | looked up | RATE_LIMITED | other | looked up / h after the free budget | "
        "customer checks ok / refused | customer p50 / max ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |")
    rates = []
    for result in rounds:
        free = free_device if result.name.startswith("one device") else free_router
        rate = per_hour_after_budget(result, free, window)
        rates.append(rate)
        latencies = result.customer_latencies
        print(
            f"| {result.name} | {fmt(result.seconds, 0)} | {result.sent} | {len(result.looked_up)} | "
            f"{result.refused} | "
            f"{result.other or '–'} | {rate:,.0f} | {result.customer_ok} / {result.customer_refused} | "
            f"{fmt(percentile(latencies, 50), 0)} / {fmt(max(latencies) if latencies else float('nan'), 0)} |"
        )
    print()
    print(
        f"Settings: {free_device} failures per device and {free_router} per router per {window} s window, then "
        f"{slowed:g} turns/s per router and lane (router bound {bound:,.0f}/h). "
        f"One device: at most {free_device * 3600 / window:,.0f} guesses/h. "
        f"{machine_line()}."
    )
    router_rate = max(rates[1:])
    print()
    print(
        "| target | space | valid | guesses needed (expected) | at one device's rate | "
        "at one router's measured rate | at the router's bound |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    device_rate = free_device * 3600 / window
    for label, space, valid in (
        ("voucher (12 chars, 60 bits)", 32**12, 10_000),
        ("access code (8 chars, 40 bits)", 32**8, 1_000),
        ("access code (8 chars, 40 bits)", 32**8, 100),
    ):
        guesses = (space + 1) / (valid + 1)
        print(
            f"| {label} | 2^{space.bit_length() - 1} | {valid:,} | {guesses:.2e} | "
            f"{human(guesses / device_rate * 3600)} | {human(guesses / router_rate * 3600)} | "
            f"{human(guesses / bound * 3600)} |"
        )
    if not args.keep_logs:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
