"""An operator's hand on customers' time: extend or revoke a grant of any source, see who is online on a
router and log one device off (extendAccess, revokeAccess, activeSessions, disconnectSession).

Changes are made in the database at once, in one transaction with their audit entry; the router work
follows in the background (``network.tasks``), retried while the router is down, as activation does:
a revoked grant's code stops working in the portal (redeemCode, accessStatus) the moment the request
returns, whatever the router is doing. Reads of who is online, and logging a device off, talk to the
router while the operator waits: their resolvers run them off the shared request thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from network.devices import INVALID_MAC_MESSAGE, normalise_mac
from network.models import Activation, Router
from network.routeros import RouterError, RouterNotAllowed
from network.selectors import router_get_for
from network.signals import activation_changed_after_commit
from project import audit
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.ids import as_pk
from project.text_rules import displayable
from project.throttling import hit

logger = logging.getLogger(__name__)

Status = Activation.Status

REASON_MAX_LENGTH = 500
MIN_EXTENSION_MINUTES = 1
MAX_EXTENSION_MINUTES = 365 * 24 * 60
# However it is extended, a grant ends within this: the router counts its uptime in 32 bits.
MAX_TIME_AHEAD = timedelta(days=2 * 365)
# The states in which a grant still gives (or is about to give) time on the router.
LIVE = (Status.PENDING, Status.ACTIVE, Status.FAILED)

ACTIVATION_NOT_FOUND_MESSAGE = "Activation not found"


def clean_reason(raw: str | None, *, field: str = "reason") -> str:
    """Why the operator did it: required, 1 to 500 characters, no control characters (it is shown in the
    audit log and the admin, and a CR/LF would forge lines wherever it is printed)."""
    reason = (raw or "").strip()
    if not reason:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "A reason is required", field=field)
    if len(reason) > REASON_MAX_LENGTH:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"The reason is longer than {REASON_MAX_LENGTH} characters", field=field
        )
    if not displayable(reason):
        raise ApplicationError(ErrorCode.INVALID_INPUT, "The reason may not contain control characters", field=field)
    return reason


def clean_mac(raw: str | None) -> str:
    """A device's MAC, required, as RouterOS prints it."""
    mac = normalise_mac(raw)
    if not mac:
        raise ApplicationError(ErrorCode.INVALID_MAC, INVALID_MAC_MESSAGE, field="macAddress")
    return mac


def _activation_locked(*, operator: AbstractBaseUser, activation_id: object) -> Activation:
    """One of the operator's activations, row-locked; unknown and foreign ids read the same."""
    pk = as_pk(activation_id)
    activation = (
        Activation.objects.select_for_update(of=("self",))
        .select_related("package")
        .filter(owner=operator, pk=pk)
        .first()
        if pk
        else None
    )
    if activation is None:
        raise ApplicationError(ErrorCode.ACTIVATION_NOT_FOUND, ACTIVATION_NOT_FOUND_MESSAGE, field="activationId")
    return activation


def _publish(activation: Activation) -> None:
    activation_changed_after_commit(activation)


# --- extendAccess ------------------------------------------------------------------------------


def _minutes(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not MIN_EXTENSION_MINUTES <= raw <= MAX_EXTENSION_MINUTES:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"Minutes must be a whole number from {MIN_EXTENSION_MINUTES} to {MAX_EXTENSION_MINUTES} (a year)",
            field="minutes",
        )
    return raw


