"""Background jobs of network. They only call services; enqueue them after commit."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.api import Task
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task
from huey.exceptions import CancelExecution

from network import activation, grants, health, services
from network.routeros import RouterError

logger = logging.getLogger(__name__)


def _retry_later(task: Task | None) -> None:
    """An expected failure (the router is down or refuses), already logged by the caller as one
    WARNING line with the attempt and the reason: Huey runs the job again after its backoff. Huey
    logs any other exception as "Unhandled exception" with a traceback; `CancelExecution(retry=True)`
    consumes one retry without that (project.logging_config quiets Huey's own line about it)."""
    if task is not None and task.retries:
        raise CancelExecution(retry=True)


# The decorator's numbers are defaults for direct calls; `enqueue_activation` passes the settings'.
@db_task(retries=6, retry_delay=5, retry_backoff=2, context=True)
def activate_customer(activation_id: int, task: Task | None = None) -> str:
    """Put a paid customer online; retried with exponential backoff while the router fails."""
    # Huey counts retries down; 0 left means nobody will run this again, so a failure is final.
    final_attempt = task is None or not task.retries
    outcome = activation.activation_perform(activation_id, final_attempt=final_attempt)
    if outcome is activation.Outcome.RETRY:
        _retry_later(task)  # network.activation logged the attempt and its error
    return outcome.value


def enqueue_activation(activation_id: int, *, after_a_failed_attempt: bool = False) -> None:
    """Queue the activation job with the configured retries (5 s, 10 s, 20 s, ... by default).

    ``after_a_failed_attempt``: the first attempt was made elsewhere (network.activation's
    first_attempts_here) and failed; the job is its retries, on the same schedule."""
    delay = settings.ACTIVATION_RETRY_DELAY_SECONDS
    if not after_a_failed_attempt:
        activate_customer(
            activation_id,
            retries=settings.ACTIVATION_RETRIES,
            retry_delay=delay,
            retry_backoff=settings.ACTIVATION_RETRY_BACKOFF,
        )
        return
    activate_customer.schedule(
        args=(activation_id,),
        delay=delay,
        retries=max(settings.ACTIVATION_RETRIES - 1, 0),
        retry_delay=delay * settings.ACTIVATION_RETRY_BACKOFF,
        retry_backoff=settings.ACTIVATION_RETRY_BACKOFF,
    )


@db_task(retries=3, retry_delay=10, retry_backoff=2, context=True)
def sync_package_profile(package_id: int, task: Task | None = None) -> None:
    """Push a package's hotspot user profile to its router (activation only creates one the router lacks)."""
    try:
        services.package_profile_sync(package_id=package_id)
    except RouterError as exc:
        retries_left = task.retries if task is not None else 0
        attempt = max(settings.PROFILE_SYNC_RETRIES - retries_left, 0) + 1
        # Messages name our objects only: a router's own texts stay out of the logs.
        # Not ERROR even on the last try: activation creates the profile if the router lacks it (a changed
        # profile waits for the next sync: updatePackage, or the router's address changing).
        logger.warning(
            "Profile sync of package %s failed on attempt %d (%s); %s",
            package_id,
            attempt,
            type(exc).__name__,
            "retrying" if retries_left else "giving up, activation creates it if the router lacks it",
        )
        _retry_later(task)


def enqueue_profile_sync(package_id: int) -> None:
    sync_package_profile(
        package_id,
        retries=settings.PROFILE_SYNC_RETRIES,
        retry_delay=settings.PROFILE_SYNC_RETRY_DELAY_SECONDS,
        retry_backoff=settings.ACTIVATION_RETRY_BACKOFF,
    )


def _grant_router_job(what: str, work, activation_id: int, task: Task | None) -> None:
    try:
        work(activation_id)
    except RouterError as exc:
        retries_left = task.retries if task is not None else 0
        # Names our objects only: a router's own texts stay out of the logs.
        logger.warning(
            "Activation %s: %s on the router failed (%s); %s",
            activation_id,
            what,
            type(exc).__name__,
            "retrying" if retries_left else "giving up",
        )
        _retry_later(task)


@db_task(retries=12, retry_delay=5, retry_backoff=2, context=True)
def push_grant_limit(activation_id: int, task: Task | None = None) -> None:
    """extendAccess: the router user's limit-uptime grows too; retried while the router is down."""
    _grant_router_job("raising the limit-uptime", grants.grant_push_limit, activation_id, task)


@db_task(retries=12, retry_delay=5, retry_backoff=2, context=True)
def remove_revoked_user(activation_id: int, task: Task | None = None) -> None:
    """revokeAccess: every device of the code off the router, the user removed; retried while it is down
    (12 tries doubling from 5 s: about 6 hours)."""
    _grant_router_job("removing the revoked user", grants.grant_remove_revoked_user, activation_id, task)


@db_periodic_task(crontab(minute="*"))
@lock_task("network.expire_activations")
def expire_activations() -> int:
    """Take customers whose package ran out off their routers; unreachable routers wait for the next run."""
    report = activation.activations_expire_due()
    return report.expired


@db_periodic_task(crontab(minute="*/5"))
@lock_task("network.rescue_activations")
def rescue_stalled_activations() -> int:
    """Start again the PENDING activations whose job was lost (worker died, queue down at enqueue)."""
    stalled = activation.activations_stalled()
    for activation_id in stalled:
        logger.warning("Activation %s stalled while PENDING; enqueuing it again", activation_id)
        activation.activation_mark_rescued(activation_id)
        enqueue_activation(activation_id)
    return len(stalled)


@db_periodic_task(crontab(minute="*"))
@lock_task("network.auto_retry_activations")
def auto_retry_failed_activations() -> int:
    """Start FAILED activations again by themselves once their router answers (probed with a backoff)."""
    report = activation.activations_auto_retry()
    return report.retried


@db_periodic_task(crontab(minute="*"))
@lock_task("network.probe_routers")
def probe_routers() -> int:
    """Keep routers' status, lastContactAt and lastError current (a bounded batch of logins a run)."""
    return health.routers_probe().probed
