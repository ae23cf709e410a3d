#!/usr/bin/env python
"""PIN to online on a real network: from IntaSend's COMPLETE webhook to the customer's device logged in.

Usage (from the repo root; loopback only; the scaled mode needs Redis and PostgreSQL)::

    .venv/bin/python tests/benchmarks/pin_to_online.py [--modes embedded,scaled] [--samples 40]
        [--router-delay-ms 50] [--intasend-delay-ms 150] [--server-repo PATH] [--json out.json]

The stand-ins live in this process: a RouterOS router (``FakeRouterOS``) that holds every answer back
``--router-delay-ms`` and an IntaSend (``FakeIntaSend``) that holds every HTTP response back
``--intasend-delay-ms``, i.e. each is one round trip away. (A TCP connect to the router is not delayed:
loopback completes the handshake in the kernel; a real network would charge one more round trip to every
new connection.) The servers run as in live_latency.py: ``embedded`` is one daphne (SQLite, its own task
consumer, in-memory channel layer); ``scaled`` is daphne A (webhooks), daphne B (subscribers) and one
``run_huey``, on Redis (``--redis-url``, flushed first) and PostgreSQL (``--database``, created and dropped).
``--server-repo`` runs the servers from another checkout (e.g. the code before a change) against the same
stand-ins and measurement.

One sample at a time: a portal subscribes to ``paymentUpdates`` of its PROCESSING payment (with the client
secret, as a portal does), the payment is settled at IntaSend, t0 = the webhook POST is sent. Measured:

* **login**: t0 → ``/ip/hotspot/active/login`` arriving at the router (the router's own clock: this process);
* **ACTIVE**: t0 → the subscriber receiving ``activation.status == ACTIVE``.

Everything in this process uses one monotonic clock. The target of issue 14 is our share ≤ one IntaSend
round trip + two router round trips + 30 ms at p99 (with the defaults: 150 + 2 × 50 + 30 = 280 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
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
    ROUTER_PASSWORD,
    ROUTER_USERNAME,
    WEBHOOK_CHALLENGE,
    Shop,
    bench_env,
    django_setup,
    finish,
    fmt,
    percentile,
    postgres_database,
)

MODES = ("embedded", "scaled")
SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) "
    "{ id status activation { status } } }"
)


@dataclass
class Row:
    mode: str
    samples: int = 0
    missed: int = 0
    login_ms: list[float] = field(default_factory=list)
    active_ms: list[float] = field(default_factory=list)
    router_commands: dict[str, int] = field(default_factory=dict)  # per path, over the measured samples
    # Where the login time went, per sample (ms): webhook POST → IntaSend's status request arriving;
    # IntaSend's answer (arrival + its delay) → the first router command; that command → active/login.
    to_status_ms: list[float] = field(default_factory=list)
    status_to_router_ms: list[float] = field(default_factory=list)
    router_to_login_ms: list[float] = field(default_factory=list)
    load_1m: float = math.nan
    error: str | None = None


def markdown_table(rows: list[Row], target_ms: float) -> str:
    lines = [
        "| mode | samples | webhook→login p50 / p95 / p99 ms | webhook→ACTIVE p50 / p95 / p99 ms "
        f"| login p99 ≤ {target_ms:g} ms? | router commands per activation | load 1m |",
        "| --- | ---: | ---: | ---: | :---: | --- | ---: |",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.mode} | error: {row.error} | | | | | |")
            continue
        samples = f"{row.samples}" + (f" ({row.missed} missed)" if row.missed else "")
        login = " / ".join(fmt(percentile(row.login_ms, p)) for p in (50, 95, 99))
        active = " / ".join(fmt(percentile(row.active_ms, p)) for p in (50, 95, 99))
        meets = "yes" if row.login_ms and percentile(row.login_ms, 99) <= target_ms else "no"
        per = max(row.samples - row.missed, 1)
        commands = ", ".join(f"{path} {count / per:.2g}" for path, count in sorted(row.router_commands.items()))
        lines.append(f"| {row.mode} | {samples} | {login} | {active} | {meets} | {commands} | {fmt(row.load_1m)} |")
    lines += [
        "",
        "| mode | webhook→status request p50 / p99 ms | status answer→first router command | "
        "first router command→login |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        if not row.error:
            hops = (row.to_status_ms, row.status_to_router_ms, row.router_to_login_ms)
            cells = " | ".join(f"{fmt(percentile(hop, 50))} / {fmt(percentile(hop, 99))}" for hop in hops)
            lines.append(f"| {row.mode} | {cells} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,scaled")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3, help="activations completed before measuring")
    parser.add_argument("--router-delay-ms", type=float, default=50.0)
    parser.add_argument("--intasend-delay-ms", type=float, default=150.0)
    parser.add_argument("--gap-ms", type=float, default=200.0, help="pause between samples")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for one sample")
    parser.add_argument("--server-repo", type=Path, default=REPO, help="checkout the servers run from")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4", help="scaled mode; flushed first")
    parser.add_argument("--database", default="cloudpilot_bench_pin", help="scaled mode; created and dropped")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.mode_list):
        parser.error("modes are embedded and scaled")
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    return args


def target_ms(args: argparse.Namespace) -> float:
    return args.intasend_delay_ms + 2 * args.router_delay_ms + 30


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    rows: list[Row] = []
    for mode in args.mode_list:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        child_argv = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
        code = subprocess.call([*child_argv, "--child", mode, "--child-out", str(out)], cwd=REPO)
        try:
            produced = [Row(**item) for item in json.loads(out.read_text() or "[]")]
        except (OSError, json.JSONDecodeError):
            produced = []
        finally:
            out.unlink(missing_ok=True)
        rows.extend(produced or [Row(mode=mode, error=f"exit {code}")])
    print()
    print(markdown_table(rows, target_ms(args)))
    print()
    print(
        f"router {args.router_delay_ms:g} ms and IntaSend {args.intasend_delay_ms:g} ms per round trip; "
        f"servers from {args.server_repo.resolve()}; gap {args.gap_ms:g} ms, warm-up {args.warmup}"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))
    return 0 if all(row.error is None and not row.missed for row in rows) else 1


class TimedRouter:
    """Notes when each hotspot user's device login arrives (``_login_device`` runs for /ip/hotspot/active/login)."""

    def __init__(self, fake) -> None:
        self.logins: dict[str, float] = {}
        original = fake._login_device

        def login_device(user: str, password: str, mac_address: str, address: str):
            self.logins.setdefault(user, time.perf_counter())
            return original(user, password, mac_address, address)

        fake._login_device = login_device


