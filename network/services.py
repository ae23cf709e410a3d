"""Every write to routers and packages, and the router-facing chores that go with them.

Router I/O never runs inside a database transaction: a router that times out must not hold a row
lock (or, on SQLite, the whole database's write lock) for seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from network import destinations, health, routeros_pool
from network.models import MAX_DURATION_MINUTES, MAX_SHARED_USERS, Activation, Package, Router
from network.routeros import (
    HotspotProfileSpec,
    RouterAddress,
    RouterAuthFailed,
    RouterError,
    RouterNotAllowed,
    RouterOSDriver,
    RouterUnreachable,
    format_rate_limit,
)
from network.selectors import package_get_for, router_get_for
from project import audit
from project.encryption import DecryptionFailed
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.text_rules import displayable
from project.throttling import hit
from project.unset import UNSET

logger = logging.getLogger(__name__)

T = TypeVar("T")

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


# A hotspot address as browsers use it: host, [IPv6] or IPv4, then an optional :port; nothing else.
_HOTSPOT_ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]/]+)(?::(?P<port>[0-9]{1,5}))?$")


def _required_text(value: str, field: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text or len(text) > max_length:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be 1 to {max_length} characters", field=field)
    if not displayable(text):  # names are shown to customers (portal, voucher sheet)
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must not contain control characters", field=field)
    return text


def _no_control_characters(value: str, field: str) -> str:
    """A router's fields travel to another machine: CR/LF and friends would smuggle in other commands."""
    if destinations.has_control_characters(value or ""):
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must not contain control characters", field=field)
    return value


@dataclass(frozen=True)
class RouterInput:
    name: str
    host: str
    username: str
    password: str
    api_port: int = 8728
    use_ssl: bool = False
    hotspot_address: str = ""


@dataclass(frozen=True)
class RouterFields:
    """A router's settings, checked and normalised."""

    name: str
    host: str
    username: str
    api_port: int
    hotspot_address: str


def router_clean(
    *, name: str, host: str, username: str, api_port: int, hotspot_address: str, check_destination: bool = True
) -> RouterFields:
    """Check a router's settings as the API does (the admin's form calls this too: one set of rules).

    Raises ApplicationError naming the API field (InvalidFields for several): INVALID_INPUT, or
    ROUTER_NOT_ALLOWED for a host the server must not connect to (an IP literal, or a name resolving
    there); every connection checks again. `check_destination=False` skips that look-up (an update that
    leaves host and port alone).
    """
    checks = FieldChecks()
    with checks:
        clean_name = _required_text(_no_control_characters(name, "name"), "name", 100)
    clean_host = clean_port = None
    with checks:
        clean_host = _router_host(host)
    with checks:
        clean_port = _api_port(api_port)
    # Where a host leads is only asked of a well-formed host and port.
    if check_destination and clean_host is not None and clean_port is not None:
        with checks:
            _allowed_destination(clean_host, clean_port)
    with checks:
        clean_username = _required_text(_no_control_characters(username, "username"), "username", 100)
    with checks:
        clean_hotspot_address = _hotspot_address(hotspot_address)
    checks.raise_if_any()
    return RouterFields(
        name=clean_name,
        host=clean_host,
        username=clean_username,
        api_port=clean_port,
        hotspot_address=clean_hotspot_address,
    )


def _router_host(value: str) -> str:
    host = _required_text(_no_control_characters(value, "host"), "host", 255)
    literal = destinations.ip_literal(host)
    # An all-numeric last label is no DNS name but an IP address in a form we do not take (2130706433).
    if literal is None and (not _HOSTNAME.match(host) or host.rsplit(".", 1)[-1].isdigit()):
        raise ApplicationError(ErrorCode.INVALID_INPUT, "host must be a hostname or IP address", field="host")
    return host


def _api_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "apiPort must be between 1 and 65535", field="apiPort")
    return port


def _allowed_destination(host: str, port: int) -> None:
    if destinations.refused_when_stored(host, port):
        raise ApplicationError(ErrorCode.ROUTER_NOT_ALLOWED, destinations.NOT_ALLOWED_TEXT, field="host")


