"""`/metrics`: Prometheus series for alerting (API.md "Operability"; the guide is docs/operations.md).

Two kinds of series, and why:

- What the database knows (payments, activations, routers) and the task queue's depth are read at
  scrape time, one aggregate query each: every process answers the same, nothing to keep in sync.
- What happens inside a process (webhook deliveries, latencies, activation attempts, open sockets
  and subscriptions) is recorded where it happens. With `PROMETHEUS_MULTIPROC_DIR` set (production),
  prometheus_client writes those values to files in that directory, and any process of the host
  serves the sum of all of them: the daphne processes and the Huey workers (which run activations)
  share one directory per host, and Prometheus scrapes each host once. Without it (one embedded
  process, tests), the values live in this process's memory.

No label names a router, phone, payment or operator: label values come from fixed, short lists.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client switches to files on the variable's mere presence: empty would mean files in
    # whatever the working directory is. Empty means off, as for every other setting.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead  # noqa: E402

logger = logging.getLogger(__name__)

# prometheus_client decides at its import whether values go to files: set it before the process starts.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# A router counts as ONLINE this long after its API last answered. Routers are only contacted when
# there is work (activations, expiries, retries, checks), so OFFLINE means "not heard from lately".
ROUTER_ONLINE_WINDOW = timedelta(minutes=15)

# The classic text format (what generate_latest writes), which every Prometheus version parses.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

# The answer's `status` (API.md "Webhook"): accepted and ignored are 200, rejected 403, invalid 400,
# unavailable 503 (the queue is down); `error` is an unexpected exception (500).
WEBHOOK_OUTCOMES = ("accepted", "ignored", "rejected", "invalid", "unavailable", "error")
CONFIRMATION_SOURCES = ("API", "GATEWAY", "CHECK", "WEBHOOK", "POLL", "SYSTEM")  # PaymentEvent.Source
PAYMENT_KINDS = ("STK_PUSH", "PAYMENT_LINK")
ACTIVATION_ATTEMPT_OUTCOMES = ("ACTIVE", "RETRY", "FAILED")  # network.activation.Outcome, SKIPPED aside

WEBHOOK_DELIVERIES = Counter(
    "cloudpilot_webhook_deliveries",
    "IntaSend webhook deliveries by outcome: accepted, ignored (unknown payment), rejected (403, wrong "
    "challenge), invalid (400), unavailable (503, queue down), error (500)",
    ["outcome"],
    registry=None,
)
PAYMENT_CONFIRMATION_SECONDS = Histogram(
    "cloudpilot_payment_confirmation_seconds",
    "Payment created to COMPLETED applied, by the path that brought the confirmation (WEBHOOK: the "
    "webhook's status check, CHECK: checkPaymentStatus, POLL: the reconciler) and the payment's kind",
    ["source", "kind"],
    buckets=(5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600),
    registry=None,
)
ACTIVATION_SECONDS = Histogram(
    "cloudpilot_activation_latency_seconds",
    "Grant made (payment COMPLETED) to its activation ACTIVE on the router (retries included)",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
    registry=None,
)
ACTIVATION_ATTEMPTS = Counter(
    "cloudpilot_activation_attempts",
    "Activation attempts on routers by outcome: ACTIVE, RETRY (failed, will be tried again), FAILED (given up)",
    ["outcome"],
    registry=None,
)
WEBSOCKETS_OPEN = Gauge(
    "cloudpilot_websockets_open",
    "Open, authenticated GraphQL WebSockets",
    registry=None,
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "cloudpilot_subscriptions_active",
    "GraphQL subscriptions listening for changes",
    registry=None,
    multiprocess_mode="livesum",
)
# The caps are per process (project.socket_caps), so is the busiest count: the host shows its maximum.
WEBSOCKETS_BUSIEST_ADDRESS = Gauge(
    "cloudpilot_websockets_busiest_address",
    "Open WebSockets of the client address with the most of them, in the busiest process "
    "(capped by GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS)",
    registry=None,
    multiprocess_mode="livemax",
)
WEBSOCKETS_BUSIEST_PUBLIC_KEY = Gauge(
    "cloudpilot_websockets_busiest_public_key",
    "Open WebSockets of the portal public key with the most of them, in the busiest process "
    "(capped by GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY)",
    registry=None,
    multiprocess_mode="livemax",
)
GC_GENERATIONS = ("0", "1", "2")
GC_PAUSE_SECONDS = Histogram(
    "cloudpilot_gc_pause_seconds",
    "Garbage collections by generation and how long each stopped the process (project.gc_tuning)",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
    registry=None,
)
GC_COLLECTED_OBJECTS = Counter(
    "cloudpilot_gc_collected_objects",
    "Unreachable objects the garbage collector freed, by generation",
    ["generation"],
    registry=None,
)
GC_LONGEST_PAUSE_SECONDS = Gauge(
    "cloudpilot_gc_longest_pause_seconds",
    "The longest garbage collection pause since the process started (the longest of the host's processes)",
    registry=None,
    multiprocess_mode="livemax",
)
GC_FROZEN_OBJECTS = Gauge(
    "cloudpilot_gc_frozen_objects",
    "Objects in the frozen generation (gc.freeze), walked only by the quiet-time collection; counted at "
    "start-up and after each such collection (project.gc_tuning)",
    registry=None,
    multiprocess_mode="livesum",
)
_RECORDED_IN_PROCESS = (
    WEBHOOK_DELIVERIES,
    PAYMENT_CONFIRMATION_SECONDS,
    ACTIVATION_SECONDS,
    ACTIVATION_ATTEMPTS,
    WEBSOCKETS_OPEN,
    SUBSCRIPTIONS_ACTIVE,
    WEBSOCKETS_BUSIEST_ADDRESS,
    WEBSOCKETS_BUSIEST_PUBLIC_KEY,
    GC_PAUSE_SECONDS,
    GC_COLLECTED_OBJECTS,
    GC_LONGEST_PAUSE_SECONDS,
    GC_FROZEN_OBJECTS,
)

# Every label value exists from the start: `rate()` and `increase()` need a series before its first event.
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)
for _outcome in ACTIVATION_ATTEMPT_OUTCOMES:
    ACTIVATION_ATTEMPTS.labels(outcome=_outcome)
for _source in CONFIRMATION_SOURCES:
    for _kind in PAYMENT_KINDS:
        PAYMENT_CONFIRMATION_SECONDS.labels(source=_source, kind=_kind)
for _generation in GC_GENERATIONS:
    GC_PAUSE_SECONDS.labels(generation=_generation)
    GC_COLLECTED_OBJECTS.labels(generation=_generation)


# --- Recording (one call at each place where it happens) ----------------------------------------


def counts_webhook_outcomes(receive: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates `webhook_receive`: counts each delivery by the `status` of its answer."""

    @functools.wraps(receive)
    def counted(*args: Any, **kwargs: Any) -> Any:
        try:
            answer = receive(*args, **kwargs)
        except Exception:
            WEBHOOK_DELIVERIES.labels(outcome="error").inc()
            raise
        outcome = answer.body.get("status")
        WEBHOOK_DELIVERIES.labels(outcome=outcome if outcome in WEBHOOK_OUTCOMES else "error").inc()
        return answer

    return counted


