"""GraphQL for routers and packages: thin resolvers over network.services / network.selectors."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from strawberry import auto

from network import activation, models, selectors, services
from project.errors import ApplicationError, ErrorCode
from project.graphql_support import (
    IsOperator,
    IsOperatorOrPortal,
    UserError,
    operator_principal,
    principal_of,
    without_database,
)

if TYPE_CHECKING:
    # billing.schema imports this module: the Payment type is resolved lazily, when the schema is built.
    from billing.schema import PaymentType


@strawberry_django.type(models.Router, name="Router")
class RouterType:
    id: auto
    name: auto
    use_ssl: auto
    last_contact_at: datetime | None = strawberry_django.field(
        description="When the server last reached the router's API"
    )
    created_at: auto

    @strawberry_django.field(only=["host"], description="RouterOS API address (operators only)")
    @without_database
    def host(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return self.host if principal and principal.is_operator else None

    @strawberry_django.field(only=["api_port"], description="RouterOS API port (operators only)")
    @without_database
    def api_port(self, info: strawberry.Info) -> int | None:
        principal = principal_of(info)
        return self.api_port if principal and principal.is_operator else None

    @strawberry_django.field(only=["username"], description="RouterOS API user (operators only)")
    @without_database
    def username(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return self.username if principal and principal.is_operator else None

    @strawberry_django.field(
        only=["hotspot_address"],
        description="The hotspot's DNS name or IP (optional :port) as customers' browsers see it: the only "
        "place the portal posts an access code to (operators only)",
    )
    @without_database
    def hotspot_address(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return (self.hotspot_address or None) if principal and principal.is_operator else None


@strawberry_django.type(models.Package, name="Package")
class PackageType:
    id: auto
    name: auto
    price: Decimal = strawberry_django.field(description="Price in KES")
    duration_minutes: auto
    upload_kbps: auto
    download_kbps: auto
    data_limit_mb: auto
    shared_users: auto
    is_active: auto
    created_at: auto
    router: RouterType


@strawberry.input
class CreateRouterInput:
    name: str
    host: str
    username: str
    password: str = strawberry.field(description="Write-only: stored encrypted, never returned")
    api_port: int = 8728
    use_ssl: bool = False
    hotspot_address: str | None = strawberry.field(
        default=None, description="The hotspot's DNS name or IP, optional :port (no scheme or path)"
    )


@strawberry.type
class CreateRouterPayload:
    router: RouterType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreatePackageInput:
    router_id: strawberry.ID
    name: str
    price: Decimal
    duration_minutes: int
    upload_kbps: int | None = None
    download_kbps: int | None = None
    data_limit_mb: int | None = None
    shared_users: int = 1
    is_active: bool = True


@strawberry.type
class CreatePackagePayload:
    package: PackageType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _given(value: object) -> object:
    """Strawberry's UNSET (field not sent) → the services' UNSET; everything else as is."""
    return services.UNSET if value is strawberry.UNSET else value


@strawberry.input(description="Only the fields sent are changed; null clears an optional cap")
class UpdatePackageInput:
    package_id: strawberry.ID
    name: str | None = strawberry.UNSET
    price: Decimal | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    upload_kbps: int | None = strawberry.UNSET
    download_kbps: int | None = strawberry.UNSET
    data_limit_mb: int | None = strawberry.UNSET
    shared_users: int | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


@strawberry.type
class UpdatePackagePayload:
    package: PackageType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The outcome of logging in to a router's API")
class RouterConnectionCheck:
    ok: bool
    identity: str | None = strawberry.field(default=None, description="/system/identity name")
    version: str | None = strawberry.field(default=None, description="RouterOS version")
    error: str | None = strawberry.field(default=None, description="Why the router could not be used")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RetryActivationPayload:
    payment: Annotated[PaymentType, strawberry.lazy("billing.schema")] | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class NetworkQuery:
    @strawberry_django.field(permission_classes=[IsOperator], description="The operator's routers")
    def routers(self, info: strawberry.Info) -> list[RouterType]:
        return selectors.routers_for(operator_principal(info).operator)  # type: ignore[return-value]

    @strawberry_django.field(
        permission_classes=[IsOperatorOrPortal],
        description="A router's packages: all of them for operators, the active ones for portals",
    )
    def packages(self, info: strawberry.Info, router_id: strawberry.ID) -> list[PackageType]:
        principal = operator_principal(info)
        try:
            return selectors.packages_for(  # type: ignore[return-value]
                operator=principal.operator, router_id=router_id, active_only=not principal.is_operator
            )
        except ApplicationError:
            return []  # someone else's router looks like one without packages


@strawberry.type
class NetworkMutation:
    @strawberry_django.mutation(permission_classes=[IsOperator], description="Register a MikroTik router")
    def create_router(self, info: strawberry.Info, input: CreateRouterInput) -> CreateRouterPayload:
        try:
            router = services.router_create(
                operator=operator_principal(info).operator,
                data=services.RouterInput(
                    name=input.name,
                    host=input.host,
                    username=input.username,
                    password=input.password,
                    api_port=input.api_port,
                    use_ssl=input.use_ssl,
                    hotspot_address=input.hotspot_address or "",
                ),
            )
        except ApplicationError as error:
            return CreateRouterPayload(errors=[UserError.of(error)])
        return CreateRouterPayload(router=router)  # type: ignore[arg-type]

    @strawberry_django.mutation(permission_classes=[IsOperator], description="Add a WiFi package to a router")
    def create_package(self, info: strawberry.Info, input: CreatePackageInput) -> CreatePackagePayload:
        try:
            package = services.package_create(
                operator=operator_principal(info).operator,
                data=services.PackageInput(
                    router_id=input.router_id,
                    name=input.name,
                    price=input.price,
                    duration_minutes=input.duration_minutes,
                    upload_kbps=input.upload_kbps,
                    download_kbps=input.download_kbps,
                    data_limit_mb=input.data_limit_mb,
                    shared_users=input.shared_users,
                    is_active=input.is_active,
                ),
            )
        except ApplicationError as error:
            return CreatePackagePayload(errors=[UserError.of(error)])
        return CreatePackagePayload(package=package)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Change a package; a new speed or shared-users limit is pushed to the router's profile",
    )
    def update_package(self, info: strawberry.Info, input: UpdatePackageInput) -> UpdatePackagePayload:
        # These may be left out, but not cleared.
        required = {"name": "name", "price": "price", "duration_minutes": "durationMinutes",
                    "shared_users": "sharedUsers", "is_active": "isActive"}  # fmt: skip
        for attribute, field in required.items():
            if getattr(input, attribute) is None:
                return UpdatePackagePayload(
                    errors=[UserError(field=field, code=ErrorCode.INVALID_INPUT, message=f"{field} cannot be null")]
                )
        try:
            package = services.package_update(
                operator=operator_principal(info).operator,
                data=services.PackageUpdate(
                    package_id=input.package_id,
                    name=_given(input.name),
                    price=_given(input.price),
                    duration_minutes=_given(input.duration_minutes),
                    upload_kbps=_given(input.upload_kbps),
                    download_kbps=_given(input.download_kbps),
                    data_limit_mb=_given(input.data_limit_mb),
                    shared_users=_given(input.shared_users),
                    is_active=_given(input.is_active),
                ),
            )
        except ApplicationError as error:
            return UpdatePackagePayload(errors=[UserError.of(error)])
        return UpdatePackagePayload(package=package)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Log in to the router's API now: identity and RouterOS version, or why it failed",
    )
    def check_router_connection(self, info: strawberry.Info, router_id: strawberry.ID) -> RouterConnectionCheck:
        try:
            check = services.router_check_connection(operator=operator_principal(info).operator, router_id=router_id)
        except ApplicationError as error:
            return RouterConnectionCheck(ok=False, error=error.message, errors=[UserError.of(error)])
        return RouterConnectionCheck(ok=check.ok, identity=check.identity, version=check.version, error=check.error)

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Start a FAILED router activation again (a fresh job with all its retries)",
    )
    def retry_activation(self, info: strawberry.Info, payment_id: uuid.UUID) -> RetryActivationPayload:
        try:
            payment = activation.activation_retry(operator=operator_principal(info).operator, payment_id=payment_id)
        except ApplicationError as error:
            return RetryActivationPayload(errors=[UserError.of(error)])
        return RetryActivationPayload(payment=payment)  # type: ignore[arg-type]


@strawberry.enum(description="Where a paid customer stands on the router")
class ActivationStatus(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


PORTAL_ACTIVATION_ERROR = "The hotspot has not confirmed your access yet; it is being retried."


@strawberry_django.type(models.Activation, name="Activation")
class ActivationType:
    attempts: auto
    activated_at: auto
    expires_at: auto

    @strawberry_django.field(
        only=["access_code"], description="The hotspot login code (shown to the payer and the operator)"
    )
    @without_database
    def access_code(self) -> str | None:
        return self.access_code or None

    @strawberry_django.field(
        only=["last_error"],
        description="Why the last router attempt failed: the router's own words for the operator, a plain "
        "notice for portal callers (router texts could name addresses or echo what was sent)",
    )
    @without_database
    def last_error(self, info: strawberry.Info) -> str | None:
        if not self.last_error:
            return None
        principal = principal_of(info)
        return self.last_error if principal is not None and principal.is_operator else PORTAL_ACTIVATION_ERROR

    @strawberry_django.field(only=["status"])
    @without_database
    def status(self) -> ActivationStatus:
        return ActivationStatus(self.status)