def _hotspot_address(value: str) -> str:
    """Where customers' browsers reach the hotspot (a hostname or IP, optional port), or '' for none."""
    text = _no_control_characters(value, "hotspotAddress").strip()
    if not text:
        return ""
    match = _HOTSPOT_ADDRESS.match(text) if len(text) <= 255 else None
    valid = match is not None
    if match is not None:
        host, port = match["host"], match["port"]
        if host.startswith("["):
            valid = destinations.ip_literal(host[1:-1]) is not None and ":" in host
        else:
            valid = bool(_HOSTNAME.match(host))
        valid = valid and (port is None or 1 <= int(port) <= 65535)
    if not valid:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            "hotspotAddress must be a hostname or IP address with an optional port (no scheme or path)",
            field="hotspotAddress",
        )
    return text.lower()


def router_create(*, operator: AbstractBaseUser, data: RouterInput) -> Router:
    """Register a router; its API password is stored encrypted and never shown again."""
    checks = FieldChecks()
    with checks:
        fields = router_clean(
            name=data.name,
            host=data.host,
            username=data.username,
            api_port=data.api_port,
            hotspot_address=data.hotspot_address or "",
        )
    with checks:
        _router_password(data.password)
    checks.raise_if_any()
    router = Router(
        owner=operator,
        name=fields.name,
        host=fields.host,
        api_port=fields.api_port,
        use_ssl=data.use_ssl,
        username=fields.username,
        hotspot_address=fields.hotspot_address,
    )
    router.set_password(data.password)
    with transaction.atomic():
        router.save()
        audit.record(
            operator=operator,
            actor=operator,
            action="createRouter",
            obj=router,
            changes={**_router_given(router), "password": "set"},
        )
    return router


def _router_given(router: Router) -> dict[str, Any]:
    return {
        "name": router.name,
        "host": router.host,
        "apiPort": router.api_port,
        "useSsl": router.use_ssl,
        "username": router.username,
        "hotspotAddress": router.hotspot_address,
    }


@dataclass(frozen=True)
class RouterUpdate:
    """Fields left as UNSET are not changed; ``None`` clears hotspotAddress and is refused for the others."""

    router_id: object
    name: str = UNSET
    host: str = UNSET
    api_port: int = UNSET
    use_ssl: bool = UNSET
    username: str = UNSET
    password: str = UNSET
    hotspot_address: str | None = UNSET


# Model field -> API field, for the fields an update may leave out but not clear.
_ROUTER_NOT_NULLABLE = {
    "name": "name",
    "host": "host",
    "api_port": "apiPort",
    "use_ssl": "useSsl",
    "username": "username",
    "password": "password",
}
# What the server connects with: a change means checking the address again and re-syncing profiles.
_CONNECTION_FIELDS = {"host", "api_port", "use_ssl", "username", "password"}


