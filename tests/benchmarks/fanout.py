#!/usr/bin/env python
"""Fan-out: one payment's completion to N subscribers of it, and to N operator streams (issue 14 item 3).

Usage (repo root; loopback only; the scaled mode needs Redis and PostgreSQL)::

    .venv/bin/python tests/benchmarks/fanout.py [--modes embedded,scaled] [--subscribers 1000]
        [--redis-url redis://127.0.0.1:6379/5] [--database cloudpilot_bench_fanout] [--env KEY=VALUE ...]

Each mode runs in a child interpreter (Django settings are per process) with the real system:
``embedded`` one daphne (SQLite, in-memory channel layer, task consumer inside); ``scaled`` Redis
(``--redis-url``, flushed first) + PostgreSQL (``--database``, created and dropped), daphne A and B
and one ``run_huey``: subscribers connect to B, the webhook goes to A. A loopback RouterOS
(tests/fakes) answers the activation, so each stream sees COMPLETED and then ACTIVE.

Two rounds per mode, each on a fresh PROCESSING payment:

* ``payment``: N graphql-transport-ws sockets (portal public key), each subscribed to
  ``paymentUpdates`` of that ONE payment with its client secret;
* ``operator``: N sockets with the operator's JWT, each subscribed to ``operatorPaymentUpdates``.

Once every subscription is open (and, for ``payment``, got its first message), the invoice is
settled at the loopback IntaSend, t0 is taken and the COMPLETE webhook POSTed to daphne (A). Every
socket notes when it received COMPLETED and ACTIVE; reported from t0: first / p50 / p99 / last.
All sockets live in one client process (asyncio ``websockets``; its own parsing is part of the
numbers). The per-address socket caps and pacing are raised for the run, as for one big NAT.
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
    UNCAPPED_SOCKETS_ENV,
    WEBHOOK_CHALLENGE,
    BenchDaphne,
    Shop,
    bench_env,
    django_setup,
    finish,
    fmt,
    percentile,
    postgres_database,
    raise_open_files_limit,
)

MODES = ("embedded", "scaled")
PAYMENT_SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) "
    "{ id status phoneNumber activation { status } } }"
)
OPERATOR_SUBSCRIBE = "subscription { operatorPaymentUpdates { id status phoneNumber activation { status } } }"
# One big NAT: the caps and pacing meant for many clients must not throttle the benchmark's one client.
CAPS_ENV = {
    **UNCAPPED_SOCKETS_ENV,
    "ACTIVATION_RETRIES": "3",
}


@dataclass
class Round:
    mode: str
    kind: str  # payment | operator
    subscribers: int
    connect_s: float = math.nan
    webhook_ms: float = math.nan
    completed_ms: list[float] = field(default_factory=list)
    active_ms: list[float] = field(default_factory=list)
    problems: int = 0
    problem: str | None = None
    load_1m: float = math.nan


def _spread(values: list[float]) -> str:
    if not values:
        return "– | – | – | –"
    values = sorted(values)
    return f"{fmt(values[0])} | {fmt(percentile(values, 50))} | {fmt(percentile(values, 99))} | {fmt(values[-1])}"


def table(rounds: list[Round]) -> str:
    lines = [
        "| mode | stream | N | COMPLETED got | first / p50 / p99 / last ms | ACTIVE got "
        "| first / p50 / p99 / last ms | webhook 200 ms | connect s | problems | load 1m |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rounds:
        if r.problem and not r.completed_ms:
            lines.append(f"| {r.mode} | {r.kind} | {r.subscribers} | error: {r.problem} | | | | | | | |")
            continue
        lines.append(
            f"| {r.mode} | {r.kind} | {r.subscribers} | {len(r.completed_ms)} | "
            f"{_spread(r.completed_ms).replace(' | ', ' / ')} | {len(r.active_ms)} | "
            f"{_spread(r.active_ms).replace(' | ', ' / ')} | {fmt(r.webhook_ms)} | {fmt(r.connect_s)} | "
            f"{r.problems} | {fmt(r.load_1m, 2)} |"
        )
    return "\n".join(lines)


# --- the client ------------------------------------------------------------------------------------


class Socket:
    def __init__(self, payload: dict, query: str, variables: dict, field_name: str, payment_id: str) -> None:
        self.payload, self.query, self.variables, self.field = payload, query, variables, field_name
        self.payment_id = payment_id
        self.ws = None
        self.completed_at: float | None = None
        self.active_at: float | None = None
        self.problem: str | None = None
        self.subscribed = asyncio.get_running_loop().create_future()
        self.reader: asyncio.Task | None = None

    async def open(self, url: str, wait_first: bool) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=60, ping_interval=None)
        await self.ws.send(json.dumps({"type": "connection_init", "payload": self.payload}))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        self.reader = asyncio.create_task(self._read())
        payload = {"query": self.query, "variables": self.variables}
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        if wait_first:
            await asyncio.wait_for(asyncio.shield(self.subscribed), 60)

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
                        self._fail(f"errors: {payload['errors']}")
                        continue
                    payment = payload["data"][self.field]
                    if payment["id"] != self.payment_id:
                        continue
                    if not self.subscribed.done():
                        self.subscribed.set_result(None)
                    if payment["status"] == "COMPLETED" and self.completed_at is None:
                        self.completed_at = now
                    if (payment.get("activation") or {}).get("status") == "ACTIVE" and self.active_at is None:
                        self.active_at = now
                elif kind == "complete" and self.active_at is not None:
                    return
                elif kind in {"error", "complete"}:
                    self._fail(f"{kind}: {message}")
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")

    def _fail(self, text: str) -> None:
        self.problem = self.problem or text
        if not self.subscribed.done():
            self.subscribed.set_exception(RuntimeError(text))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: S110 - closing is best effort
                pass


def post_webhook(url: str, body: bytes) -> tuple[float, float, int]:
    import requests

    t0 = time.perf_counter()
    response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    return t0, time.perf_counter(), response.status_code


async def run_round(
    row: Round,
    *,
    shop: Shop,
    payment: tuple[str, str],
    token: str,
    ws_url: str,
    webhook_url: str,
    concurrency: int,
    timeout: float,
) -> None:
    payment_id, invoice_id = payment
    if row.kind == "payment":
        make = lambda: Socket(  # noqa: E731
            {"X-Public-Key": shop.public_key},
            PAYMENT_SUBSCRIBE,
            {"id": payment_id, "secret": CLIENT_SECRET},
            "paymentUpdates",
            payment_id,
        )
    else:
        make = lambda: Socket(  # noqa: E731
            {"Authorization": f"Bearer {token}"}, OPERATOR_SUBSCRIBE, {}, "operatorPaymentUpdates", payment_id
        )
    sockets = [make() for _ in range(row.subscribers)]
    gate = asyncio.Semaphore(concurrency)

    async def open_one(socket: Socket) -> None:
        async with gate:
            await socket.open(ws_url, wait_first=row.kind == "payment")

    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(open_one(s) for s in sockets), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise RuntimeError(f"{len(failures)} of {row.subscribers} could not subscribe: {failures[0]!r}")
        row.connect_s = time.perf_counter() - started
        # Operator streams send nothing until a change: give the last subscribe frames time to land.
        await asyncio.sleep(2.0)
        shop.fake.settle(invoice_id, "COMPLETE", webhook=False)
        body = json.dumps(shop.fake.webhook_body(invoice_id, challenge=WEBHOOK_CHALLENGE)).encode()
        t0, t_response, status = await asyncio.to_thread(post_webhook, webhook_url, body)
        if status != 200:
            raise RuntimeError(f"webhook answered {status}")
        row.webhook_ms = (t_response - t0) * 1000
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and any(s.active_at is None and not s.problem for s in sockets):
            await asyncio.sleep(0.05)
        row.completed_ms = [(s.completed_at - t0) * 1000 for s in sockets if s.completed_at is not None]
        row.active_ms = [(s.active_at - t0) * 1000 for s in sockets if s.active_at is not None]
    finally:
        broken = [s for s in sockets if s.problem]
        row.problems = len(broken)
        if broken:
            row.problem = broken[0].problem[:200]
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
        row.load_1m = os.getloadavg()[0]


# --- one mode ------------------------------------------------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    from tests.fakes.intasend_server import FakeIntaSend
    from tests.fakes.routeros_server import FakeRouterOS

    mode: str = args.child
    rounds: list[Round] = []
    work_dir = Path(tempfile.mkdtemp(prefix=f"cloudpilot-bench-fanout-{mode}-"))
    ok = False
    with ExitStack() as stack:
        fake = stack.enter_context(FakeIntaSend(accounts={INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY}))
        router = stack.enter_context(FakeRouterOS(username=ROUTER_USERNAME, password=ROUTER_PASSWORD))
        extra = {**CAPS_ENV, **args.extra_env}
        if mode == "embedded":
            env = bench_env(
                work_dir, fake.base_url, database_url=f"sqlite:///{work_dir / 'bench.sqlite3'}", extra=extra
            )
        else:
            import redis

            redis.Redis.from_url(args.redis_url).flushdb()
            postgres_database(args.database, "create")
            stack.callback(postgres_database, args.database, "drop")
            env = bench_env(
                work_dir,
                fake.base_url,
                database_url=f"postgres://postgres@127.0.0.1:5432/{args.database}",
                redis_url=args.redis_url,
                extra=extra,
            )
        django_setup(env)
        from django.db import connections

        from network.models import Router
        from project.auth import issue_tokens
        from tests.live import Process, running

        stack.callback(connections.close_all)
        shop = Shop.create(fake)
        Router.objects.filter(pk=shop.router.pk).update(api_port=router.port)
        token = issue_tokens(shop.operator).access_token
        if mode == "embedded":
            web = BenchDaphne(env, work_dir, "daphne")
            processes: list = [web]
            webhook_server = subscriber_server = web
        else:
            webhook_server, subscriber_server = (
                BenchDaphne(env, work_dir, "daphne-a"),
                BenchDaphne(env, work_dir, "daphne-b"),
            )
            worker = Process(
                "huey", [sys.executable, "manage.py", "run_huey"], {**env, **DEPLOYED_WORKER_ENV}, work_dir
            )
            processes = [webhook_server, subscriber_server, worker]
        try:
            with running(*processes):
                webhook_server.wait_healthy(60)
                subscriber_server.wait_healthy(60)
                for kind in args.kinds.split(","):
                    for n in args.subscriber_list:
                        row = Round(mode, kind, n)
                        try:
                            asyncio.run(
                                run_round(
                                    row,
                                    shop=shop,
                                    payment=shop.payments(1)[0],
                                    token=token,
                                    ws_url=subscriber_server.ws_url,
                                    webhook_url=f"{webhook_server.url}/payments/webhook/",
                                    concurrency=args.connect_concurrency,
                                    timeout=args.timeout,
                                )
                            )
                        except Exception as exc:
                            row.problem = f"{type(exc).__name__}: {exc}"[:200]
                        rounds.append(row)
                        print(table([row]).splitlines()[-1], file=sys.stderr, flush=True)
                        connections.close_all()
            ok = all(r.problem is None and len(r.active_ms) == r.subscribers for r in rounds)
        finally:
            args.child_out.write_text(json.dumps([asdict(r) for r in rounds]))
    return finish(work_dir, ok=ok, keep_logs=args.keep_logs, label=f"{mode}: ")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,scaled")
    parser.add_argument("--kinds", default="payment,operator", help="comma-separated: payment,operator")
    parser.add_argument("--subscribers", default="1000", help="comma-separated subscriber counts")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for every ACTIVE")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="scaled mode's Redis (flushed)")
    parser.add_argument("--database", default="cloudpilot_bench_fanout", help="scaled mode's PostgreSQL database")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.subscriber_list = [int(n) for n in args.subscribers.split(",") if n.strip()]
    args.extra_env = dict(item.split("=", 1) for item in args.env)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_files_limit()
    if args.child:
        return child_main(args)
    rounds: list[Round] = []
    for mode in args.modes.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        print(f"== {mode} ==", file=sys.stderr, flush=True)
        child = [
            sys.executable,
            __file__,
            *(argv if argv is not None else sys.argv[1:]),
            "--child",
            mode,
            "--child-out",
            str(out),
        ]
        code = subprocess.call(child, cwd=REPO)
        try:
            rounds += [Round(**item) for item in json.loads(out.read_text() or "[]")]
        except (OSError, json.JSONDecodeError):
            rounds.append(Round(mode, "-", 0, problem=f"exit {code}"))
        finally:
            out.unlink(missing_ok=True)
    print()
    print(table(rounds))
    print()
    print(f"load average {os.getloadavg()}; times from the webhook POST (t0) to the frame on the client socket")
    return 0 if all(r.problem is None and len(r.active_ms) == r.subscribers for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
