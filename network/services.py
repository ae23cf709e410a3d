"""Every write to routers and packages, and the router-facing chores that go with them.

Router I/O never runs inside a database transaction: a router that times out must not hold a row
lock (or, on SQLite, the whole database's write lock) for seconds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from network import destinations
from network.models import MAX_DURATION_MINUTES, MAX_SHARED_USERS, Package, Router
from network.routeros import (
    HotspotProfileSpec,
    RouterAddress,
    RouterAuthFailed,
    RouterError,
    RouterNotAllowed,
    RouterOSDriver,
    format_rate_limit,
)
from network.selectors import package_get_for, router_get_for
from project import audit
from project.encryption import DecryptionFailed
from project.errors import ApplicationError, ErrorCode, FieldChecks
from project.throttling import hit
from project.unset import UNSET

logger = logging.getLogger(__name__)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


# A hotspot address as browsers use it: host, [IPv6] or IPv4, then an optional :port; nothing else.
_HOTSPOT_ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]/]+)(?::(?P<port>[0-9]{1,5}))?$")


def _required_text(value: str, field: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text or len(text) > max_length:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be 1 to {max_length} characters", field=field)
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


def router_clean(*, name: str, host: str, username: str, api_port: int, hotspot_address: str) -> RouterFields:
    """Check a router's settings as the API does (the admin's form calls this too: one set of rules).

    Raises ApplicationError naming the API field (InvalidFields for several): INVALID_INPUT, or
    ROUTER_NOT_ALLOWED for a host the server must not connect to (an IP literal, or a name resolving
    there); every connection checks again.
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
    if clean_host is not None and clean_port is not None:
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


def _price(raw: Decimal | str) -> Decimal:
    try:
        price = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        price = Decimal("NaN")
    if (
        not price.is_finite()
        or price < Decimal("1")
        or price > Decimal("99999999.99")
        or (price != price.quantize(Decimal("0.01")))
    ):
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, "price must be at least 1.00 KES with at most 2 decimals", field="price"
        )
    return price.quantize(Decimal("0.01"))


def _optional_positive(value: int | None, field: str) -> int | None:
    if value is not None and value <= 0:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be positive", field=field)
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


# Fields an update may leave out but not clear (model field -> API field).
_NOT_NULLABLE = {
    "name": "name",
    "price": "price",
    "duration_minutes": "durationMinutes",
    "shared_users": "sharedUsers",
    "is_active": "isActive",
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
            for field in changed:
                setattr(package, field, changes[field])
            package.save(update_fields=[*sorted(changed), "updated_at"])
        if changed.intersection(PROFILE_FIELDS):
            _sync_profile_after_commit(package.pk)
    return package


def _sync_profile_after_commit(package_id: int) -> None:
    def enqueue() -> None:
        from network.tasks import enqueue_profile_sync

        enqueue_profile_sync(package_id)

    transaction.on_commit(enqueue, robust=True)


# --- Talking to routers -----------------------------------------------------------------------


def router_driver(router: Router) -> RouterOSDriver:
    """A driver for one job; the password is decrypted here and lives only in the driver.

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
    address = RouterAddress(
        host=router.host,
        port=router.api_port,
        username=router.username,
        password=password,
        use_ssl=router.use_ssl,
    )
    # Every connection (activation, profile sync, expiry, checks) is checked and pinned to one address.
    return RouterOSDriver(address, timeout=settings.ROUTER_API_TIMEOUT_SECONDS, resolve=destinations.connect_address)


def router_touch(*, router_id: int, at: datetime | None = None) -> None:
    """Remember that the router's API answered (shown to operators as lastContactAt)."""
    Router.objects.filter(pk=router_id).update(last_contact_at=at or timezone.now())


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
        with router_driver(router) as driver:
            identity = driver.identity()
    except RouterNotAllowed as error:
        raise ApplicationError(ErrorCode.ROUTER_NOT_ALLOWED, str(error)) from None
    except RouterError as error:
        return RouterCheck(ok=False, error=str(error))
    router_touch(router_id=router.pk)
    return RouterCheck(ok=True, identity=identity.identity or None, version=identity.version or None)
