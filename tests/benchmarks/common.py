"""What the benchmarks share: constants, the servers' environment, the seeded ``Shop`` (operator,
router, package, IntaSend credential, PROCESSING payments with invoices at the loopback IntaSend),
process and machine measurements.

Each benchmark is a script that runs the real system as child processes against a database of
its own, seeded from the script's own Django (``django_setup``) with the servers' settings.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.live import Daphne, Process, free_port, running  # noqa: E402

__all__ = [
    "INTASEND_PUBLIC_KEY",
    "INTASEND_SECRET_KEY",
    "PRICE",
    "POSTGRES_ADMIN_DSN",
    "REPO",
    "WEBHOOK_CHALLENGE",
    "BenchDaphne",
    "Process",
    "Shop",
    "bench_env",
    "cpu_seconds",
    "django_setup",
    "finish",
    "fmt",
    "machine_line",
    "percentile",
    "postgres_database",
    "postgres_cpu_seconds",
    "raise_open_files_limit",
    "rss_kib",
    "running",
]

POSTGRES_ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/postgres"
INTASEND_PUBLIC_KEY = "ISPubKey_test_benchmark00001"
INTASEND_SECRET_KEY = "ISSecretKey_test_benchmark0001"
WEBHOOK_CHALLENGE = "bench-webhook-challenge"
PRICE = Decimal("25.00")
# Every benchmark payment's clientSecret: the portals subscribing to them hold it, as real ones do.
CLIENT_SECRET = "bench-client-secret-0123456789abcdef"

BENCH_SETTINGS = "tests.benchmarks.bench_settings"

# A portal's subscription to its payment (what every WebSocket benchmark's clients send).
PAYMENT_UPDATES = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) { id status } }"
)
# The benchmarks' clients all come from one loopback address and one key or login: with these the
# server takes them as it would many hotspots' (the cap and pacing checks still run; they never refuse
# or make anyone wait).
UNCAPPED_SOCKETS_ENV = {
    "GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS": "1000000",
    "GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY": "1000000",
    "GRAPHQL_WS_MAX_SOCKETS_PER_OPERATOR": "1000000",
    "GRAPHQL_WS_HANDSHAKES_PER_SECOND_PER_ADDRESS": "100000",
    "GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS": "100000",
}

# What deploy/systemd's worker units set for `run_huey`: a worker keeps its PostgreSQL connection from
# job to job (daphne keeps Django's default of one per request).
DEPLOYED_WORKER_ENV = {"DATABASE_CONN_MAX_AGE": "60"}

# Router credentials Shop.create gives its router (FakeRouterOS must accept them).
ROUTER_USERNAME = "cloudpilot"
ROUTER_PASSWORD = "router-pass"


def fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def machine_line() -> str:
    """nproc, RAM, Python, date and load: the line every README table is stamped with."""
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs (nproc), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"{_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC}, "
        f"load avg {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"
    )


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (65536 at most); children inherit it. Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(*pids: int) -> float:
    """User + system CPU the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU used so far by the PostgreSQL server: its live processes, plus what the postmaster's
    reaped children (backends of closed connections) used."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in {"postgres", "postmaster"}:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        try:
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip()
        except OSError:
            parent = ""
        if parent not in {"postgres", "postmaster"}:  # the postmaster: its children's CPU, once reaped
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_database(name: str, action: str) -> None:
    """``create`` (dropping any leftover first) or ``drop`` a benchmark database."""
    import psycopg2

    assert name.startswith("cloudpilot_bench_"), name  # never test_test or anyone else's
    connection = psycopg2.connect(POSTGRES_ADMIN_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if action == "create":
                cursor.execute(f"CREATE DATABASE {name}")
    finally:
        connection.close()


# Background knobs, overridable with --env: keep the reconciler away from the idle benchmark
# payments, don't retry activations and profile syncs against the benchmark's unreachable router
# (127.0.0.1:1), and keep the logs quiet, so the numbers are about the webhook path. (Variables a
# version of the code does not know are simply ignored by it.)
DEFAULT_SERVER_ENV = {
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "PAYMENT_RECONCILE_AFTER_SECONDS": "86400",
    "ACTIVATION_RETRIES": "0",
    "PROFILE_SYNC_RETRIES": "0",
    # The benchmark router lives on loopback, which routers may not use by default (issue 9).
    "ROUTER_ALLOWED_NETWORKS": "127.0.0.1/32",
}


def bench_env(
    work_dir: Path,
    intasend_base_url: str,
    *,
    database_url: str,
    redis_url: str | None = None,
    settings_module: str = "project.settings",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The server processes' environment: DEFAULT_SERVER_ENV on the given database (and Redis)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))}
    env.pop("REDIS_URL", None)
    env.update(DEFAULT_SERVER_ENV)
    env.update(
        PYTHONUNBUFFERED="1",
        INTASEND_API_BASE_URL=intasend_base_url,
        HUEY_SQLITE_PATH=str(work_dir / "huey.sqlite3"),
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE=settings_module,
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def finish(work_dir: Path, *, ok: bool, keep_logs: bool, label: str = "") -> int:
    """Delete a run's work folder when it went well (unless asked to keep it), else say where its
    logs are; the exit code."""
    if ok and not keep_logs:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        print(f"{label}logs kept in {work_dir}", file=sys.stderr)
    return 0 if ok else 1


def django_setup(env: dict[str, str]) -> None:
    """Migrate the benchmark database and set this process's Django up on it (to seed and check)."""
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, capture_output=True, text=True
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")
    os.environ.pop("REDIS_URL", None)
    os.environ.update(env)
    import django

    django.setup()


class BenchDaphne(Daphne):
    """daphne under ``bash -c "ulimit -n N && exec python -m daphne ..."`` (the pid is daphne's)."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "daphne", *, nofile: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        nofile = nofile or raise_open_files_limit()
        command = (
            f"ulimit -n {nofile} && exec {sys.executable} -m daphne -b 127.0.0.1 -p {self.port} "
            "project.asgi:application"
        )
        Process.__init__(self, name, ["bash", "-c", command], env, log_dir)


def wait_until(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Shop:
    fake: Any
    operator: Any
    router: Any
    package: Any
    credential: Any
    public_key: str
    phones: int = 0

    @classmethod
    def create(cls, fake) -> Shop:
        from django.contrib.auth import get_user_model

        from billing.models import OperatorProfile
        from billing.services import CredentialInput, credential_add
        from network.services import PackageInput, RouterInput, package_create, router_create

        operator = get_user_model().objects.create_user(username="bench", password="bench-password-123")
        # Port 1 on loopback: nothing listens, so any router job fails fast (and retries in the background).
        router = router_create(
            operator=operator,
            data=RouterInput(
                name="Bench", host="127.0.0.1", username=ROUTER_USERNAME, password=ROUTER_PASSWORD, api_port=1
            ),
        )
        package = package_create(
            operator=operator,
            data=PackageInput(router_id=router.pk, name="1 Hour", price=PRICE, duration_minutes=60),
        )
        credential = credential_add(
            operator=operator,
            data=CredentialInput(
                api_key=INTASEND_PUBLIC_KEY, private_key=INTASEND_SECRET_KEY, webhook_challenge=WEBHOOK_CHALLENGE
            ),
        )
        public_key = OperatorProfile.objects.get(user=operator).public_key
        return cls(fake, operator, router, package, credential, public_key)

    def payments(self, count: int) -> list[tuple[str, str]]:
        """`count` PROCESSING STK-push payments with their invoices at the fake: [(payment_id, invoice_id)]."""
        from billing.models import Payment

        rows, made = [], []
        for _ in range(count):
            self.phones += 1
            payment_id = uuid.uuid4()
            phone = f"2547{self.phones:08d}"
            invoice = self.fake.ledger.create_invoice(
                public_key=INTASEND_PUBLIC_KEY,
                value=PRICE,
                currency="KES",
                account=phone,
                api_ref=str(payment_id),
                host="127.0.0.1",
                phone_number=phone,
            )
            rows.append(
                Payment(
                    id=payment_id,
                    owner=self.operator,
                    router=self.router,
                    package=self.package,
                    credential=self.credential,
                    kind=Payment.Kind.STK_PUSH,
                    phone_number=phone,
                    amount=PRICE,
                    currency="KES",
                    status=Payment.Status.PROCESSING,
                    intasend_payment_id=invoice.payment_id,
                    intasend_invoice_id=invoice.invoice_id,
                    intasend_state=invoice.state,
                    client_secret=CLIENT_SECRET,
                )
            )
            made.append((str(payment_id), invoice.invoice_id))
        Payment.objects.bulk_create(rows, batch_size=500)
        return made