def payment_completed(payment: Any, source: str) -> None:
    """Inside the transaction that completes the payment: observed once it commits (a rollback never was)."""
    seconds = max((payment.completed_at - payment.created_at).total_seconds(), 0.0)
    observe = PAYMENT_CONFIRMATION_SECONDS.labels(source=source, kind=payment.kind).observe
    transaction.on_commit(lambda: observe(seconds), robust=True)


def activation_recorded(activation: Any, outcome: Any) -> None:
    """After an attempt's outcome is committed (network.activation._record)."""
    ACTIVATION_ATTEMPTS.labels(outcome=outcome.value).inc()
    completed_at = activation.granted_at
    if outcome.value == "ACTIVE" and completed_at is not None:
        ACTIVATION_SECONDS.observe(max((activation.activated_at - completed_at).total_seconds(), 0.0))


_open_sockets: weakref.WeakSet = weakref.WeakSet()


def socket_opened(consumer: Any) -> None:
    """An authenticated socket was accepted (counted once, whatever closes it later)."""
    _open_sockets.add(consumer)
    WEBSOCKETS_OPEN.inc()
    _refresh_busiest_sockets()


_sockets_closed = [0]


def open_socket_count() -> int:
    return len(_open_sockets)


def sockets_closed() -> int:
    """Authenticated sockets closed since the process started (project.gc_tuning)."""
    return _sockets_closed[0]


def socket_closed(consumer: Any) -> None:
    if consumer in _open_sockets:
        _open_sockets.discard(consumer)
        _sockets_closed[0] += 1
        WEBSOCKETS_OPEN.dec()
    _refresh_busiest_sockets()


def _refresh_busiest_sockets() -> None:
    from project.socket_caps import busiest

    by_address, by_public_key = busiest()
    WEBSOCKETS_BUSIEST_ADDRESS.set(by_address)
    WEBSOCKETS_BUSIEST_PUBLIC_KEY.set(by_public_key)


_longest_gc_pause = [0.0]


def gc_collection(generation: int, seconds: float, collected: int) -> None:
    """One garbage collection, timed by project.gc_tuning's probe."""
    GC_PAUSE_SECONDS.labels(generation=str(generation)).observe(seconds)
    GC_COLLECTED_OBJECTS.labels(generation=str(generation)).inc(collected)
    if seconds > _longest_gc_pause[0]:
        _longest_gc_pause[0] = seconds
        GC_LONGEST_PAUSE_SECONDS.set(seconds)


def gc_frozen(objects: int) -> None:
    GC_FROZEN_OBJECTS.set(objects)


# --- Read at scrape time ------------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