def router_update(*, operator: AbstractBaseUser, data: RouterUpdate) -> Router:
    """Change a router's settings; only the given fields change.

    A new host or port is checked against the connection rules again (ROUTER_NOT_ALLOWED); when how
    the server connects changed, every package's hotspot profile is pushed to the router after commit
    (it may be a new or reset device). The password is write-only: the audit log says "changed".
    """
    checks = FieldChecks()
    router = None
    with checks:
        router = router_get_for(operator=operator, router_id=data.router_id)
    sent = {
        field: getattr(data, field)
        for field in ("name", "host", "api_port", "use_ssl", "username", "password", "hotspot_address")
        if getattr(data, field) is not UNSET
    }
    for field, api_field in _ROUTER_NOT_NULLABLE.items():
        if field in sent and sent[field] is None:
            with checks:
                raise ApplicationError(ErrorCode.INVALID_INPUT, f"{api_field} cannot be null", field=api_field)
    if "password" in sent and sent["password"] is not None:
        with checks:
            _router_password(sent["password"])
    if router is None:
        checks.raise_if_any()  # the other fields cannot be judged without the router's values
    # Checked outside the transaction: a new host's name look-up must not hold the row lock.
    with checks:
        fields = router_clean(
            **{
                field: sent[field] if sent.get(field) is not None else getattr(router, field)
                for field in ("name", "host", "api_port", "username")
            },
            hotspot_address=(sent["hotspot_address"] or "") if "hotspot_address" in sent else router.hotspot_address,
            check_destination="host" in sent or "api_port" in sent,
        )
    checks.raise_if_any()
    cleaned = dataclasses.asdict(fields) | {"use_ssl": sent.get("use_ssl")}
    with transaction.atomic():
        router = router_get_for(operator=operator, router_id=router.pk, for_update=True)
        # Only the fields sent: a concurrent change to the others stands.
        after = {field: cleaned[field] for field in sent if field != "password"}
        changes = audit.diff({field: getattr(router, field) for field in after}, after)
        for field in changes:
            setattr(router, field, after[field])
        if "password" in sent:
            router.set_password(sent["password"])
            changes["password"] = "changed"
        reconnect = bool(_CONNECTION_FIELDS.intersection(changes))
        if reconnect:
            # The health seen was the old address's: unknown until the next contact (probed soon).
            router.status, router.last_error = Router.Status.UNKNOWN, ""
            transaction.on_commit(lambda: health.probe_soon(router.pk), robust=True)
        if changes:
            router.save()
            audit.record(operator=operator, actor=operator, action="updateRouter", obj=router, changes=changes)
        if reconnect:
            transaction.on_commit(lambda: router_forget_connection(router.pk), robust=True)
            for package_id in router.packages.filter(deleted_at__isnull=True).values_list("pk", flat=True):
                _sync_profile_after_commit(package_id)
    return router


def router_delete(*, operator: AbstractBaseUser, router_id: object, force: bool = False) -> Router:
    """Remove a router from the API (soft): gone from `routers`, `packages`, the portal and new payments.

    Refused (INVALID_INPUT) while customers hold ACTIVE grants on it, unless `force`: their time then
    runs out as usual. Its packages are deleted with it; payments and grants stay readable.
    """
    with transaction.atomic():
        router = router_get_for(operator=operator, router_id=router_id, for_update=True)
        active = Activation.objects.filter(router=router, status=Activation.Status.ACTIVE).count()
        if active and not force:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"{active} customer(s) are online on this router; delete with force to remove it anyway",
                field="force",
            )
        now = timezone.now()
        packages = router.packages.filter(deleted_at__isnull=True).update(
            deleted_at=now, is_active=False, updated_at=now
        )
        router.deleted_at = now
        router.save(update_fields=["deleted_at", "updated_at"])
        transaction.on_commit(lambda: router_forget_connection(router.pk), robust=True)
        audit.record(
            operator=operator,
            actor=operator,
            action="deleteRouter",
            obj=router,
            changes={"force": force, "active_grants": active, "packages_deleted": packages},
        )
    return router


PLAINTEXT_WARNING = (
    "The router's password crosses the internet in clear: its API port is plaintext (useSsl is off) and its "
    "address is public. Turn on api-ssl (port 8729) and useSsl, or reach it over a VPN"
)


def router_warnings(router: Router) -> list[str]:
    """What the operator should fix, though the server accepts it (no network look-up: a resolver calls it)."""
    warnings = []
    if not router.use_ssl and destinations.looks_public(router.host):
        warnings.append(PLAINTEXT_WARNING)
    return warnings


def _router_password(password: str) -> str:
    if not password:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "password is required", field="password")
    return _no_control_characters(password, "password")


@dataclass(frozen=True)
class PackageInput:
    router_id: object
    name: str
    price: Decimal | str
    duration_minutes: int
    upload_kbps: int | None = None
    download_kbps: int | None = None
    data_limit_mb: int | None = None
    shared_users: int = 1
    is_active: bool = True
    position: int = 0


# The portal lists packages by position; a bound keeps the number a small, sane integer.
MAX_POSITION = 10000

WHOLE_SHILLINGS = "Prices are whole shillings (M-Pesa takes no cents)"


