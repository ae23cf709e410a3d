"""The portal's code box: a voucher, an access code or an M-Pesa receipt gets a device online.

A code's length tells its kind (API.md "Access: codes, renewals, devices"): 12 characters of the
access-code alphabet are a voucher, 8 an access code, 10 in M-Pesa's receipt format a receipt. A
redeemed voucher's code is its grant's access code from then on, so it is looked up as one.

Every answer about a code that does not get anyone online is CODE_INVALID with one message (unknown,
revoked, malformed, another router's, another operator's), or CODE_EXPIRED for a known code whose time
is over; no router is asked anything before the code is known to be good.

Guessing is throttled, counting failures only (settings ``CODE_*``):

- per (router, device MAC): a few failures, then RATE_LIMITED for the rest of the window;
- per router: past a budget of failures the router is *slowed*, never locked. Behind a hotspot's NAT
  every customer shares one address, and a router's id and public key are public, so a lock would let
  any stranger stop a hotspot's customers. Slowed, every code attempt on the router waits for a turn
  before its code is looked up; turns come ``CODE_ROUTER_SLOWED_PER_SECOND`` a second, shared by every
  process, so the router's guesses are bounded however many requests run in parallel and whatever MACs
  they claim. A valid code waits like any other: only looking a code up tells a valid one from a wrong
  one, and answering valid codes sooner would let a guesser drop every request not answered at once,
  i.e. guess at any rate. What keeps customers in: a turn is at most ``CODE_ROUTER_MAX_WAIT_SECONDS``
  away; one client address gets at most ``CODE_ROUTER_TURNS_PER_ADDRESS`` turns in that time; and
  addresses where a code was good lately (the hotspot's own NAT address) take turns from a lane of
  their own, which guessers from elsewhere cannot fill by rotating addresses (a good code vouches for
  three addresses a day, so each three cost a purchase). A guesser inside the hotspot shares that
  address's turns with its customers: slowed, not shut out. A router's guesses are bounded by the two
  lanes of turns plus the free failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.input_rules import normalise_ip
from billing.models import Payment, Voucher
from network.activation import (
    ACCESS_CODE_ALPHABET,
    ACCESS_CODE_LENGTH,
    activation_device_login,
    activation_grant,
    activation_restart_for_holder,
)
from network.devices import normalise_mac
from network.models import Activation, Router
from network.routeros import RouterError
from network.selectors import router_get_for
from project import throttling
from project.errors import ApplicationError, ErrorCode, FieldChecks

VOUCHER_CODE_LENGTH = 12
_RECEIPT = re.compile(r"[A-Z][A-Z0-9]{9}")
# Longer input is nobody's code: refused before any work on it.
_MAX_RAW_LENGTH = 64

CODE_INVALID_MESSAGE = "This code is not valid here. Check it and try again."
CODE_EXPIRED_MESSAGE = "The time on this code is over. Buy a package to get back online."
MAC_REQUIRED_MESSAGE = "The device's MAC address is required"
DEVICE_RATE_LIMITED_MESSAGE = "Too many wrong codes from this device. Please wait a few minutes and try again."
RENEWAL_RATE_LIMITED_MESSAGE = (
    "Too many wrong codes on this hotspot just now. Buy without renewing (you get a new code), or try later."
)
ROUTER_BUSY_MESSAGE = "Many codes are being tried on this hotspot right now. Please try again in a moment."
ROUTER_UNREACHABLE_MESSAGE = (
    "The hotspot is slow to answer: your code is good, but this device is not logged in yet. Enter the code "
    "on the hotspot's login page, or try again in a moment."
)


class CodeKind(StrEnum):
    VOUCHER = "VOUCHER"
    ACCESS_CODE = "ACCESS_CODE"
    MPESA_RECEIPT = "MPESA_RECEIPT"


def normalise_code(raw: str | None) -> str:
    """What the customer typed, as stored: upper case, without the spaces and dashes of the printed groups."""
    text = raw or ""
    if len(text) > _MAX_RAW_LENGTH or not text.isascii():  # `str.upper` maps other scripts onto ASCII
        return ""
    return re.sub(r"[\s-]", "", text).upper()


def code_kind(code: str) -> CodeKind | None:
    """The kind a normalised code's shape says it is; None for what can be no code at all."""
    in_alphabet = all(char in ACCESS_CODE_ALPHABET for char in code)
    if len(code) == VOUCHER_CODE_LENGTH and in_alphabet:
        return CodeKind.VOUCHER
    if len(code) == ACCESS_CODE_LENGTH and in_alphabet:
        return CodeKind.ACCESS_CODE
    if _RECEIPT.fullmatch(code):
        return CodeKind.MPESA_RECEIPT
    return None


