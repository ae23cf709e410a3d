"""Putting a customer online on the router for an access grant, and taking them off again at expiry.

An activation's life::

    PENDING --router accepted the hotspot user--> ACTIVE --expiry job, router confirmed--> EXPIRED
       |  ^                                         (renewed: EXPIRED without router work, the
       |  '--retryActivation (operator), or the       newer activation now owns the hotspot user)
       |     router answering again (auto retry)--.
       '--last retry failed / credentials rejected--> FAILED

- A grant is made by ``activation_grant``, once, inside the transaction that makes it (billing's, when
  a payment completes: however the completion arrived, webhook, poll or check, there is one grant and
  one job); the job is enqueued after commit. Everything the router work needs (router, package, the
  customer's MAC and IP, the expiry, the renewal asked for) is the grant's own: network never looks
  at what paid for it. Subscribers hear of changes through ``network.signals.activation_changed``.
- Inside ``first_attempts_here()`` (the job that confirms a payment with IntaSend) a grant is claimed
  in the transaction that makes it, and that worker thread makes the first attempt as soon as its
  work is done: the customer goes online without a queue hop and a claim transaction of their own.
  Retries are the job's, as for every other grant.
- Each attempt (``activation_perform``) has three steps, and never holds a transaction during router
  I/O: *claim* (row lock, attempts + 1, a lease so a second worker backs off), *router work* (profile,
  user, device login), *record* (ACTIVE, or the error; FAILED after the last try). A re-run after
  success is a no-op, and every router step is look-up-then-add-or-set, so a half-done attempt is
  simply finished by the next.
- Access codes come from ``secrets``: 8 characters without 0/O/1/I, unique per router. The hotspot
  user's name and password are both the code.

Renewal rule: only on request and proof. A grant made with a renewal target (a payment made with
``PaymentInput.renewCode``: an access code on that router, bought as the same package, checked when
the payment is made and passed on as ``Activation.renews``) *extends* the grant that holds that code
if it is still ACTIVE with at least ``ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS`` to run when the money
arrives. Every other grant gets
a fresh grant with its own code: no MAC address or phone number ever decides it, and a code is never
handed to a different payer. A renewal keeps the code; its expiry is the old expiry plus the
package's duration (time is stacked, nothing already paid for is lost) and the router user's
``limit-uptime`` (and data cap) grows by the package's amount. Same package, same profile and caps:
a renewal never widens what was paid for. The old activation stays ACTIVE until its own expiry passes
and then becomes EXPIRED without touching the router, since the user now belongs to the renewal.
A renewal paid in the last minutes of a package is a fresh grant with a new code instead: that margin
keeps the expiry job from ever removing a user a renewal is extending at the same moment.

Automatic retry: a FAILED activation whose grant has not ended is started again by itself once its
router answers a login again (``activations_auto_retry``, a periodic job probing such routers with a
backoff; ``activations_retry_failed_for_router`` for any caller that already knows the router is back).

Expiry: ``Activation.expires_at`` is the one given with the grant (a payment's ``packageExpiryTime``),
except for renewals (stacked, above) and for activations that only reached the router more than
``ACTIVATION_LATE_GRACE_SECONDS`` after the grant was made (``granted_at``; e.g. after
``retryActivation``): those run for the package's full duration from the moment the customer got online.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from network.models import Activation, Package, Router
from network.routeros import (
    HotspotProfileSpec,
    HotspotUserSpec,
    RouterAuthFailed,
    RouterError,
    RouterOSDriver,
    RouterUnreachable,
)
from network.routeros_pool import Lease
from network.signals import activation_changed_after_commit
from project import audit, log_context, metrics
from project.errors import ApplicationError, ErrorCode
from project.ids import as_pk

logger = logging.getLogger(__name__)

Status = Activation.Status

# Readable on a phone screen and over the phone: no 0/O or 1/I look-alikes. 32 symbols = 5 bits each.
ACCESS_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
ACCESS_CODE_LENGTH = 8


class Outcome(enum.Enum):
    ACTIVE = "ACTIVE"  # the customer is online (or can log in with the code)
    RETRY = "RETRY"  # this attempt failed; the job should run again
    FAILED = "FAILED"  # given up (last try, or credentials the router rejects)
    SKIPPED = "SKIPPED"  # nothing to do: already done, or another worker holds the activation


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


def _publish(activation: Activation) -> None:
    """Whoever listens hears about every activation change (after commit)."""
    activation_changed_after_commit(activation)


def _enqueue_after_commit(activation_id: int, *, after_a_failed_attempt: bool = False) -> None:
    def enqueue() -> None:
        from network.tasks import enqueue_activation

        enqueue_activation(activation_id, after_a_failed_attempt=after_a_failed_attempt)

    # robust: a queue that is down must not turn a committed payment into a 500; the periodic
    # rescue job picks up activations whose job never ran.
    transaction.on_commit(enqueue, robust=True)


def _enqueue_revoked_removal_after_commit(activation_id: int) -> None:
    def enqueue() -> None:
        from network.tasks import remove_revoked_user

        remove_revoked_user(activation_id)

    transaction.on_commit(enqueue, robust=True)


# --- Start -------------------------------------------------------------------------------------


def activation_grant(
    *,
    source: str,
    owner: AbstractBaseUser,
    router: Router,
    package: Package,
    expires_at: datetime | None = None,
    granted_at: datetime | None = None,
    phone_number: str = "",
    mac_address: str = "",
    ip_address: str | None = None,
    renews: Activation | None = None,
    reference: str = "",
    access_code: str = "",
) -> Activation:
    """Make an access grant (PENDING) and put the customer online in the background.

    Call it once per grant, inside the transaction that makes it (the caller keeps that once: billing
    links the grant to its payment in the same transaction); the job is enqueued after commit.
    ``expires_at`` defaults to the package's duration from ``granted_at`` (now); ``renews`` is the
    grant the customer proved and asked to extend (same router and package, see the module doc);
    ``reference`` names what the grant came from (a payment's id), for people and the router's comment.
    ``access_code`` is given when the grant's code already exists (a redeemed voucher's code becomes
    its grant's); otherwise one is drawn now, or for a renewal on its first attempt.
    """
    granted_at = granted_at or timezone.now()
    if not access_code and renews is None:
        # Known at once, router or not: the operator (and whoever proved the grant) can hand it over
        # while the router is slow. A renewal learns its code when it reaches the router (_claim).
        access_code = _unique_code(router.pk)
    activation = Activation.objects.create(
        source=source,
        owner=owner,
        router=router,
        package=package,
        reference=reference,
        phone_number=phone_number or "",
        mac_address=mac_address or "",
        ip_address=ip_address or None,
        granted_at=granted_at,
        expires_at=expires_at or granted_at + timedelta(minutes=package.duration_minutes),
        renews=renews,
        access_code=access_code,
    )
    attempts_here = _first_attempts_here.get()
    if attempts_here is None:
        _enqueue_after_commit(activation.pk)
    else:
        _claim_for_a_first_attempt_here(activation.pk, attempts_here)
    return activation


# Grants whose first attempt this thread makes (see first_attempts_here); None: the job makes it.
_first_attempts_here: ContextVar[list[_Plan] | None] = ContextVar("first_attempts_here", default=None)


@contextmanager
def first_attempts_here() -> Iterator[None]:
    """Grants made inside the block get their first attempt from this thread when the block ends, not
    from a job: the worker that confirmed a payment goes straight on to the router.

    For worker jobs only (a web request must not wait on a router), around the transaction that makes
    the grant: inside an open transaction it changes nothing (the job makes the attempt, as elsewhere).
    """
    if transaction.get_connection().in_atomic_block:
        yield
        return
    committed: list[_Plan] = []
    token = _first_attempts_here.set(committed)
    try:
        yield
    finally:
        _first_attempts_here.reset(token)
        for plan in committed:
            _first_attempt(plan)


def _claim_for_a_first_attempt_here(activation_id: int, attempts_here: list[_Plan]) -> None:
    """Claim the new grant in the caller's transaction; once it commits, the plan is this thread's."""
    try:
        claimed = _claim(activation_id, final_attempt=_no_retry_follows_a_first_attempt(), now=timezone.now())
    except Exception:  # noqa: BLE001 - the payment's transaction must not fail for it: the job tries instead
        logger.exception("Activation %s: could not claim it for a first attempt here; queued instead", activation_id)
        _enqueue_after_commit(activation_id)
        return
    if isinstance(claimed, Outcome):  # RETRY: the same user's earlier renewal is still in flight
        _enqueue_after_commit(activation_id, after_a_failed_attempt=True)
        return
    transaction.on_commit(lambda: attempts_here.append(claimed))


def _no_retry_follows_a_first_attempt() -> bool:
    return settings.ACTIVATION_RETRIES == 0


def _first_attempt(plan: _Plan) -> None:
    try:
        outcome = _attempt(plan, final_attempt=_no_retry_follows_a_first_attempt())
        if outcome is Outcome.RETRY:
            from network.tasks import enqueue_activation

            enqueue_activation(plan.activation_id, after_a_failed_attempt=True)
    except Exception:  # noqa: BLE001 - e.g. the queue is down: the rescue job finds the grant PENDING
        logger.exception("Activation %s: the first attempt's follow-up failed", plan.activation_id)


# --- One attempt -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Everything the router work needs, fixed while the activation row was locked."""

    activation_id: int
    source: str
    reference: str
    router: Router
    package: Package
    code: str
    renewal: bool
    expires_at: datetime
    limit_uptime_seconds: int
    limit_bytes_total: int | None
    mac_address: str
    ip_address: str | None


class _RenewalBusy(Exception):
    """Another renewal of the same hotspot user is in flight; decide after it is done."""


def _locked(activation_id: int) -> Activation:
    """The activation row, locked until the surrounding transaction ends."""
    return Activation.objects.select_for_update(of=("self",)).get(pk=activation_id)


def _scrub(text: str, *secrets_: str) -> str:
    """Router error texts could echo what we sent; never let the code or a password through."""
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _renewable_predecessor(activation: Activation, now: datetime) -> Activation | None:
    """The activation this grant extends, if it asked for one (``Activation.renews``, see the module doc).

    Whatever holds the renewed code now: a renewal paid meanwhile may have extended it already.
    """
    if activation.renews is None:
        return None
    margin = timedelta(seconds=settings.ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS)
    predecessor = (
        Activation.objects.filter(
            router_id=activation.router_id,
            access_code=activation.access_code or activation.renews.access_code,
            status=Status.ACTIVE,
            expires_at__gt=now + margin,
        )
        .exclude(pk=activation.pk)
        .exclude(access_code="")
        .order_by("-expires_at", "-pk")
        .first()
    )
    if predecessor is None or predecessor.package_id != activation.package_id:
        return None  # ended (or about to): a fresh grant; another package is never stacked on
    in_flight = (
        Activation.objects.filter(
            router_id=activation.router_id,
            access_code=predecessor.access_code,
            status=Status.PENDING,
        )
        .exclude(pk=activation.pk)
        .exists()
    )
    if in_flight:
        raise _RenewalBusy
    return predecessor


def _unique_code(router_id: int) -> str:
    while True:
        code = new_access_code()
        if not Activation.objects.filter(router_id=router_id, access_code=code).exists():
            return code


def _uptime_granted(activation: Activation) -> int:
    """The limit-uptime the activation put on the router (its package's duration if not recorded)."""
    if activation.limit_uptime_seconds:
        return activation.limit_uptime_seconds
    return activation.package.duration_minutes * 60


def _claim(activation_id: int, *, final_attempt: bool, now: datetime) -> _Plan | Outcome:
    """Step 1, one short transaction: lock, decide code and limits, count the attempt, take the lease."""
    with transaction.atomic():
        activation = (
            Activation.objects.select_for_update(of=("self",))
            .select_related("router", "package", "renews", "renewal_of__package")
            .get(pk=activation_id)
        )
        if activation.status != Status.PENDING:
            return Outcome.SKIPPED  # already ACTIVE (a replayed job), FAILED or EXPIRED
        if activation.claimed_until is not None and activation.claimed_until > now:
            return Outcome.SKIPPED  # another worker is talking to the router for it right now
        package = activation.package
        # Renewal decisions for one router are taken one at a time.
        Router.objects.select_for_update().filter(pk=activation.router_id).first()

        activation.attempts += 1
        activation.claimed_until = now + timedelta(seconds=settings.ACTIVATION_LEASE_SECONDS)
        renewal_ended = activation.renewal_of is not None and activation.renewal_of.status != Status.ACTIVE
        if not activation.access_code or renewal_ended:
            # First attempt; or the extended activation ended meanwhile (this one had FAILED and was
            # retried later): extend whatever holds the code now, else stand alone keeping the code.
            try:
                predecessor = _renewable_predecessor(activation, now)
            except _RenewalBusy:
                if not final_attempt:
                    activation.claimed_until = None
                    activation.last_error = "Waiting for the customer's earlier renewal to finish"
                    activation.save()
                    _publish(activation)
                    return Outcome.RETRY
                predecessor = None  # better a second code than no internet
            activation.renewal_of = predecessor
            if not activation.access_code:
                activation.access_code = predecessor.access_code if predecessor else _unique_code(activation.router_id)
        activation.save()
        _publish(activation)

        duration = package.duration_minutes * 60
        predecessor = activation.renewal_of
        if predecessor is not None:
            expires_at = max(predecessor.expires_at, now) + timedelta(seconds=duration)
            uptime = _uptime_granted(predecessor) + duration
            extra_bytes = package.data_limit_bytes
            limit_bytes = (
                None
                if predecessor.limit_bytes_total is None or extra_bytes is None
                else predecessor.limit_bytes_total + extra_bytes
            )
        else:
            # Until the router first confirms it, expires_at is still the one given with the grant.
            expires_at = activation.expires_at or now + timedelta(seconds=duration)
            granted = activation.granted_at or now
            if now - granted > timedelta(seconds=settings.ACTIVATION_LATE_GRACE_SECONDS):
                expires_at = max(expires_at, now + timedelta(seconds=duration))
            uptime = duration
            limit_bytes = package.data_limit_bytes
        return _Plan(
            activation_id=activation.pk,
            source=activation.source,
            reference=activation.reference,
            router=activation.router,
            package=package,
            code=activation.access_code,
            renewal=predecessor is not None,
            expires_at=expires_at,
            limit_uptime_seconds=uptime,
            limit_bytes_total=limit_bytes,
            mac_address=activation.mac_address,
            ip_address=activation.ip_address,
        )


_COMMENT_PREFIX = {
    Activation.Source.PAYMENT: "pay",
    Activation.Source.VOUCHER: "voucher",
    Activation.Source.MANUAL: "grant",
}


def _comment_ref(plan: _Plan) -> str:
    """What the router user's comment names: ``pay:<payment id>`` as before, else the grant's kind."""
    return f"{_COMMENT_PREFIX.get(plan.source, 'grant')}:{plan.reference or plan.activation_id}"


# RouterOS' words when user/add names a profile the router does not have (reset, or never synced).
_PROFILE_MISSING = "value of profile"


def _router_work(plan: _Plan) -> str | None:
    """Step 2, no transaction: the hotspot user, then the device's login, on the router's pooled connection.

    Returns the login failure (not fatal: the customer can still type the code); raises RouterError
    when the user could not be put on the router.

    Only what completion needs goes on the wire: ``user/add`` and ``active/login`` (profiles are the
    profile sync's: createPackage, updatePackage and a router's new address push them). If a reused
    connection dies mid-way, ``router_session`` runs this once more on a new one. That is safe although
    the first ``user/add`` may have reached the router: the repeat then hears "already have", finds the
    user exactly as planned (password and comment included) and takes it as its own; a re-login of the
    same device replaces its session.
    """
    from network.services import profile_spec, router_session

    user = HotspotUserSpec(
        name=plan.code,
        password=plan.code,
        profile=plan.package.profile_name,
        limit_uptime_seconds=plan.limit_uptime_seconds,
        limit_bytes_total=plan.limit_bytes_total,
        comment=f"cloudpilot {_comment_ref(plan)};exp:{int(plan.expires_at.timestamp())}",
    )

    def work(lease: Lease) -> str | None:
        driver = lease.driver
        _put_user(driver, user, profile=profile_spec(plan.package), renewal=plan.renewal)
        if not (plan.mac_address and plan.ip_address):
            return None
        try:
            driver.login_active(
                user=plan.code, password=plan.code, mac_address=plan.mac_address, ip_address=plan.ip_address
            )
        except RouterUnreachable as error:
            if lease.reused:
                raise  # the pooled connection died: all again on a new one
            return _LOGIN_FAILED_TEXT.format(error=error)
        except RouterError as error:
            # The user exists: the portal can still post the code to the router's login page.
            return _LOGIN_FAILED_TEXT.format(error=error)
        return None

    return router_session(plan.router, work)


_LOGIN_FAILED_TEXT = "Automatic login of the device failed ({error}); the customer can log in with the access code"


def _put_user(driver: RouterOSDriver, user: HotspotUserSpec, *, profile: HotspotProfileSpec, renewal: bool) -> None:
    """The hotspot user on the router. A renewal's user is there already: its limits grow (print + set);
    any other is added in one command. If the router lacks the profile, it is created and the user put once more."""

    def put() -> None:
        if renewal:
            driver.ensure_user(user)
        else:
            _add_user(driver, user)

    try:
        put()
    except RouterUnreachable:
        raise
    except RouterError as error:
        if _PROFILE_MISSING not in error.message:
            raise
        # The router lost the profile (reset, replaced) or its sync never ran: put it back, once.
        logger.warning("Profile %s missing on the router; creating it before the user", profile.name)
        driver.ensure_profile(profile)
        put()


def _add_user(driver: RouterOSDriver, user: HotspotUserSpec) -> None:
    """``user/add``; if the name is taken, it is our own earlier attempt only when it matches the plan."""
    try:
        driver.add_user(user)
        return
    except RouterUnreachable:
        raise
    except RouterError as error:
        if "already have" not in error.message:
            raise
    if driver.user_matches(user):
        return  # our own earlier attempt got there (its answer was lost)
    # Someone else's user by that name, or an earlier attempt with another plan: set it to ours, as
    # activation always did.
    logger.warning("A hotspot user with this activation's code existed and differed from the plan; updating it")
    driver.ensure_user(user)


def _record(
    plan: _Plan,
    *,
    error: RouterError | None,
    login_error: str | None,
    router_answered: bool,
    final_attempt: bool,
    now: datetime,
) -> Outcome:
    """Step 3, one short transaction: ACTIVE, or the error (FAILED when no try is left); and, when the
    router answered, its lastContactAt (here, not before ``user/add``: a write less on the way online)."""
    from network.services import router_touch

    password = ""
    if error is not None:
        try:
            password = plan.router.password()
        except ApplicationError:
            password = ""
    with transaction.atomic():
        activation = _locked(plan.activation_id)
        if router_answered:  # after the activation's lock, the order _claim takes them in
            router_touch(router_id=plan.router.pk, at=now)
        if activation.status == Status.REVOKED:
            # Revoked (revokeAccess) while this attempt was at the router: take back what it put there.
            _enqueue_revoked_removal_after_commit(activation.pk)
            return Outcome.SKIPPED
        activation.claimed_until = None
        if error is None:
            activation.status = Status.ACTIVE
            activation.activated_at = now
            activation.expires_at = plan.expires_at
            activation.limit_uptime_seconds = plan.limit_uptime_seconds
            activation.limit_bytes_total = plan.limit_bytes_total
            activation.last_error = _scrub(login_error or "", plan.code, password)
            outcome = Outcome.ACTIVE
        else:
            activation.last_error = _scrub(str(error), plan.code, password)
            # Wrong credentials do not fix themselves: fail now so the operator sees it at once.
            give_up = final_attempt or isinstance(error, RouterAuthFailed)
            if give_up:
                activation.status = Status.FAILED
            outcome = Outcome.FAILED if give_up else Outcome.RETRY
        activation.save()
        _publish(activation)
    if outcome is Outcome.ACTIVE:
        logger.info(
            "Activation %s ACTIVE on router %s (attempt %s%s)",
            activation.pk,
            plan.router.pk,
            activation.attempts,
            ", renewal" if plan.renewal else "",
        )
    elif outcome is Outcome.RETRY:
        # Expected while a router is down: one line with the attempt and the reason, no traceback.
        logger.warning(
            "Activation %s attempt %s on router %s failed, will retry: %s",
            activation.pk,
            activation.attempts,
            plan.router.pk,
            activation.last_error,
        )
    else:
        # A paying customer is not online and no retry is scheduled: someone must look.
        logger.error(
            "Activation %s FAILED on router %s after attempt %s: %s",
            activation.pk,
            plan.router.pk,
            activation.attempts,
            activation.last_error,
        )
    metrics.activation_recorded(activation, outcome)
    return outcome


@log_context.scoped
def activation_perform(activation_id: int, *, final_attempt: bool) -> Outcome:
    """One attempt at putting the customer online; the job calls it once per (re)try.

    ``final_attempt``: no retry follows, so a failure makes the activation FAILED.
    """
    log_context.bind(activation_id=activation_id)
    claimed = _claim(activation_id, final_attempt=final_attempt, now=timezone.now())
    if isinstance(claimed, Outcome):
        return claimed
    return _attempt(claimed, final_attempt=final_attempt)


@log_context.scoped
def _attempt(claimed: _Plan, *, final_attempt: bool) -> Outcome:
    """Steps 2 and 3 of an attempt whose claim is committed: the router work, then its record."""
    log_context.bind(activation_id=claimed.activation_id)
    if claimed.source == Activation.Source.PAYMENT and claimed.reference:
        log_context.bind(payment_id=claimed.reference)  # the log lines of a paid grant name its payment
    activation_id = claimed.activation_id
    error: RouterError | None = None
    login_error: str | None = None
    router_answered = False
    try:
        login_error = _router_work(claimed)
        router_answered = True
    except (RouterUnreachable, RouterAuthFailed) as exc:
        error = exc
    except RouterError as exc:
        error = exc
        router_answered = True  # with a refusal
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the lease held and the chain dead
        logger.exception("Activation %s: unexpected error during router work", activation_id)
        error = RouterError(type(exc).__name__, text=f"Internal error while activating ({type(exc).__name__})")
    try:
        return _record(
            claimed,
            error=error,
            login_error=login_error,
            router_answered=router_answered,
            final_attempt=final_attempt,
            now=timezone.now(),
        )
    except Exception:  # noqa: BLE001 - e.g. a DataError on save: never leave the lease held, PENDING for good
        logger.exception("Activation %s: unexpected error while recording the attempt", activation_id)
        return _release_after_record_error(activation_id, final_attempt=final_attempt)


RECORD_FAILED_TEXT = "Internal error while recording the activation"


def _release_after_record_error(activation_id: int, *, final_attempt: bool) -> Outcome:
    """The record step failed: release the lease and store a generic error (a plain UPDATE, not the
    values that could not be saved), so the next try, or the operator, can act on it."""
    changes: dict[str, object] = {"claimed_until": None, "last_error": RECORD_FAILED_TEXT, "updated_at": timezone.now()}
    if final_attempt:
        changes["status"] = Status.FAILED
    with transaction.atomic():
        if Activation.objects.filter(pk=activation_id, status=Status.PENDING).update(**changes):
            _publish(Activation.objects.get(pk=activation_id))
    return Outcome.FAILED if final_attempt else Outcome.RETRY


# --- Operator retry ----------------------------------------------------------------------------


def activation_retry(*, operator: AbstractBaseUser, activation_id: object, field: str = "activationId") -> Activation:
    """Start one of the operator's FAILED activations again, of any source (PENDING, a fresh job with
    all its retries). Unknown and other operators' ids: ACTIVATION_NOT_FOUND, the same either way.

    Returns the activation as it is once the transaction committed (the job may already have run);
    ``field`` names the argument errors are about (billing's payment-id form passes ``paymentId``)."""
    pk = as_pk(activation_id)
    with transaction.atomic():
        activation = (
            Activation.objects.select_for_update(of=("self",)).filter(owner=operator, pk=pk).first() if pk else None
        )
        if activation is None:
            raise ApplicationError(ErrorCode.ACTIVATION_NOT_FOUND, "Activation not found", field="activationId")
        if activation.status != Status.FAILED:
            raise ApplicationError(
                ErrorCode.ACTIVATION_NOT_RETRYABLE,
                f"Only a FAILED activation can be retried; this one is {activation.status}",
                field=field,
            )
        _restart(activation)
        audit.record(
            operator=operator,
            actor=operator,
            action="retryActivation",
            obj=activation,
            changes={"status": [Status.FAILED, Status.PENDING]},
        )
    activation.refresh_from_db()
    return activation


def _restart(activation: Activation, *, note: str | None = None) -> None:
    """FAILED → PENDING with a fresh job (all its retries); the caller holds the row lock."""
    activation.status = Status.PENDING
    activation.claimed_until = None
    if note is not None:
        activation.last_error = note
    activation.save()
    _publish(activation)
    _enqueue_after_commit(activation.pk)


def activation_restart_for_holder(*, activation_id: int, mac_address: str, ip_address: str | None) -> Activation:
    """Someone holding a FAILED grant's code asks for it again: start it again (as retryActivation
    does), putting the device that asked online this time. Any other state is returned as it is."""
    with transaction.atomic():
        activation = _locked(activation_id)
        if activation.status == Status.FAILED:
            activation.mac_address = mac_address
            activation.ip_address = ip_address or None
            _restart(activation, note="Retrying: the customer presented the code")
    activation.refresh_from_db()
    return activation


DEVICE_LIMIT_MESSAGE = "Every device this code allows is online. Log another device off first."
# RouterOS' own refusal when the profile's shared-users is reached (the slot went between look and login).
_NO_MORE_SESSIONS = "no more sessions"


def activation_device_login(*, activation: Activation, mac_address: str, ip_address: str | None) -> None:
    """Log a further device in as an ACTIVE grant's hotspot user, if a device slot is free.

    Slots are the package's ``shared_users``, counted on the router's active sessions for that user (the
    router is the one that knows who is online); a device already among them is done. Raises
    DEVICE_LIMIT_REACHED when every slot is taken, and ``RouterError`` when the router cannot be reached
    or refuses us: the grant is not touched. Without the device's IP, or when the router will not log it
    in by API, the code typed on the hotspot's login page does it (the router enforces the slots there too).
    """
    from network.services import router_driver, router_touch

    code = activation.access_code
    with router_driver(activation.router) as driver:
        router_touch(router_id=activation.router_id)
        sessions = driver.active_sessions(code)
        if any(session.mac_address == mac_address for session in sessions):
            return
        if len(sessions) >= activation.package.shared_users:
            raise ApplicationError(ErrorCode.DEVICE_LIMIT_REACHED, DEVICE_LIMIT_MESSAGE, field="code")
        if not ip_address:
            return
        try:
            driver.login_active(user=code, password=code, mac_address=mac_address, ip_address=ip_address)
        except RouterUnreachable:
            raise
        except RouterError as error:
            if _NO_MORE_SESSIONS in error.message:
                raise ApplicationError(ErrorCode.DEVICE_LIMIT_REACHED, DEVICE_LIMIT_MESSAGE, field="code") from None
            logger.info(
                "Activation %s: the router did not log a further device in; the login page can: %s",
                activation.pk,
                _scrub(str(error), code),
            )


# --- Automatic retry once the router answers again ---------------------------------------------

AUTO_RETRY_NOTE = "Retrying automatically: the router answers again"


def _auto_retryable(now: datetime) -> QuerySet[Activation]:
    """FAILED activations worth starting again by themselves: the grant has not ended, tries are left.

    Whatever the failure (unreachable, credentials since fixed, a refused command), the router must
    first answer a login; ``ACTIVATION_AUTO_RETRY_MAX_ATTEMPTS`` stops a grant the router keeps
    refusing from being retried for ever (``retryActivation`` has no such limit).
    """
    return Activation.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        status=Status.FAILED,
        attempts__lt=settings.ACTIVATION_AUTO_RETRY_MAX_ATTEMPTS,
    )