def _price(raw: Decimal | str) -> Decimal:
    try:
        price = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        price = Decimal("NaN")
    if not price.is_finite() or price < Decimal("1") or price > Decimal("99999999"):
        raise ApplicationError(ErrorCode.INVALID_INPUT, "price must be between 1 and 99999999 KES", field="price")
    if price != price.to_integral_value():
        raise ApplicationError(ErrorCode.INVALID_INPUT, WHOLE_SHILLINGS, field="price")
    return price.quantize(Decimal("0.01"))


def _optional_positive(value: int | None, field: str) -> int | None:
    if value is not None and value <= 0:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be positive", field=field)
    return value


def _position(value: int) -> int:
    if not 0 <= value <= MAX_POSITION:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"position must be between 0 and {MAX_POSITION}", field="position"
        )
    return value


def _duration(minutes: int) -> int:
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"durationMinutes must be between 1 and {MAX_DURATION_MINUTES}",
            field="durationMinutes",
        )
    return minutes


def _shared_users(count: int) -> int:
    if not 1 <= count <= MAX_SHARED_USERS:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, f"sharedUsers must be between 1 and {MAX_SHARED_USERS}", field="sharedUsers"
        )
    return count


# One set of rules for packageCreate/packageUpdate and the admin's package form: model field ->
# check and normalisation (raising ApplicationError named after the API field).
PACKAGE_RULES: dict[str, Callable[[Any], Any]] = {
    "name": lambda value: _required_text(value, "name", 100),
    "price": _price,
    "duration_minutes": _duration,
    "upload_kbps": lambda value: _optional_positive(value, "uploadKbps"),
    "download_kbps": lambda value: _optional_positive(value, "downloadKbps"),
    "data_limit_mb": lambda value: _optional_positive(value, "dataLimitMb"),
    "shared_users": _shared_users,
    "position": _position,
}


# What the router's hotspot profile is built from: changing any of these means a profile sync.
PROFILE_FIELDS = ("upload_kbps", "download_kbps", "shared_users")


@transaction.atomic
def package_create(*, operator: AbstractBaseUser, data: PackageInput) -> Package:
    """Add a WiFi package (price in KES, duration, optional speed and data caps) to a router.

    Its hotspot user profile is pushed to the router by a job after commit.
    """
    checks = FieldChecks()
    with checks:
        router = router_get_for(operator=operator, router_id=data.router_id)
    cleaned: dict[str, Any] = {}
    for field, rule in PACKAGE_RULES.items():
        with checks:
            cleaned[field] = rule(getattr(data, field))
    checks.raise_if_any()
    package = Package.objects.create(router=router, is_active=data.is_active, **cleaned)
    audit.record(
        operator=operator,
        actor=operator,
        action="createPackage",
        obj=package,
        changes={"router": router.pk, "is_active": package.is_active, **cleaned},
    )
    _sync_profile_after_commit(package.pk)
    return package


@dataclass(frozen=True)
class PackageUpdate:
    """Fields left as UNSET are not changed; ``None`` clears an optional cap."""

    package_id: object
    name: str = UNSET
    price: Decimal | str = UNSET
    duration_minutes: int = UNSET
    upload_kbps: int | None = UNSET
    download_kbps: int | None = UNSET
    data_limit_mb: int | None = UNSET
    shared_users: int = UNSET
    is_active: bool = UNSET
    position: int = UNSET


# Fields an update may leave out but not clear (model field -> API field).
_NOT_NULLABLE = {
    "name": "name",
    "price": "price",
    "duration_minutes": "durationMinutes",
    "shared_users": "sharedUsers",
    "is_active": "isActive",
    "position": "position",
}


def _not_null(value: Any, field: str) -> Any:
    if value is None and field in _NOT_NULLABLE:
        api_field = _NOT_NULLABLE[field]
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{api_field} cannot be null", field=api_field)
    return value