def _invalid() -> ApplicationError:
    return ApplicationError(ErrorCode.CODE_INVALID, CODE_INVALID_MESSAGE, field="code")


def _expired() -> ApplicationError:
    return ApplicationError(ErrorCode.CODE_EXPIRED, CODE_EXPIRED_MESSAGE, field="code")


# --- Throttle ------------------------------------------------------------------------------------

_FAILURES = frozenset({ErrorCode.CODE_INVALID, ErrorCode.CODE_EXPIRED})


def _device_key(router: Router, mac_address: str) -> str:
    return f"{router.pk}:{mac_address}"


def _router_slowed(router: Router) -> bool:
    return not throttling.within(
        "code-router",
        str(router.pk),
        limit=settings.CODE_FAILURES_PER_ROUTER,
        window_seconds=settings.CODE_FAILURE_WINDOW_SECONDS,
    )


def code_failure_record(*, router: Router, mac_address: str = "") -> None:
    """One wrong or ended code on ``router`` (from that device when its MAC is known)."""
    window = settings.CODE_FAILURE_WINDOW_SECONDS
    throttling.record("code-router", str(router.pk), window_seconds=window)
    if mac_address:
        throttling.record("code-device", _device_key(router, mac_address), window_seconds=window)


def renewal_code_check(*, router: Router, mac_address: str = "") -> None:
    """A portal's ``PaymentInput.renewCode`` is a code guess like any other, but its path cannot wait for a
    turn (payments run on the shared request thread): it is refused (RATE_LIMITED) while the router is
    slowed or the device spent its budget. The customer can still pay without it, for a new code."""
    device_spent = mac_address and not throttling.within(
        "code-device",
        _device_key(router, mac_address),
        limit=settings.CODE_FAILURES_PER_DEVICE,
        window_seconds=settings.CODE_FAILURE_WINDOW_SECONDS,
    )
    if device_spent or _router_slowed(router):
        raise ApplicationError(ErrorCode.RATE_LIMITED, RENEWAL_RATE_LIMITED_MESSAGE, field="renewCode")


def _address_key(router: Router, client_ip: str | None) -> str:
    return f"{router.pk}:{client_ip or ''}"


def _turn(router: Router, client_ip: str | None) -> float:
    """Seconds to wait before this attempt may look its code up: 0 unless the router is slowed.

    Reserves the first free turn (``throttling.reserve_turn``) at most ``CODE_ROUTER_MAX_WAIT_SECONDS``
    ahead; RATE_LIMITED when there is none, or when this client address already had its share of turns
    in that time (only turns given count: hammering does not push an address's share further away, so a
    guesser behind the hotspot's NAT slows its customers but cannot shut them out).
    """
    if not _router_slowed(router):
        return 0.0
    max_wait = settings.CODE_ROUTER_MAX_WAIT_SECONDS
    address = _address_key(router, client_ip)
    busy = ApplicationError(ErrorCode.RATE_LIMITED, ROUTER_BUSY_MESSAGE)
    if not throttling.within(
        "code-turns", address, limit=settings.CODE_ROUTER_TURNS_PER_ADDRESS, window_seconds=max_wait
    ):
        raise busy
    # Addresses where a code was good lately (the hotspot's NAT address, where its customers come from)
    # take their turns from a lane of their own: guessers from other addresses, however many, cannot
    # fill it. It is no oracle: which lane an attempt takes depends on earlier answers, not on its code.
    lane = "known" if throttling.marked("code-good", address) else "any"
    wait = throttling.reserve_turn(
        f"code-router-{lane}",
        str(router.pk),
        per_second=settings.CODE_ROUTER_SLOWED_PER_SECOND,
        max_wait_seconds=max_wait,
    )
    if wait is None:
        raise busy
    throttling.record("code-turns", address, window_seconds=max_wait)
    return wait


# --- One attempt ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeAttempt:
    """A code attempt let through: checked input, and how long it must wait for its turn (seconds)."""

    router: Router
    code: str
    mac_address: str
    ip_address: str | None
    client_ip: str | None
    wait_seconds: float