def _database_series(now) -> Iterator[Metric]:
    from billing.models import Payment, PaymentProvider
    from network.models import Activation, Router

    payments = {(s, p): 0.0 for s in Payment.Status.values for p in PaymentProvider.values}
    oldest_open: dict[tuple[str, str], float] = {}
    rows = (
        Payment.objects.order_by()
        .values("status", "payment_provider")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    for row in rows:
        key = (row["status"], row["payment_provider"])
        payments[key] = float(row["n"])
        if row["status"] in (Payment.Status.PENDING, Payment.Status.PROCESSING):
            oldest_open[key] = max((now - row["oldest"]).total_seconds(), 0.0)
    yield _gauge("cloudpilot_payments", "Payments by status and provider", ["status", "provider"], payments)
    yield _gauge(
        "cloudpilot_payments_oldest_open_age_seconds",
        "Age of the oldest PENDING or PROCESSING payment, by status and provider (absent when none)",
        ["status", "provider"],
        oldest_open,
    )

    activations = {(s,): 0.0 for s in Activation.Status.values}
    oldest_pending: dict[tuple[str, ...], float] = {}
    for row in Activation.objects.order_by().values("status").annotate(n=Count("id"), oldest=Min("created_at")):
        activations[(row["status"],)] = float(row["n"])
        if row["status"] == Activation.Status.PENDING:
            oldest_pending[()] = max((now - row["oldest"]).total_seconds(), 0.0)
    yield _gauge("cloudpilot_activations", "Activations by status", ["status"], activations)
    yield _gauge(
        "cloudpilot_activations_oldest_pending_age_seconds",
        "Age of the oldest PENDING activation (absent when none)",
        [],
        oldest_pending,
    )

    recent = now - ROUTER_ONLINE_WINDOW
    routers = Router.objects.aggregate(
        ONLINE=Count("id", filter=Q(last_contact_at__gte=recent)),
        OFFLINE=Count("id", filter=Q(last_contact_at__lt=recent)),
        UNKNOWN=Count("id", filter=Q(last_contact_at__isnull=True)),
    )
    yield _gauge(
        "cloudpilot_routers",
        "Routers by status: ONLINE (API answered in the last 15 minutes), OFFLINE (not since), UNKNOWN (never)",
        ["status"],
        {(status,): float(n) for status, n in routers.items()},
    )


def _queue_series() -> Iterator[Metric]:
    from huey.contrib.djhuey import HUEY

    yield _gauge("cloudpilot_task_queue_pending", "Jobs waiting in the task queue", [], {(): HUEY.pending_count()})


class _ScrapeTime:
    """The series read at scrape time; a source that fails is reported down, not a failed scrape."""

    def collect(self) -> Iterator[Metric]:
        up: dict[tuple[str, ...], float] = {}
        for source, series in (("database", lambda: _database_series(timezone.now())), ("task_queue", _queue_series)):
            try:
                families = list(series())
            except Exception as exc:  # report, don't raise: the scrape must still say what is broken
                logger.warning("Metrics: %s unavailable (%s: %s)", source, type(exc).__name__, exc)
                up[(source,)] = 0.0
                continue
            up[(source,)] = 1.0
            yield from families
        yield _gauge("cloudpilot_metrics_source_up", "1 when the source answered at this scrape", ["source"], up)
        yield _gauge(
            "cloudpilot_websocket_socket_cap",
            "Per-process cap on open WebSockets, by what it applies to",
            ["scope"],
            {
                ("address",): settings.GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS,
                ("public_key",): settings.GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY,
            },
        )


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _forget_stopped_processes(directory: str) -> None:
    """The sockets and subscriptions of a process that stopped (or was killed) are not open any more;
    what it counted stays in the sums (prometheus_client keeps the files of the other kinds)."""
    for file in Path(directory).glob("gauge_live*_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        if not _process_running(pid):
            mark_process_dead(pid, directory)


class _Scrape:
    def collect(self) -> Iterator[Metric]:
        from project.gc_tuning import record_pauses

        record_pauses()  # this process's collections so far, not only those of the last flush
        if MULTIPROCESS_DIR:
            _forget_stopped_processes(MULTIPROCESS_DIR)
            yield from MultiProcessCollector(None, path=MULTIPROCESS_DIR).collect()
        else:
            # One process: its own Python process series too (multiprocess mode has none).
            yield from REGISTRY.collect()
            for metric in _RECORDED_IN_PROCESS:
                yield from metric.collect()
        yield from _ScrapeTime().collect()


# --- The view -----------------------------------------------------------------------------------


def _bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@csrf_exempt  # read-only and cookie-less: a stray POST gets a plain 405, not a CSRF page
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """With METRICS_TOKEN: its bearer token or 401. Without: only with DEBUG on (a development box)."""
    token = settings.METRICS_TOKEN
    if token and not _bearer_token_matches(request, token):
        response = HttpResponse("Bearer token required\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    elif not token and not settings.DEBUG:
        raise Http404("Metrics are off: set METRICS_TOKEN")
    else:
        response = HttpResponse(generate_latest(_Scrape()), content_type=TEXT_FORMAT)
    response["Cache-Control"] = "no-store"
    return response