def grant_extend(
    *, operator: AbstractBaseUser, actor: AbstractBaseUser | None, activation_id: object, minutes: object, reason: str
) -> Activation:
    """Give an ACTIVE grant ``minutes`` more: its expiry moves on and the router user's ``limit-uptime``
    grows by as much, pushed in the background.

    Refused for a grant already extended by a renewal (the hotspot user belongs to the newest grant of
    the code: extend that one), and for one within ``ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS`` of its
    end, as renewals are: the expiry job never removes a user an extension is growing at that moment.
    """
    checks = FieldChecks()
    with checks:
        minutes = _minutes(minutes)
    with checks:
        reason = clean_reason(reason)
    with transaction.atomic():
        with checks:
            activation = _activation_locked(operator=operator, activation_id=activation_id)
        checks.raise_if_any()
        # Renewal decisions for one router are taken one at a time (network.activation._claim).
        Router.objects.select_for_update().filter(pk=activation.router_id).first()
        if activation.status != Status.ACTIVE:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"Only an ACTIVE grant can be extended; this one is {activation.status}",
                field="activationId",
            )
        newer = (
            Activation.objects.filter(Q(renewal_of=activation) | Q(renews=activation), status__in=LIVE)
            .order_by("-pk")
            .first()
        )
        if newer is not None:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"This grant has been renewed: extend its newest grant ({newer.pk}) instead",
                field="activationId",
            )
        now = timezone.now()
        margin = timedelta(seconds=settings.ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS)
        if activation.expires_at is None or activation.expires_at <= now + margin:
            # The expiry job may be taking its user off the router right now (renewals keep the same margin).
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                "This grant's time is over or about to be: grant new access instead (grantAccess)",
                field="activationId",
            )
        if activation.expires_at + timedelta(minutes=minutes) > now + MAX_TIME_AHEAD:
            # Found from outside: stacked extensions overflowed the router user's limit-uptime field.
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                "A grant may run at most two years ahead: grant new access later instead",
                field="minutes",
            )
        before = {"expires_at": activation.expires_at, "limit_uptime_seconds": activation.limit_uptime_seconds}
        activation.expires_at += timedelta(minutes=minutes)
        granted = activation.limit_uptime_seconds or activation.package.duration_minutes * 60
        activation.limit_uptime_seconds = granted + minutes * 60
        activation.save(update_fields=["expires_at", "limit_uptime_seconds", "updated_at"])
        after = {"expires_at": activation.expires_at, "limit_uptime_seconds": activation.limit_uptime_seconds}
        audit.record(
            operator=operator,
            actor=actor,
            action="extendAccess",
            obj=activation,
            changes={**audit.diff(before, after), "minutes": minutes, "reason": reason},
        )
        _publish(activation)
        _enqueue_after_commit("push_grant_limit", activation.pk)
    return activation


def grant_push_limit(activation_id: int) -> None:
    """Write an ACTIVE grant's ``limit-uptime`` on its router (after extendAccess). Raises RouterError for
    the job to retry; a grant no longer ACTIVE, or a user the router no longer has, needs nothing."""
    from network.services import router_driver, router_touch

    activation = Activation.objects.select_related("router").filter(pk=activation_id).first()
    if (
        activation is None
        or activation.status != Status.ACTIVE
        or not activation.access_code
        or not activation.limit_uptime_seconds
    ):
        return
    with router_driver(activation.router) as driver:
        router_touch(router_id=activation.router_id)
        if not driver.set_user_limit_uptime(activation.access_code, activation.limit_uptime_seconds):
            logger.warning("Activation %s: its hotspot user is not on router %s", activation.pk, activation.router_id)


# --- revokeAccess ------------------------------------------------------------------------------


def grant_revoke(
    *, operator: AbstractBaseUser, actor: AbstractBaseUser | None, activation_id: object, reason: str
) -> Activation:
    """End a grant now (REVOKED, ``revoked_at``): its code stops working at once; every device using it is
    logged off and the hotspot user removed in the background (retried while the router is down).

    The code's other live grants on the router (renewals sharing the hotspot user) end with it: the
    code is what is revoked.
    """
    checks = FieldChecks()
    with checks:
        reason = clean_reason(reason)
    with transaction.atomic():
        with checks:
            activation = _activation_locked(operator=operator, activation_id=activation_id)
        checks.raise_if_any()
        if activation.status not in LIVE:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT, f"This grant has already ended ({activation.status})", field="activationId"
            )
        sharing: list[Activation] = []
        if activation.access_code:
            sharing = list(
                Activation.objects.select_for_update(of=("self",))
                .filter(router_id=activation.router_id, access_code=activation.access_code, status__in=LIVE)
                .exclude(pk=activation.pk)
                .order_by("pk")
            )
        now = timezone.now()
        before = activation.status
        for grant in [activation, *sharing]:
            grant.status = Status.REVOKED
            grant.revoked_at = now
            grant.claimed_until = None
            grant.save(update_fields=["status", "revoked_at", "claimed_until", "updated_at"])
            _publish(grant)
        changes: dict[str, object] = {"status": [before, Status.REVOKED.value], "reason": reason}
        if sharing:
            changes["alsoRevoked"] = [grant.pk for grant in sharing]
        audit.record(operator=operator, actor=actor, action="revokeAccess", obj=activation, changes=changes)
        if activation.access_code:
            _enqueue_after_commit("remove_revoked_user", activation.pk)
    return activation


def grant_remove_revoked_user(activation_id: int) -> None:
    """Log every device of a REVOKED grant's code off its router and remove the hotspot user (user,
    sessions, MAC cookies). Raises RouterError for the job to retry."""
    from network.services import router_driver, router_touch

    activation = Activation.objects.select_related("router").filter(pk=activation_id).first()
    if activation is None or activation.status != Status.REVOKED or not activation.access_code:
        return
    in_use = Activation.objects.filter(
        router_id=activation.router_id, access_code=activation.access_code, status__in=LIVE
    ).exists()
    if in_use:
        return  # cannot happen through revokeAccess; never take a live grant's user away
    with router_driver(activation.router) as driver:
        router_touch(router_id=activation.router_id)
        driver.remove_user(activation.access_code)
    logger.info("Activation %s revoked: its hotspot user is off router %s", activation.pk, activation.router_id)