def code_attempt_begin(
    *,
    operator: AbstractBaseUser,
    router_id: object,
    code: str | None,
    mac_address: str | None = None,
    ip_address: str | None = None,
    client_ip: str | None = None,
    needs_device: bool = True,
) -> CodeAttempt:
    """Check the input and the throttles before any code is looked up (redeemCode, accessStatus).

    ROUTER_NOT_FOUND (not the caller's router), INVALID_MAC (missing or malformed, when the device is
    needed), INVALID_IP, RATE_LIMITED. The caller waits ``wait_seconds`` (off any shared thread), then
    calls ``code_redeem`` or ``access_status``.
    """
    router = router_get_for(operator=operator, router_id=router_id)
    checks = FieldChecks()
    mac = ip = None
    if needs_device:
        with checks:
            mac = normalise_mac(mac_address)
            if not mac:
                raise ApplicationError(ErrorCode.INVALID_MAC, MAC_REQUIRED_MESSAGE, field="macAddress")
        with checks:
            ip = normalise_ip(ip_address)
    checks.raise_if_any()
    if mac and not throttling.within(
        "code-device",
        _device_key(router, mac),
        limit=settings.CODE_FAILURES_PER_DEVICE,
        window_seconds=settings.CODE_FAILURE_WINDOW_SECONDS,
    ):
        raise ApplicationError(ErrorCode.RATE_LIMITED, DEVICE_RATE_LIMITED_MESSAGE)
    return CodeAttempt(
        router=router,
        code=normalise_code(code),
        mac_address=mac or "",
        ip_address=ip,
        client_ip=client_ip,
        wait_seconds=_turn(router, client_ip),
    )


def _counting_failures(attempt: CodeAttempt, work):
    """Run the lookup: a wrong or ended code counts as a failure; a good one (even when no slot is free)
    marks the client address as one customers use, for the known lane of ``_turn``."""
    try:
        result = work()
    except ApplicationError as error:
        if error.code in _FAILURES:
            code_failure_record(router=attempt.router, mac_address=attempt.mac_address)
        elif error.code == ErrorCode.DEVICE_LIMIT_REACHED:
            _remember_good_address(attempt)
        raise
    _remember_good_address(attempt)
    return result


# One code vouches for this many addresses per CODE_GOOD_ADDRESS_SECONDS: a code bought once must not
# let a guesser's every address into the known lane (each three of them cost a purchase).
ADDRESSES_PER_GOOD_CODE = 3


def _remember_good_address(attempt: CodeAttempt) -> None:
    address = _address_key(attempt.router, attempt.client_ip)
    seconds = settings.CODE_GOOD_ADDRESS_SECONDS
    if throttling.marked("code-good", address) or throttling.hit(
        "code-good-addresses",
        f"{attempt.router.pk}:{attempt.code}",
        limit=ADDRESSES_PER_GOOD_CODE,
        window_seconds=seconds,
    ):
        throttling.mark("code-good", address, seconds=seconds)


# --- Finding the grant a code holds --------------------------------------------------------------


def _newest_holding(router: Router, access_code: str) -> Activation | None:
    """The grant that owns the code's hotspot user now: renewals share a code, the latest expiry wins."""
    return (
        Activation.objects.filter(router=router, access_code=access_code)
        .select_related("package", "router")
        .order_by(F("expires_at").desc(nulls_last=True), "-pk")
        .first()
    )


def _reloaded(grant: Activation) -> Activation:
    return Activation.objects.select_related("package", "router").get(pk=grant.pk)


def _paid_grant(router: Router, receipt: str) -> Activation | None:
    payment = (
        Payment.objects.filter(router=router, mpesa_reference=receipt, status=Payment.Status.COMPLETED)
        .select_related("activation")
        .order_by("-completed_at")
        .first()
    )
    grant = payment.activation if payment is not None else None
    if grant is not None and grant.access_code:
        return _newest_holding(router, grant.access_code)
    return grant


def _held_grant(router: Router, code: str, kind: CodeKind | None) -> Activation:
    """The grant a code the caller holds names: an access code (a redeemed voucher's too) or a receipt."""
    if kind is CodeKind.MPESA_RECEIPT:
        grant = _paid_grant(router, code)
    elif kind is not None:
        grant = _newest_holding(router, code)
    else:
        grant = None
    if grant is None or grant.status == Activation.Status.REVOKED:
        raise _invalid()
    return grant


def _time_left(grant: Activation) -> bool:
    return grant.expires_at is None or grant.expires_at > timezone.now()


def _ended(grant: Activation) -> bool:
    """Its time is over (PENDING counts as not ended: it is being put on the router right now)."""
    if grant.status == Activation.Status.EXPIRED:
        return True
    return grant.status != Activation.Status.PENDING and not _time_left(grant)


