"""Background jobs of network. They only call services; enqueue them after commit."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.api import Task
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from network import activation, services

logger = logging.getLogger(__name__)


class ActivationNotDone(Exception):
    """Raised by the job so that Huey runs it again after its backoff delay.

    The message names the activation only: router texts stay in ``Activation.last_error``.
    """


# The decorator's numbers are defaults for direct calls; `enqueue_activation` passes the settings'.
@db_task(retries=6, retry_delay=5, retry_backoff=2, context=True)
def activate_customer(activation_id: int, task: Task | None = None) -> str:
    """Put a paid customer online; retried with exponential backoff while the router fails."""
    # Huey counts retries down; 0 left means nobody will run this again, so a failure is final.
    final_attempt = task is None or not task.retries
    outcome = activation.activation_perform(activation_id, final_attempt=final_attempt)
    if outcome is activation.Outcome.RETRY:
        raise ActivationNotDone(f"Activation {activation_id} is not done yet; retrying ({task.retries} left)")
    return outcome.value


def enqueue_activation(activation_id: int) -> None:
    """Queue the activation job with the configured retries (5 s, 10 s, 20 s, ... by default)."""
    activate_customer(
        activation_id,
        retries=settings.ACTIVATION_RETRIES,
        retry_delay=settings.ACTIVATION_RETRY_DELAY_SECONDS,
        retry_backoff=settings.ACTIVATION_RETRY_BACKOFF,
    )


@db_task(retries=3, retry_delay=10, retry_backoff=2)
def sync_package_profile(package_id: int) -> None:
    """Push a package's hotspot user profile to its router (activation also does it, right before use)."""
    services.package_profile_sync(package_id=package_id)


def enqueue_profile_sync(package_id: int) -> None:
    sync_package_profile(
        package_id,
        retries=settings.PROFILE_SYNC_RETRIES,
        retry_delay=settings.PROFILE_SYNC_RETRY_DELAY_SECONDS,
        retry_backoff=settings.ACTIVATION_RETRY_BACKOFF,
    )


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
