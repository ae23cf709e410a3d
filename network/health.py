"""Router health: ONLINE/OFFLINE as operators see it, kept by a periodic probe and by every contact.

A router coming back (OFFLINE -> ONLINE) starts its FAILED activations again. `lastError` is a few
generic words (as checkRouterConnection's): never the router's own texts, which could name addresses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from network.models import Router
from network.routeros import RouterAuthFailed, RouterError, RouterNotAllowed, RouterUnreachable

logger = logging.getLogger(__name__)

Status = Router.Status


def generic_reason(error: RouterError) -> str:
    """What `Router.lastError` says about a failed probe."""
    if isinstance(error, RouterNotAllowed):
        return "The router's address is not allowed"
    if isinstance(error, RouterAuthFailed):
        return "The router refused the API login"
    if isinstance(error, RouterUnreachable):
        return "The router's API did not answer (unreachable or timed out)"
    return "The router's API answered unexpectedly"


def router_answered(router_id: int, *, at: datetime | None = None) -> None:
    """The router's API answered (a probe, an activation, a profile sync): ONLINE, lastContactAt now.

    Only one caller wins the OFFLINE -> ONLINE change (a conditional UPDATE), and it alone starts the
    router's FAILED activations again.
    """
    at = at or timezone.now()
    came_back = Router.objects.filter(pk=router_id, status=Status.OFFLINE).update(
        status=Status.ONLINE, last_error="", last_contact_at=at
    )
    if not came_back:
        Router.objects.filter(pk=router_id).update(status=Status.ONLINE, last_error="", last_contact_at=at)
        return
    logger.info("Router %s answers again", router_id)

    def retry() -> None:
        from network.activation import activations_retry_failed_for_router

        activations_retry_failed_for_router(router_id)

    transaction.on_commit(retry, robust=True)


def router_failed(router_id: int, error: RouterError) -> None:
    """A probe could not log in: OFFLINE with a generic reason (lastContactAt keeps the last success)."""
    Router.objects.filter(pk=router_id).update(status=Status.OFFLINE, last_error=generic_reason(error))


def _probe_key(router_id: int) -> str:
    return f"network:health-probe:{router_id}"


def probe_soon(router_id: int) -> None:
    """Forget the router's probe schedule (its address or login changed): the next run probes it."""
    cache.delete(_probe_key(router_id))


@dataclass
class ProbeReport:
    probed: int = 0
    online: int = 0


def routers_probe(*, now: datetime | None = None, limit: int | None = None) -> ProbeReport:
    """Log in to the routers that are due (login only, short timeout), at most ``limit`` a run.

    A router is due every ``ROUTER_PROBE_INTERVAL_SECONDS``; one that fails waits twice as long each
    time, up to ``ROUTER_PROBE_MAX_BACKOFF_SECONDS`` (the schedule lives in the cache: losing it only
    means an earlier probe). Longest-unprobed routers first, so a big fleet is covered in turn.
    """
    from network.services import router_driver

    now = now or timezone.now()
    limit = settings.ROUTER_PROBE_BATCH if limit is None else limit
    router_ids = list(Router.objects.filter(deleted_at__isnull=True).order_by("pk").values_list("pk", flat=True))
    schedule = cache.get_many([_probe_key(router_id) for router_id in router_ids])
    due = sorted(
        (entry[0], router_id)
        for router_id in router_ids
        if (entry := schedule.get(_probe_key(router_id), (0.0, 0)))[0] <= now.timestamp()
    )
    report = ProbeReport()
    base = settings.ROUTER_PROBE_INTERVAL_SECONDS
    ceiling = settings.ROUTER_PROBE_MAX_BACKOFF_SECONDS
    for router in Router.objects.filter(pk__in=[router_id for _, router_id in due[:limit]]):
        report.probed += 1
        failures = schedule.get(_probe_key(router.pk), (0.0, 0))[1]
        try:
            with router_driver(router, timeout=settings.ROUTER_PROBE_TIMEOUT_SECONDS):
                pass  # the login is the probe
        except RouterError as error:
            failures += 1
            router_failed(router.pk, error)
        else:
            failures = 0
            report.online += 1
            router_answered(router.pk)
        delay = min(base * 2 ** min(failures, 16), ceiling) if failures else base
        cache.set(_probe_key(router.pk), (now.timestamp() + delay, failures), timeout=int(delay) + ceiling)
    return report