# --- redeemCode ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """A code that gets the device online: its kind and grant. ``error`` is ROUTER_UNREACHABLE when the
    grant is good but the router could not log the device in now (the grant itself is unchanged)."""

    kind: CodeKind
    activation: Activation
    error: ApplicationError | None = None


def code_redeem(*, attempt: CodeAttempt) -> Redemption:
    """Redeem what the customer typed (after ``code_attempt_begin`` and its wait).

    - An UNUSED voucher becomes a grant (source VOUCHER, its package's time from now, its code the
      grant's access code), exactly once: the voucher row is locked, and whoever comes second finds it
      REDEEMED and is a further device of the same grant. The grant is PENDING until the activation job
      has put it on the router (and logged this device in): follow it with ``accessStatus``.
    - An access code (a redeemed voucher's included) or the receipt of a completed payment on this router
      logs this device in as a further device of its grant while the package's ``sharedUsers`` slots last
      (DEVICE_LIMIT_REACHED otherwise); a FAILED grant with time left is started again for this device.
    - CODE_INVALID for everything else, CODE_EXPIRED for a code whose time is over; both count as failures.
    """
    return _counting_failures(attempt, lambda: _redeem(attempt))


def _redeem(attempt: CodeAttempt) -> Redemption:
    kind = code_kind(attempt.code)
    if kind is CodeKind.VOUCHER:
        fresh = _voucher_redeem(attempt)
        if fresh is not None:
            # The job may have run already (it is enqueued on commit).
            return Redemption(kind=CodeKind.VOUCHER, activation=_reloaded(fresh))
        kind = CodeKind.ACCESS_CODE  # redeemed before: the code is its grant's access code now
    grant = _held_grant(attempt.router, attempt.code, kind)
    if _ended(grant):
        raise _expired()
    return _device_online(attempt, kind, grant)


def _voucher_redeem(attempt: CodeAttempt) -> Activation | None:
    """The grant made from an UNUSED voucher; None when it was redeemed before (CODE_INVALID, CODE_EXPIRED
    for a voucher no code may use)."""
    now = timezone.now()
    with transaction.atomic():
        voucher = (
            Voucher.objects.select_for_update(of=("self",))
            .select_related("batch__package")
            .filter(router=attempt.router, code=attempt.code)
            .first()
        )
        if voucher is None:
            raise _invalid()
        status = voucher.status_at(now)
        if status == Voucher.Status.REDEEMED:
            return None
        if status == Voucher.Status.EXPIRED:
            raise _expired()
        if status != Voucher.Status.UNUSED:
            raise _invalid()
        activation = activation_grant(
            source=Activation.Source.VOUCHER,
            owner=attempt.router.owner,
            router=attempt.router,
            package=voucher.batch.package,
            granted_at=now,
            mac_address=attempt.mac_address,
            ip_address=attempt.ip_address,
            reference=str(voucher.pk),
            access_code=voucher.code,
        )
        voucher.status = Voucher.Status.REDEEMED
        voucher.redeemed_at = now
        voucher.activation = activation
        voucher.save(update_fields=["status", "redeemed_at", "activation"])
    return activation


def _device_online(attempt: CodeAttempt, kind: CodeKind, grant: Activation) -> Redemption:
    if grant.status == Activation.Status.FAILED:
        activation_restart_for_holder(
            activation_id=grant.pk, mac_address=attempt.mac_address, ip_address=attempt.ip_address
        )
        return Redemption(kind=kind, activation=_reloaded(grant))
    if grant.status == Activation.Status.PENDING or not grant.access_code:
        # Not on the router yet: its job puts it there; this device logs in with the code once ACTIVE.
        return Redemption(kind=kind, activation=grant)
    try:
        activation_device_login(activation=grant, mac_address=attempt.mac_address, ip_address=attempt.ip_address)
    except RouterError:
        unreachable = ApplicationError(ErrorCode.ROUTER_UNREACHABLE, ROUTER_UNREACHABLE_MESSAGE)
        return Redemption(kind=kind, activation=grant, error=unreachable)
    return Redemption(kind=kind, activation=grant)


# --- accessStatus ----------------------------------------------------------------------------------


def access_status(*, attempt: CodeAttempt) -> Activation:
    """The newest grant of a code the caller holds (an access code, a redeemed voucher's code, the receipt
    of a completed payment), read from the database only. An unused voucher is no grant yet: CODE_INVALID,
    like any unknown code; CODE_EXPIRED once its time is over. Both count as failures."""

    def read() -> Activation:
        grant = _held_grant(attempt.router, attempt.code, code_kind(attempt.code))
        if _ended(grant):
            raise _expired()
        return grant

    return _counting_failures(attempt, read)