def child_main(args: argparse.Namespace) -> int:
    import tests.live
    from tests.fakes.intasend_server import FakeIntaSend
    from tests.fakes.routeros_server import PROFILE, FakeRouterOS

    tests.live.REPO = args.server_repo.resolve()  # where the server processes run from
    mode: str = args.child
    row = Row(mode=mode)
    work_dir = Path(tempfile.mkdtemp(prefix=f"cloudpilot-pin-{mode}-"))
    ok = False
    with ExitStack() as stack:
        fake = stack.enter_context(
            FakeIntaSend(
                accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}, response_delay=args.intasend_delay_ms / 1000
            )
        )
        router = stack.enter_context(
            FakeRouterOS(
                username=ROUTER_USERNAME,
                password=ROUTER_PASSWORD,
                reply_delay=args.router_delay_ms / 1000,
                max_commands=100_000,
            )
        )
        timed = TimedRouter(router)
        if mode == "embedded":
            database_url, redis_url = f"sqlite:///{work_dir / 'bench.sqlite3'}", None
        else:
            database_url, redis_url = f"postgres://postgres@127.0.0.1:5432/{args.database}", args.redis_url
            import redis

            redis.Redis.from_url(redis_url).flushdb()
            postgres_database(args.database, "create")
            stack.callback(postgres_database, args.database, "drop")
        env = bench_env(work_dir, fake.base_url, database_url=database_url, redis_url=redis_url, extra=args.extra_env)
        env["ACTIVATION_RETRIES"] = "2"  # the router answers here
        django_setup(env)
        from django.db import connections

        stack.callback(connections.close_all)
        shop = Shop.create(fake)
        from network.models import Router

        Router.objects.filter(pk=shop.router.pk).update(host=router.host, api_port=router.port)
        # The package's profile, as its sync job would have put it (the router was unreachable at createPackage).
        router.seed_row(PROFILE, name=shop.package.profile_name, shared_users="1")

        from tests.live import Daphne, Process, running

        if mode == "embedded":
            web = Daphne(env, work_dir, "daphne")
            processes: list[Process] = [web]
            webhook_server = subscriber_server = web
        else:
            webhook_server, subscriber_server = Daphne(env, work_dir, "daphne-a"), Daphne(env, work_dir, "daphne-b")
            worker = Process(
                "huey", [sys.executable, "manage.py", "run_huey"], {**env, **DEPLOYED_WORKER_ENV}, work_dir
            )
            processes = [webhook_server, subscriber_server, worker]
        try:
            with running(*processes):
                for process in processes:
                    if isinstance(process, Daphne):
                        process.wait_healthy(60)
                pool = shop.payments(args.warmup + args.samples)
                with_device(pool)
                asyncio.run(measure(row, shop, pool, timed, router, webhook_server, subscriber_server, args))
                row.load_1m = os.getloadavg()[0]
            ok = row.error is None and not row.missed
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            args.child_out.write_text(json.dumps([asdict(row)]))
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs, label=f"{mode}: ")