def _enqueue_after_commit(job: str, activation_id: int) -> None:
    def enqueue() -> None:
        from network import tasks

        getattr(tasks, job)(activation_id)

    # A queue that is down must not undo the change; the job's own retries cover the router.
    transaction.on_commit(enqueue, robust=True)


# --- activeSessions, disconnectSession ---------------------------------------------------------


@dataclass(frozen=True)
class OnlineDevice:
    """One row of the router's ``/ip/hotspot/active``, with our grant for its user when there is one."""

    user: str
    mac_address: str
    ip_address: str | None
    uptime_seconds: int
    bytes_in: int
    bytes_out: int
    activation: Activation | None


ROUTER_UNREACHABLE_MESSAGE = "The router did not answer. Check that it is on and reachable, then try again."


def _router_failure(error: RouterError) -> ApplicationError:
    if isinstance(error, RouterNotAllowed):
        return ApplicationError(ErrorCode.ROUTER_NOT_ALLOWED, str(error), field="routerId")
    return ApplicationError(ErrorCode.ROUTER_UNREACHABLE, f"{ROUTER_UNREACHABLE_MESSAGE} ({error})", field="routerId")


def _holders(router: Router, codes: set[str]) -> dict[str, Activation]:
    """Our grant holding each code on the router, in one query: a live one first, then the newest."""
    rank = {Status.ACTIVE: 0, Status.PENDING: 1, Status.FAILED: 2}
    holders: dict[str, Activation] = {}
    rows = (
        Activation.objects.filter(router=router, access_code__in=codes)
        .select_related("package__router")
        .order_by("-pk")
    )
    for activation in rows:
        current = holders.get(activation.access_code)
        if current is None or rank.get(activation.status, 3) < rank.get(current.status, 3):
            holders[activation.access_code] = activation
    return holders


LIVE_RATE_LIMITED_MESSAGE = "Too many requests to your routers just now. Please wait a minute and try again."


def _live_budget(operator: AbstractBaseUser) -> None:
    """Each call is a connection to the router's address: bounded per operator, like checkRouterConnection
    (a router's host and port can change, so unbounded reads would make a port scanner)."""
    if not hit("router-live", str(operator.pk), limit=settings.ROUTER_LIVE_RATE_LIMIT, window_seconds=60):
        raise ApplicationError(ErrorCode.RATE_LIMITED, LIVE_RATE_LIMITED_MESSAGE)


def sessions_active(*, operator: AbstractBaseUser, router_id: object) -> list[OnlineDevice]:
    """Who is online on one of the operator's routers now, read from the router, joined to our grants."""
    from network.services import router_driver, router_touch

    router = router_get_for(operator=operator, router_id=router_id)
    _live_budget(operator)
    try:
        with router_driver(router) as driver:
            sessions = driver.hotspot_sessions()
    except RouterError as error:
        raise _router_failure(error) from None
    router_touch(router_id=router.pk)
    holders = _holders(router, {session.user for session in sessions if session.user})
    return [
        OnlineDevice(
            user=session.user,
            mac_address=session.mac_address,
            ip_address=session.address or None,
            uptime_seconds=session.uptime_seconds,
            bytes_in=session.bytes_in,
            bytes_out=session.bytes_out,
            activation=holders.get(session.user),
        )
        for session in sessions
    ]


NO_SESSION_MESSAGE = "No device with this MAC address is online on this router"


def session_disconnect(
    *, operator: AbstractBaseUser, actor: AbstractBaseUser | None, router_id: object, mac_address: str
) -> str:
    """Log the device with ``mac_address`` off one of the operator's routers now; returns the MAC as the
    router writes it. Its code keeps working: the customer can log in again (revokeAccess ends a code)."""
    from network.services import router_driver, router_touch

    checks = FieldChecks()
    with checks:
        router = router_get_for(operator=operator, router_id=router_id)
    with checks:
        mac = clean_mac(mac_address)
    checks.raise_if_any()
    _live_budget(operator)
    try:
        with router_driver(router) as driver:
            removed = driver.remove_session(mac)
    except RouterError as error:
        raise _router_failure(error) from None
    router_touch(router_id=router.pk)
    if not removed:
        raise ApplicationError(ErrorCode.INVALID_INPUT, NO_SESSION_MESSAGE, field="macAddress")
    audit.record(operator=operator, actor=actor, action="disconnectSession", obj=router, changes={"macAddress": mac})
    return mac
