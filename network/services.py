"""Every write to routers and packages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from network.models import Package, Router
from network.selectors import router_get_for
from project.errors import ApplicationError, ErrorCode

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


def _required_text(value: str, field: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text or len(text) > max_length:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be 1 to {max_length} characters", field=field)
    return text


@dataclass(frozen=True)
class RouterInput:
    name: str
    host: str
    username: str
    password: str
    api_port: int = 8728
    use_ssl: bool = False


def router_create(*, operator: AbstractBaseUser, data: RouterInput) -> Router:
    """Register a router; its API password is stored encrypted and never shown again."""
    host = _required_text(data.host, "host", 255)
    if not _HOSTNAME.match(host) and not _is_ip(host):
        raise ApplicationError(ErrorCode.INVALID_INPUT, "host must be a hostname or IP address", field="host")
    if not 1 <= data.api_port <= 65535:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "apiPort must be between 1 and 65535", field="apiPort")
    if not data.password:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "password is required", field="password")
    router = Router(
        owner=operator,
        name=_required_text(data.name, "name", 100),
        host=host,
        api_port=data.api_port,
        use_ssl=data.use_ssl,
        username=_required_text(data.username, "username", 100),
    )
    router.set_password(data.password)
    router.save()
    return router


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


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


@transaction.atomic
def package_create(*, operator: AbstractBaseUser, data: PackageInput) -> Package:
    """Add a WiFi package (price in KES, duration, optional speed and data caps) to a router."""
    router = router_get_for(operator=operator, router_id=data.router_id)
    if not 1 <= data.duration_minutes <= 366 * 24 * 60:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, "durationMinutes must be between 1 and 527040", field="durationMinutes"
        )
    if not 1 <= data.shared_users <= 100:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "sharedUsers must be between 1 and 100", field="sharedUsers")
    return Package.objects.create(
        router=router,
        name=_required_text(data.name, "name", 100),
        price=_price(data.price),
        duration_minutes=data.duration_minutes,
        upload_kbps=_optional_positive(data.upload_kbps, "uploadKbps"),
        download_kbps=_optional_positive(data.download_kbps, "downloadKbps"),
        data_limit_mb=_optional_positive(data.data_limit_mb, "dataLimitMb"),
        shared_users=data.shared_users,
        is_active=data.is_active,
    )