async def watch(url: str, public_key: str, payment_id: str, subscribed: asyncio.Event, timeout: float) -> float | None:
    """One portal: subscribe, then the perf_counter time the activation is first seen ACTIVE."""
    from websockets.asyncio.client import connect

    async with connect(url, subprotocols=["graphql-transport-ws"], ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": public_key}}))
        await asyncio.wait_for(ws.recv(), timeout)
        variables = {"id": payment_id, "secret": CLIENT_SECRET}
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
        await ws.send(json.dumps(subscribe))
        deadline = time.perf_counter() + timeout
        while True:
            raw = await asyncio.wait_for(ws.recv(), max(deadline - time.perf_counter(), 0.01))
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") != "next":
                if message.get("type") in {"error", "complete"}:
                    return None
                continue
            update = message["payload"]["data"]["paymentUpdates"]
            subscribed.set()
            if (update.get("activation") or {}).get("status") == "ACTIVE":
                return now


def post_webhook(url: str, body: bytes) -> float:
    import requests

    t0 = time.perf_counter()
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"webhook answered {response.status_code}")
    return t0


def with_device(pool: list[tuple[str, str]]) -> None:
    """Each payment made from a device on the hotspot's login page (its MAC and IP): active/login follows."""
    from billing.models import Payment

    for index, (payment_id, _) in enumerate(pool):
        Payment.objects.filter(pk=payment_id).update(
            mac_address=f"02:00:00:00:{index // 256:02X}:{index % 256:02X}",
            ip_address=f"10.5.{index // 256}.{index % 256 + 1}",
        )


def access_code(payment_id: str) -> str:
    from network.models import Activation

    return Activation.objects.filter(reference=payment_id).values_list("access_code", flat=True).first() or ""


def record_hops(row: Row, fake, router, t0: float, t_login: float, intasend_delay: float) -> None:
    """Split one sample's webhook → login at IntaSend's status request and the first router command after it."""
    status = next((r for r in fake.requests_to("payment/status/") if r.received_at >= t0), None)
    if status is None:
        return
    answered = status.received_at + intasend_delay
    first = next((c for c in router.commands if c.received_at >= answered), None)
    if first is None or first.received_at > t_login:
        return
    row.to_status_ms.append((status.received_at - t0) * 1000)
    row.status_to_router_ms.append((first.received_at - answered) * 1000)
    row.router_to_login_ms.append((t_login - first.received_at) * 1000)


async def measure(
    row: Row, shop: Shop, pool, timed: TimedRouter, router, webhook_server, subscriber_server, args
) -> None:

    for index, (payment_id, invoice_id) in enumerate(pool):
        measured = index >= args.warmup
        if index == args.warmup:
            router.clear_commands()
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(
            watch(subscriber_server.ws_url, shop.public_key, payment_id, subscribed, args.timeout)
        )
        await asyncio.wait_for(subscribed.wait(), args.timeout)
        shop.fake.settle(invoice_id, "COMPLETE", webhook=False)
        body = json.dumps(shop.fake.webhook_body(invoice_id, challenge=WEBHOOK_CHALLENGE)).encode()
        t0 = await asyncio.to_thread(post_webhook, f"{webhook_server.url}/payments/webhook/", body)
        try:
            t_active = await watcher
        except (TimeoutError, OSError):
            t_active = None
        if measured:
            row.samples += 1
            t_login = timed.logins.get(await asyncio.to_thread(access_code, payment_id))
            if t_active is None or t_login is None:
                row.missed += 1
            else:
                row.login_ms.append((t_login - t0) * 1000)
                row.active_ms.append((t_active - t0) * 1000)
                record_hops(row, shop.fake, router, t0, t_login, args.intasend_delay_ms / 1000)
        await asyncio.sleep(args.gap_ms / 1000)
    for path in router.command_paths():
        row.router_commands[path] = row.router_commands.get(path, 0) + 1


if __name__ == "__main__":
    sys.exit(main())
