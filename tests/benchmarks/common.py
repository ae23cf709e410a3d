"""What the benchmarks of issue 6 share (not the live-latency one, which stands alone).

Each benchmark is a script that runs the real system as child processes against a database of
its own, seeded from the script's own Django (``django_setup``) with the servers' settings, the
way ``live_latency.py`` does it; its ``Shop`` (operator, router, package, IntaSend credential,
PROCESSING payments with invoices at the loopback IntaSend) is reused as is.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.benchmarks.live_latency import (  # noqa: E402  (shared with the live-latency benchmark)
    INTASEND_PUBLIC_KEY,
    INTASEND_SECRET_KEY,
    PRICE,
    WEBHOOK_CHALLENGE,
    Shop,
    percentile,
    server_env,
)
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
BENCH_SETTINGS = "tests.benchmarks.bench_settings"

# Router credentials Shop.create gives its router (FakeRouterOS must accept them).
ROUTER_USERNAME = "cloudpilot"
ROUTER_PASSWORD = "router-pass"


def fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


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


def bench_env(
    work_dir: Path,
    intasend_base_url: str,
    *,
    database_url: str,
    redis_url: str | None = None,
    settings_module: str = "project.settings",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The server processes' environment: live_latency's defaults (DEBUG off, quiet logs, no
    reconciler on idle payments, no activation retries) on the given database/Redis."""
    overrides = {"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": settings_module}
    if redis_url:
        overrides["REDIS_URL"] = redis_url
    overrides.update(extra or {})
    return server_env("embedded", work_dir, intasend_base_url, overrides)


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
