"""GraphQL for routers and packages: thin resolvers over network.services / network.selectors."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
import strawberry_django
from strawberry import auto

from network import models, selectors, services, setup_script
from network.grant_schema import GrantMutation, GrantQuery
from project.errors import ApplicationError
from project.graphql_support import (
    IsOperator,
    IsOperatorOrPortal,
    UserError,
    operator_principal,
    principal_of,
    without_database,
)
from project.unset import given


@strawberry.enum(description="Whether the server can reach a router's API")
class RouterStatus(enum.Enum):
    ONLINE = strawberry.enum_value("ONLINE", description="The last probe or contact logged in to its API")
    OFFLINE = strawberry.enum_value("OFFLINE", description="The last probe could not (see `lastError`)")
    UNKNOWN = strawberry.enum_value("UNKNOWN", description="Not probed yet")


@strawberry_django.type(
    models.Router,
    name="Router",
    description="A MikroTik router running a hotspot, owned by one operator. Connection details are null for "
    "X-Public-Key callers.",
)
class RouterType:
    id: auto = strawberry_django.field(description="Stable id; the `routerId` of every other operation")
    name: auto = strawberry_django.field(description="The operator's name for it, shown to customers too")
    use_ssl: auto = strawberry_django.field(description="Whether the server talks to the RouterOS API over TLS")
    last_contact_at: datetime | None = strawberry_django.field(
        description="When the server last reached the router's API; null if it never has"
    )
    created_at: auto = strawberry_django.field(description="When the router was registered")

    @strawberry_django.field(
        only=["host"], description="RouterOS API address (DNS name or IP); null for X-Public-Key callers"
    )
    @without_database
    def host(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return self.host if principal and principal.is_operator else None

    @strawberry_django.field(
        only=["api_port"], description="RouterOS API port (8728 plain, 8729 TLS); null for X-Public-Key callers"
    )
    @without_database
    def api_port(self, info: strawberry.Info) -> int | None:
        principal = principal_of(info)
        return self.api_port if principal and principal.is_operator else None

    @strawberry_django.field(only=["username"], description="RouterOS API user; null for X-Public-Key callers")
    @without_database
    def username(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return self.username if principal and principal.is_operator else None

    @strawberry_django.field(
        only=["status"],
        description="Whether the server can reach the router's API, kept by a periodic probe and every contact",
    )
    @without_database
    def status(self) -> RouterStatus:
        return RouterStatus(self.status)

    @strawberry_django.field(
        only=["last_error"],
        description="Why the last probe failed, in a few generic words; null when ONLINE or never probed, and "
        "for X-Public-Key callers",
    )
    @without_database
    def last_error(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return (self.last_error or None) if principal and principal.is_operator else None

    @strawberry_django.field(
        only=["host", "use_ssl"],
        description="What the operator should fix though the server accepts it (e.g. a plaintext API port to a "
        "public address); empty when nothing, and for X-Public-Key callers",
    )
    @without_database
    def warnings(self, info: strawberry.Info) -> list[str]:
        principal = principal_of(info)
        return services.router_warnings(self) if principal and principal.is_operator else []

    @strawberry_django.field(
        only=["hotspot_address"],
        description="The hotspot's DNS name or IP (optional :port) as customers' browsers see it: the only "
        "place the portal posts an access code to. Null when not set, and for X-Public-Key callers",
    )
    @without_database
    def hotspot_address(self, info: strawberry.Info) -> str | None:
        principal = principal_of(info)
        return (self.hotspot_address or None) if principal and principal.is_operator else None


@strawberry_django.type(
    models.Package,
    name="Package",
    description="A WiFi package sold on one router: price, time and optional speed and data caps",
)
class PackageType:
    id: auto = strawberry_django.field(description="Stable id; the `packageId` of payments and updatePackage")
    name: auto = strawberry_django.field(description="Shown to customers, e.g. `1 Hour`")
    price: Decimal = strawberry_django.field(
        description="Price in KES, two decimals (e.g. `25.00`); a payment's `amount` must equal it"
    )
    duration_minutes: auto = strawberry_django.field(
        description="Access time bought, in minutes, counted from the payment's completion"
    )
    upload_kbps: auto = strawberry_django.field(description="Upload speed cap in kbit/s; null: no cap")
    download_kbps: auto = strawberry_django.field(description="Download speed cap in kbit/s; null: no cap")
    data_limit_mb: auto = strawberry_django.field(
        description="Total data cap (upload + download) in MB of 1,000,000 bytes; null: no cap"
    )
    shared_users: auto = strawberry_django.field(
        description="How many devices may be online at once on one access code"
    )
    is_active: auto = strawberry_django.field(
        description="On sale: inactive packages are only listed to operators and cannot be bought"
    )
    position: auto = strawberry_django.field(description="The portal's order: lowest first, equal positions by price")
    created_at: auto = strawberry_django.field(description="When the package was created")
    router: RouterType = strawberry_django.field(description="The router it is sold on")


@strawberry.input(description="A router to register (createRouter)")
class CreateRouterInput:
    name: str = strawberry.field(description="1 to 100 characters; shown to customers too")
    host: str = strawberry.field(
        description="The RouterOS API's DNS name or IP, no scheme or port (1 to 255 characters). An address the "
        "server may not connect to (loopback, link-local, a denied network) gives ROUTER_NOT_ALLOWED"
    )
    username: str = strawberry.field(description="RouterOS API user, 1 to 100 characters (a least-privilege one)")
    password: str = strawberry.field(description="RouterOS API password. Write-only: stored encrypted, never returned")
    api_port: int = strawberry.field(
        default=8728, description="RouterOS API port, 1 to 65535: 8728 plain, 8729 for TLS (`useSsl`)"
    )
    use_ssl: bool = strawberry.field(default=False, description="Talk to the RouterOS API over TLS (api-ssl)")
    hotspot_address: str | None = strawberry.field(
        default=None,
        description="The hotspot's DNS name or IP as customers' browsers see it, optional :port (no scheme or "
        "path), e.g. `hotspot.example.net` or `10.5.50.1:80`; null or empty: none",
    )


@strawberry.type(description="createRouter's result: the router, or `errors` saying why not")
class CreateRouterPayload:
    router: RouterType | None = strawberry.field(default=None, description="The new router; null when refused")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Why it was refused; empty on success")


_PRICE = "Price in whole KES, at least 1 (M-Pesa takes no cents: `25.50` is refused)"
_POSITION = "The portal's order, 0 to 10000: lowest first, equal positions by price"
_DURATION = "Access time in minutes, 1 to 527040 (366 days)"
_UPLOAD = "Upload speed cap in kbit/s, positive; null: no cap"
_DOWNLOAD = "Download speed cap in kbit/s, positive; null: no cap"
_DATA_LIMIT = "Total data cap in MB (1,000,000 bytes), positive; null: no cap"
_SHARED_USERS = "Devices online at once per access code, 1 to 100"


@strawberry.input(description="A package to add to a router (createPackage)")
class CreatePackageInput:
    router_id: strawberry.ID = strawberry.field(description="One of the operator's routers (else ROUTER_NOT_FOUND)")
    name: str = strawberry.field(description="1 to 100 characters, shown to customers")
    price: Decimal = strawberry.field(description=_PRICE)
    duration_minutes: int = strawberry.field(description=_DURATION)
    upload_kbps: int | None = strawberry.field(default=None, description=_UPLOAD)
    download_kbps: int | None = strawberry.field(default=None, description=_DOWNLOAD)
    data_limit_mb: int | None = strawberry.field(default=None, description=_DATA_LIMIT)
    shared_users: int = strawberry.field(default=1, description=_SHARED_USERS)
    is_active: bool = strawberry.field(default=True, description="On sale at once (listed to portals)")
    position: int = strawberry.field(default=0, description=_POSITION)


@strawberry.type(description="createPackage's result: the package, or `errors` saying why not")
class CreatePackagePayload:
    package: PackageType | None = strawberry.field(default=None, description="The new package; null when refused")
    errors: list[UserError] = strawberry.field(
        default_factory=list, description="Every invalid field, or why it was refused; empty on success"
    )


_KEEP = "Left out: unchanged. Null is refused (INVALID_INPUT)."
_CLEAR = "Left out: unchanged; null: no cap."


@strawberry.input(
    description="Changes to a package (updatePackage): only the fields sent are changed; null clears an "
    "optional cap and is refused for the others"
)
class UpdatePackageInput:
    package_id: strawberry.ID = strawberry.field(description="One of the operator's packages (else PACKAGE_NOT_FOUND)")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=f"1 to 100 characters. {_KEEP}")
    price: Decimal | None = strawberry.field(default=strawberry.UNSET, description=f"{_PRICE}. {_KEEP}")
    duration_minutes: int | None = strawberry.field(default=strawberry.UNSET, description=f"{_DURATION}. {_KEEP}")
    upload_kbps: int | None = strawberry.field(
        default=strawberry.UNSET, description=f"Upload speed cap in kbit/s, positive. {_CLEAR}"
    )
    download_kbps: int | None = strawberry.field(
        default=strawberry.UNSET, description=f"Download speed cap in kbit/s, positive. {_CLEAR}"
    )
    data_limit_mb: int | None = strawberry.field(
        default=strawberry.UNSET, description=f"Total data cap in MB (1,000,000 bytes), positive. {_CLEAR}"
    )
    shared_users: int | None = strawberry.field(default=strawberry.UNSET, description=f"{_SHARED_USERS}. {_KEEP}")
    is_active: bool | None = strawberry.field(
        default=strawberry.UNSET, description=f"On sale (listed to portals). {_KEEP}"
    )
    position: int | None = strawberry.field(default=strawberry.UNSET, description=f"{_POSITION}. {_KEEP}")


@strawberry.type(description="updatePackage's result: the package as it now is, or `errors` saying why not")
class UpdatePackagePayload:
    package: PackageType | None = strawberry.field(
        default=None, description="The package after the change; null when refused (nothing changed)"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list, description="Every invalid field, or why it was refused; empty on success"
    )


@strawberry.type(
    description="The outcome of logging in to a router's API (checkRouterConnection). A router that cannot be "
    "used is an answer (`ok: false` and `error`), not an error of the request"
)
class RouterConnectionCheck:
    ok: bool = strawberry.field(description="The server logged in to the router's API")
    identity: str | None = strawberry.field(
        default=None, description="The router's /system/identity name; null unless ok"
    )
    version: str | None = strawberry.field(default=None, description="RouterOS version, e.g. `7.14.3`; null unless ok")
    error: str | None = strawberry.field(
        default=None,
        description="Why the router could not be used, in a few generic words (unreachable, refused the login, "
        "not a RouterOS API, timed out); null when ok",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why the check was not made (ROUTER_NOT_FOUND, ROUTER_NOT_ALLOWED, RATE_LIMITED, "
        "SERVICE_UNAVAILABLE); empty otherwise",
    )


_ROUTER_ID = "One of the caller's routers (`Router.id`)"
_KEEP_ROUTER = "Left out: unchanged. Null is refused (INVALID_INPUT)."


@strawberry.input(
    description="Changes to a router (updateRouter): only the fields sent are changed. A new host or port is "
    "checked like createRouter's; a new address or login re-pushes the packages' profiles to the router"
)
class UpdateRouterInput:
    router_id: strawberry.ID = strawberry.field(description=f"{_ROUTER_ID} (else ROUTER_NOT_FOUND)")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=f"1 to 100 characters. {_KEEP_ROUTER}")
    host: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"The RouterOS API's DNS name or IP (ROUTER_NOT_ALLOWED where the server may not connect). "
        f"{_KEEP_ROUTER}",
    )
    api_port: int | None = strawberry.field(default=strawberry.UNSET, description=f"1 to 65535. {_KEEP_ROUTER}")
    use_ssl: bool | None = strawberry.field(
        default=strawberry.UNSET, description=f"Talk to the RouterOS API over TLS. {_KEEP_ROUTER}"
    )
    username: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"RouterOS API user, 1 to 100 characters. {_KEEP_ROUTER}"
    )
    password: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"RouterOS API password, write-only. {_KEEP_ROUTER}"
    )
    hotspot_address: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The hotspot's DNS name or IP as customers' browsers see it, optional :port. Left out: "
        "unchanged; null or empty: none",
    )


@strawberry.type(description="updateRouter's and deleteRouter's result: the router, or `errors` saying why not")
class RouterPayload:
    router: RouterType | None = strawberry.field(
        default=None, description="The router after the change; null when refused (nothing changed)"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list, description="Every invalid field, or why it was refused; empty on success"
    )


@strawberry.type(description="deletePackage's result: the package as deleted, or `errors` saying why not")
class DeletePackagePayload:
    package: PackageType | None = strawberry.field(
        default=None, description="The deleted package (no longer listed anywhere); null when refused"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it was refused (PACKAGE_NOT_FOUND); empty on success"
    )


@strawberry.type
class NetworkQuery(GrantQuery):
    @strawberry_django.field(
        permission_classes=[IsOperator], description="Operator JWT only. The operator's routers, by name"
    )
    def routers(self, info: strawberry.Info) -> list[RouterType]:
        return selectors.routers_for(operator_principal(info).operator)  # type: ignore[return-value]

    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="Operator JWT only. The RouterOS commands that prepare this router for CloudPilot: a "
        "least-privilege API user, the API service limited to this server, the hotspot profile (PAP), the walled "
        "garden for this server and IntaSend's checkout, and the three values of login.html. No secret: the "
        "password is a placeholder to replace. Null for a router that is not the caller's",
    )
    def router_setup_script(
        self, info: strawberry.Info, router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)]
    ) -> str | None:
        operator = operator_principal(info).operator
        try:
            router = selectors.router_get_for(operator=operator, router_id=router_id)
        except ApplicationError:
            return None
        profile = getattr(operator, "operator", None)  # the portal key lives on the operator's profile
        return setup_script.router_setup_script(
            router=router,
            cloudpilot_url=setup_script.server_url(info.context.request.build_absolute_uri("/")),
            public_key=profile.public_key if profile is not None else None,
        )

    @strawberry_django.field(
        permission_classes=[IsOperatorOrPortal],
        description="Operator JWT or X-Public-Key. A router's packages in `position` order (then cheapest "
        "first): all of them for operators, the active ones for portals. Empty for a router that is not the caller's",
    )
    def packages(
        self, info: strawberry.Info, router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)]
    ) -> list[PackageType]:
        principal = operator_principal(info)
        try:
            return selectors.packages_for(  # type: ignore[return-value]
                operator=principal.operator, router_id=router_id, active_only=not principal.is_operator
            )
        except ApplicationError:
            return []  # someone else's router looks like one without packages


@strawberry.type
class NetworkMutation(GrantMutation):
    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Register a MikroTik router (nothing is sent to it yet: see "
        "checkRouterConnection). Errors: INVALID_INPUT, ROUTER_NOT_ALLOWED",
    )
    def create_router(
        self, info: strawberry.Info, input: Annotated[CreateRouterInput, strawberry.argument(description="The router")]
    ) -> CreateRouterPayload:
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
            return CreateRouterPayload(errors=UserError.list_of(error))
        return CreateRouterPayload(router=router)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Add a WiFi package to a router; its hotspot profile is pushed to the "
        "router in the background. Errors: INVALID_INPUT, ROUTER_NOT_FOUND",
    )
    def create_package(
        self,
        info: strawberry.Info,
        input: Annotated[CreatePackageInput, strawberry.argument(description="The package")],
    ) -> CreatePackagePayload:
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
                    position=input.position,
                ),
            )
        except ApplicationError as error:
            return CreatePackagePayload(errors=UserError.list_of(error))
        return CreatePackagePayload(package=package)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Change a package; a new speed or shared-users limit is pushed to the "
        "router's profile (customers online get it at their next login). Errors: INVALID_INPUT, PACKAGE_NOT_FOUND",
    )
    def update_package(
        self,
        info: strawberry.Info,
        input: Annotated[UpdatePackageInput, strawberry.argument(description="The fields to change")],
    ) -> UpdatePackagePayload:
        try:
            package = services.package_update(
                operator=operator_principal(info).operator,
                data=services.PackageUpdate(
                    package_id=input.package_id,
                    name=given(input.name),
                    price=given(input.price),
                    duration_minutes=given(input.duration_minutes),
                    upload_kbps=given(input.upload_kbps),
                    download_kbps=given(input.download_kbps),
                    data_limit_mb=given(input.data_limit_mb),
                    shared_users=given(input.shared_users),
                    is_active=given(input.is_active),
                    position=given(input.position),
                ),
            )
        except ApplicationError as error:
            return UpdatePackagePayload(errors=UserError.list_of(error))
        return UpdatePackagePayload(package=package)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Change a router; only the fields sent change. Errors: INVALID_INPUT, "
        "ROUTER_NOT_FOUND, ROUTER_NOT_ALLOWED",
    )
    def update_router(
        self,
        info: strawberry.Info,
        input: Annotated[UpdateRouterInput, strawberry.argument(description="The fields to change")],
    ) -> RouterPayload:
        try:
            router = services.router_update(
                operator=operator_principal(info).operator,
                data=services.RouterUpdate(
                    router_id=input.router_id,
                    name=given(input.name),
                    host=given(input.host),
                    api_port=given(input.api_port),
                    use_ssl=given(input.use_ssl),
                    username=given(input.username),
                    password=given(input.password),
                    hotspot_address=given(input.hotspot_address),
                ),
            )
        except ApplicationError as error:
            return RouterPayload(errors=UserError.list_of(error))
        return RouterPayload(router=router)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Remove a router and its packages (soft: its payments and grants stay "
        "readable). Refused while customers hold ACTIVE grants on it, unless `force`. Errors: INVALID_INPUT, "
        "ROUTER_NOT_FOUND",
    )
    def delete_router(
        self,
        info: strawberry.Info,
        router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)],
        force: Annotated[
            bool,
            strawberry.argument(description="Delete even while customers are online on it (their time runs out)"),
        ] = False,
    ) -> RouterPayload:
        try:
            router = services.router_delete(
                operator=operator_principal(info).operator, router_id=router_id, force=force
            )
        except ApplicationError as error:
            return RouterPayload(errors=UserError.list_of(error))
        return RouterPayload(router=router)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Take a package off sale for good (soft: hidden from packages, new "
        "payments and voucher batches; its history stays). Errors: PACKAGE_NOT_FOUND",
    )
    def delete_package(
        self,
        info: strawberry.Info,
        package_id: Annotated[strawberry.ID, strawberry.argument(description="One of the operator's packages")],
    ) -> DeletePackagePayload:
        try:
            package = services.package_delete(operator=operator_principal(info).operator, package_id=package_id)
        except ApplicationError as error:
            return DeletePackagePayload(errors=UserError.list_of(error))
        return DeletePackagePayload(package=package)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Log in to the router's API now: identity and RouterOS version, or why it "
        "failed. Throttled per operator. Errors: ROUTER_NOT_FOUND, ROUTER_NOT_ALLOWED, RATE_LIMITED, "
        "SERVICE_UNAVAILABLE",
    )
    def check_router_connection(
        self, info: strawberry.Info, router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)]
    ) -> RouterConnectionCheck:
        try:
            check = services.router_check_connection(operator=operator_principal(info).operator, router_id=router_id)
        except ApplicationError as error:
            return RouterConnectionCheck(ok=False, error=error.message, errors=UserError.list_of(error))
        return RouterConnectionCheck(ok=check.ok, identity=check.identity, version=check.version, error=check.error)


@strawberry.enum(description="Where a customer's access grant stands on the router")
class ActivationStatus(enum.Enum):
    PENDING = strawberry.enum_value(
        "PENDING", description="Not on the router yet: the server is putting the customer online (retrying if needed)"
    )
    ACTIVE = strawberry.enum_value("ACTIVE", description="Online: the access code works until `expiresAt`")
    FAILED = strawberry.enum_value(
        "FAILED",
        description="Every attempt to reach the router failed (`lastError` says why). Retried by itself once the "
        "router answers again; operators can retryActivation",
    )
    EXPIRED = strawberry.enum_value("EXPIRED", description="The time is over and the router has taken the user off")
    REVOKED = strawberry.enum_value(
        "REVOKED", description="Ended early by the operator: the access code no longer logs anyone in"
    )


@strawberry.enum(description="How an access grant was obtained")
class AccessSource(enum.Enum):
    PAYMENT = strawberry.enum_value("PAYMENT", description="A completed payment (M-Pesa through IntaSend)")
    VOUCHER = strawberry.enum_value("VOUCHER", description="A redeemed voucher code")
    MANUAL = strawberry.enum_value("MANUAL", description="Given by the operator by hand (a cash sale, goodwill)")


PORTAL_ACTIVATION_ERROR = "The hotspot has not confirmed your access yet; it is being retried."


@strawberry_django.type(
    models.Activation,
    name="Activation",
    description="An access grant: one customer's time on one router, whatever it came from (`source`), put on "
    "the router, taken off at expiry, retried when the router fails. Seen by the operator, inside its Payment by "
    "the X-Public-Key caller holding the payment's clientSecret, and in redeemCode's answer by the caller who "
    "presented its code",
)
class ActivationType:
    id: auto = strawberry_django.field(description="Stable id of this activation")
    attempts: auto = strawberry_django.field(description="How many times the server has tried the router so far")
    activated_at: auto = strawberry_django.field(
        description="When the router first confirmed the customer; null until ACTIVE"
    )
    expires_at: auto = strawberry_django.field(
        description="When the customer goes offline (later than the payment's packageExpiryTime when the router "
        "was reached late or a renewal extended it); null until known"
    )
    package: PackageType = strawberry_django.field(description="The package the grant gives (time, speed, data cap)")

    @strawberry_django.field(
        only=["access_code"],
        description="The hotspot login code: the customer types it, or the portal posts it to the hotspot, to get "
        "online (and on further devices up to the package's sharedUsers); null until one is made",
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

    @strawberry_django.field(only=["status"], description="Where the customer stands on the router")
    @without_database
    def status(self) -> ActivationStatus:
        return ActivationStatus(self.status)

    @strawberry_django.field(only=["source"], description="How the grant was obtained")
    @without_database
    def source(self) -> AccessSource:
        return AccessSource(self.source)