def package_update(*, operator: AbstractBaseUser, data: PackageUpdate) -> Package:
    """Change a package; when its speeds or shared-users change, the router's profile follows after commit.

    Customers already online keep their access code; a new rate limit applies to them from their
    next login (RouterOS reads the profile at login).
    """
    with transaction.atomic():
        checks = FieldChecks()
        with checks:
            package = package_get_for(operator=operator, package_id=data.package_id, for_update=True)
        changes: dict[str, Any] = {}
        for field, rule in PACKAGE_RULES.items():
            value = getattr(data, field)
            if value is not UNSET:
                with checks:
                    changes[field] = rule(_not_null(value, field))
        if data.is_active is not UNSET:
            with checks:
                changes["is_active"] = _not_null(data.is_active, "is_active")
        checks.raise_if_any()
        changed = {field for field, value in changes.items() if getattr(package, field) != value}
        if changed:
            before = {field: getattr(package, field) for field in changed}
            for field in changed:
                setattr(package, field, changes[field])
            package.save(update_fields=[*sorted(changed), "updated_at"])
            audit.record(
                operator=operator,
                actor=operator,
                action="updatePackage",
                obj=package,
                changes=audit.diff(before, {field: changes[field] for field in changed}),
            )
        if changed.intersection(PROFILE_FIELDS):
            _sync_profile_after_commit(package.pk)
    return package


@transaction.atomic
def package_delete(*, operator: AbstractBaseUser, package_id: object) -> Package:
    """Take a package off sale for good: hidden from `packages`, new payments and voucher batches.

    Soft: its payments, vouchers and grants keep pointing at it. Customers online keep their time;
    the router's profile stays for them.
    """
    package = package_get_for(operator=operator, package_id=package_id, for_update=True)
    # is_active=False too: every "on sale" check (payments, vouchers) already filters on it.
    package.deleted_at = timezone.now()
    package.is_active = False
    package.save(update_fields=["deleted_at", "is_active", "updated_at"])
    audit.record(operator=operator, actor=operator, action="deletePackage", obj=package, changes={})
    return package


def _sync_profile_after_commit(package_id: int) -> None:
    def enqueue() -> None:
        from network.tasks import enqueue_profile_sync

        enqueue_profile_sync(package_id)

    transaction.on_commit(enqueue, robust=True)


# --- Talking to routers -----------------------------------------------------------------------


def _router_address(router: Router) -> RouterAddress:
    """How to reach the router; the password is decrypted here and lives only in the driver.

    A password that no longer decrypts (lost FIELD_ENCRYPTION_KEY) is reported like wrong
    credentials: retrying cannot help, the operator must enter it again.
    """
    try:
        password = router.password()
    except DecryptionFailed:
        raise RouterAuthFailed(
            "stored password unreadable",
            command="/login",
            text="The router's stored API password could not be decrypted; enter it again",
        ) from None
    return RouterAddress(
        host=router.host,
        port=router.api_port,
        username=router.username,
        password=password,
        use_ssl=router.use_ssl,
    )


def _new_driver(address: RouterAddress, timeout: float | None = None) -> RouterOSDriver:
    # Every connection (activation, profile sync, expiry, checks) is checked and pinned to one address.
    return RouterOSDriver(
        address, timeout=timeout or settings.ROUTER_API_TIMEOUT_SECONDS, resolve=destinations.connect_address
    )


def _configured_pool() -> routeros_pool.RouterConnectionPool:
    pool = routeros_pool.pool
    pool.max_size = settings.ROUTER_POOL_SIZE
    pool.idle_seconds = settings.ROUTER_POOL_IDLE_SECONDS
    pool.ping_after = settings.ROUTER_POOL_PING_AFTER_SECONDS
    pool.max_age_seconds = settings.ROUTER_POOL_MAX_AGE_SECONDS
    return pool


@contextmanager
def router_lease(router: Router) -> Iterator[routeros_pool.Lease]:
    """The router's pooled connection (see ``network.routeros_pool``), opened (and checked) if needed.

    A deleted router gets a one-off connection and loses any pooled one.
    """
    address = _router_address(router)
    pool = _configured_pool()
    if router.deleted_at is not None:
        pool.discard(router.pk)
        with _new_driver(address) as driver:
            yield routeros_pool.Lease(driver, reused=False)
        return
    fingerprint = routeros_pool.address_fingerprint(address)
    with pool.lease(router.pk, fingerprint, lambda: _new_driver(address)) as lease:
        yield lease