def activations_retry_failed_for_router(router_id: int, *, now: datetime | None = None, limit: int = 100) -> list[int]:
    """The router answers again: start its retryable FAILED activations again (see ``_auto_retryable``).

    For any caller that has just reached the router (the auto-retry job, a router health probe).
    Returns the ids it restarted, oldest failure first.
    """
    now = now or timezone.now()
    candidates = list(
        _auto_retryable(now)
        .filter(router_id=router_id)
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    restarted: list[int] = []
    for activation_id in candidates:
        with transaction.atomic():
            activation = _locked(activation_id)
            if activation.status != Status.FAILED:
                continue  # an operator's retryActivation got there first
            _restart(activation, note=AUTO_RETRY_NOTE)
        logger.info(
            "Activation %s: router %s answers again; retrying it automatically (%s attempts so far)",
            activation_id,
            router_id,
            activation.attempts,
            extra=_log_fields(activation),
        )
        restarted.append(activation_id)
    return restarted


def _log_fields(activation: Activation) -> dict[str, str]:
    """The ids a log line about this activation carries (a paid grant's payment id is its reference)."""
    fields = {"activation_id": str(activation.pk)}
    if activation.source == Activation.Source.PAYMENT and activation.reference:
        fields["payment_id"] = activation.reference
    return fields


@dataclass
class AutoRetryReport:
    probed: int = 0
    answered: int = 0
    retried: int = 0


def _probe_key(router_id: int) -> str:
    return f"network:auto-retry-probe:{router_id}"


def _router_answers(router: Router) -> bool:
    """One login and identity read: is the router back (and are its credentials accepted)?"""
    from network.services import router_driver, router_touch

    try:
        with router_driver(router) as driver:
            driver.identity()
    except RouterError as error:
        logger.info("Router %s still does not answer; its FAILED activations wait: %s", router.pk, error)
        return False
    router_touch(router_id=router.pk)
    return True


def activations_auto_retry(*, now: datetime | None = None, max_routers: int = 10, limit: int = 100) -> AutoRetryReport:
    """Probe routers that have retryable FAILED activations; where one answers, start them again.

    Each router is probed at most every ``ACTIVATION_AUTO_RETRY_PROBE_SECONDS``, doubling while it
    stays silent up to ``ACTIVATION_AUTO_RETRY_PROBE_MAX_SECONDS`` (the schedule lives in the cache:
    losing it only means an earlier probe). At most ``max_routers`` probes and ``limit`` restarts a run.
    """
    now = now or timezone.now()
    report = AutoRetryReport()
    router_ids = list(_auto_retryable(now).order_by().values_list("router_id", flat=True).distinct())
    schedule = cache.get_many([_probe_key(router_id) for router_id in router_ids])
    due = [router_id for router_id in router_ids if schedule.get(_probe_key(router_id), (0.0, 0))[0] <= now.timestamp()]
    base = settings.ACTIVATION_AUTO_RETRY_PROBE_SECONDS
    ceiling = settings.ACTIVATION_AUTO_RETRY_PROBE_MAX_SECONDS
    for router in Router.objects.filter(pk__in=due[:max_routers]):
        if report.retried >= limit:
            break
        report.probed += 1
        silent_probes = schedule.get(_probe_key(router.pk), (0.0, 0))[1]
        if _router_answers(router):
            report.answered += 1
            silent_probes = 0
            restarted = activations_retry_failed_for_router(router.pk, now=now, limit=limit - report.retried)
            report.retried += len(restarted)
        else:
            silent_probes += 1
        delay = min(base * 2 ** min(max(silent_probes - 1, 0), 16), ceiling)
        cache.set(_probe_key(router.pk), (now.timestamp() + delay, silent_probes), timeout=int(delay) + ceiling)
    return report


# --- Expiry ------------------------------------------------------------------------------------


@dataclass
class ExpiryReport:
    expired: int = 0
    waiting: int = 0  # router unreachable or refused: tried again on the next run


def _mark_expired(activation_id: int, *, note: str = "") -> bool:
    with transaction.atomic():
        activation = _locked(activation_id)
        if activation.status != Status.ACTIVE:
            return False
        activation.status = Status.EXPIRED
        activation.last_error = note
        activation.save()
        _publish(activation)
    return True


def _record_expiry_error(activation_id: int, message: str) -> None:
    with transaction.atomic():
        activation = _locked(activation_id)
        if activation.status != Status.ACTIVE or activation.last_error == message:
            return
        activation.last_error = message
        activation.save()
        _publish(activation)


def activations_expire_due(*, now: datetime | None = None, limit: int = 500) -> ExpiryReport:
    """Take customers whose time is up off their routers; EXPIRED only once the router confirmed.

    One connection per router. An unreachable router keeps its activations ACTIVE (with the reason
    in ``lastError``) for the next run; ``limit-uptime`` on the router is the backstop meanwhile.
    """
    from network.services import router_driver, router_touch

    now = now or timezone.now()
    report = ExpiryReport()
    due = list(
        Activation.objects.filter(status=Status.ACTIVE, expires_at__lte=now)
        .select_related("router")
        .order_by("expires_at", "pk")[:limit]
    )
    by_router: dict[int, list[Activation]] = defaultdict(list)
    for activation in due:
        by_router[activation.router_id].append(activation)

    for activations in by_router.values():
        router = activations[0].router
        to_remove: list[Activation] = []
        for activation in activations:
            sharing = Activation.objects.filter(router_id=router.pk, access_code=activation.access_code).exclude(
                pk=activation.pk
            )
            if sharing.filter(status=Status.PENDING).exists():
                report.waiting += 1  # a renewal is being applied to this user: decide after it
            elif sharing.filter(status=Status.ACTIVE, expires_at__gt=now).exists():
                # Renewed: the user now belongs to the newer activation.
                report.expired += _mark_expired(activation.pk, note="")
            else:
                to_remove.append(activation)
        if not to_remove:
            continue
        pending = list(to_remove)
        try:
            with router_driver(router) as driver:
                router_touch(router_id=router.pk)
                while pending:
                    activation = pending[0]
                    try:
                        driver.remove_user(activation.access_code)
                    except RouterUnreachable:
                        raise
                    except RouterError as error:
                        # The router refused this one; the connection is fine, go on with the rest.
                        pending.pop(0)
                        report.waiting += 1
                        _record_expiry_error(activation.pk, _scrub(f"Expiry: {error}", activation.access_code))
                        continue
                    pending.pop(0)
                    report.expired += _mark_expired(activation.pk)
        except RouterError as error:
            for activation in pending:
                report.waiting += 1
                _record_expiry_error(activation.pk, _scrub(f"Expiry: {error}", activation.access_code))
            logger.warning(
                "Expiry on router %s failed on attempt %d, %d activation(s) wait for the next run: %s",
                router.pk,
                _count_failed_expiry_run(router.pk),
                len(pending),
                error,
            )
        else:
            cache.delete(_failed_expiry_runs_key(router.pk))
    return report


def _failed_expiry_runs_key(router_id: int) -> str:
    return f"network:failed-expiry-runs:{router_id}"


def _count_failed_expiry_run(router_id: int) -> int:
    """Runs in a row that could not finish a router's expiry, for the log (a lost count restarts at 1)."""
    key = _failed_expiry_runs_key(router_id)
    runs = (cache.get(key) or 0) + 1
    cache.set(key, runs, timeout=24 * 3600)
    return runs


# --- Rescue ------------------------------------------------------------------------------------


def activations_stalled(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """PENDING activations nobody is working on any more (their job was lost: a worker died, the
    queue was down at enqueue time). Their lease is over and they have not changed for a while."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=settings.ACTIVATION_STALLED_AFTER_SECONDS)
    return list(
        Activation.objects.filter(status=Status.PENDING, updated_at__lte=quiet_since)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )


def activation_mark_rescued(activation_id: int) -> None:
    """Touch a stalled activation so the next rescue run does not enqueue it again straight away."""
    Activation.objects.filter(pk=activation_id, status=Status.PENDING).update(updated_at=timezone.now())