@contextmanager
def router_driver(router: Router, *, timeout: float | None = None, pooled: bool = True) -> Iterator[RouterOSDriver]:
    """A connected driver for one job: the router's pooled connection, or with ``timeout`` or
    ``pooled=False`` a connection of its own (a probe or an explicit check must log in for real)."""
    if timeout is None and pooled:
        with router_lease(router) as lease:
            yield lease.driver
        return
    with _new_driver(_router_address(router), timeout) as driver:
        yield driver


def router_session(router: Router, work: Callable[[routeros_pool.Lease], T]) -> T:
    """``work`` on the router's pooled connection; if a *reused* connection turns out dead (RouterUnreachable),
    once more on a newly opened one. Only for work that is safe to run twice (its commands may have reached
    the router before the connection died)."""
    with router_lease(router) as lease:
        try:
            return work(lease)
        except RouterUnreachable as error:
            if not lease.reused:
                raise
            logger.info("Router %s: its pooled connection was dead (%s); opening a new one", router.pk, error.message)
    with router_lease(router) as lease:
        return work(lease)


def router_forget_connection(router_id: int) -> None:
    """Close this process's pooled connection to the router (deleted, or its address changed)."""
    routeros_pool.pool.discard(router_id)


def router_touch(*, router_id: int, at: datetime | None = None) -> None:
    """Remember that the router's API answered (lastContactAt, status ONLINE; see network.health)."""
    health.router_answered(router_id, at=at)


def profile_spec(package: Package) -> HotspotProfileSpec:
    """The hotspot user profile a package maps to (rate-limit is upload/download, the Winbox order)."""
    return HotspotProfileSpec(
        name=package.profile_name,
        rate_limit=format_rate_limit(package.upload_kbps, package.download_kbps),
        shared_users=package.shared_users,
    )


def package_profile_sync(*, package_id: int) -> None:
    """Create or update the package's hotspot user profile on its router (idempotent).

    Raises RouterError when the router cannot be reached or refuses; the job retries.
    """
    package = Package.objects.select_related("router").get(pk=package_id)
    with router_driver(package.router) as driver:
        router_touch(router_id=package.router_id)
        driver.ensure_profile(profile_spec(package))


@dataclass(frozen=True)
class RouterCheck:
    ok: bool
    identity: str | None = None
    version: str | None = None
    error: str | None = None


def router_check_connection(*, operator: AbstractBaseUser, router_id: object) -> RouterCheck:
    """Log in to the router's API and read its identity and RouterOS version.

    Someone else's router raises ROUTER_NOT_FOUND, an address the server must not connect to
    ROUTER_NOT_ALLOWED, too many checks RATE_LIMITED; a router that cannot be reached or refuses the
    credentials is an answer (``ok=False`` with one of a few generic reasons), not an error of the request.
    """
    # Each check is a connection to an address of the operator's choosing: not a port scanner.
    if not hit(
        "router-check",
        str(operator.pk),
        limit=settings.ROUTER_CHECK_RATE_LIMIT,
        window_seconds=settings.ROUTER_CHECK_RATE_LIMIT_WINDOW_SECONDS,
    ):
        raise ApplicationError(ErrorCode.RATE_LIMITED, "Too many router checks. Please wait a minute and try again.")
    router = router_get_for(operator=operator, router_id=router_id)
    try:
        with router_driver(router, pooled=False) as driver:  # the operator asks whether a login works now
            identity = driver.identity()
    except RouterNotAllowed as error:
        raise ApplicationError(ErrorCode.ROUTER_NOT_ALLOWED, str(error)) from None
    except RouterError as error:
        health.router_failed(router.pk, error)  # an explicit check is news about the router's health too
        return RouterCheck(ok=False, error=str(error))
    router_touch(router_id=router.pk)
    return RouterCheck(ok=True, identity=identity.identity or None, version=identity.version or None)
