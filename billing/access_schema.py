"""GraphQL for the portal's code box (redeemCode, accessStatus): thin async resolvers over billing.access.

They are async because redeeming may talk to the router (seconds when it is slow) and may wait for a
turn while the router is slowed (billing.access): both happen on a pool of their own
(``project.db_threads.router_io``) or as an asyncio sleep, never on the thread every request shares.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime
from typing import Annotated

import strawberry

from billing import access
from network.schema import ActivationStatus, ActivationType, PackageType
from project.db_threads import router_io
from project.errors import ApplicationError
from project.graphql_support import IsOperatorOrPortal, UserError, client_ip_of, operator_principal
from project.http_concurrency import released

_CODE_FORMS = "Upper or lower case, with or without the spaces and dashes of the printed groups (`ABCD-EFGH-JKLM`)"
_ROUTER = "The router (hotspot) the device is on (`Router.id`); not the caller's: ROUTER_NOT_FOUND"


@strawberry.enum(description="What a code typed in the portal turned out to be")
class CodeKind(enum.Enum):
    VOUCHER = strawberry.enum_value(
        "VOUCHER", description="An unused voucher (12 characters), redeemed now into a new grant"
    )
    ACCESS_CODE = strawberry.enum_value(
        "ACCESS_CODE",
        description="The access code of an existing grant (8 characters, or a voucher redeemed before): this "
        "device joins it while device slots remain",
    )
    MPESA_RECEIPT = strawberry.enum_value(
        "MPESA_RECEIPT",
        description="The M-Pesa receipt (10 characters, e.g. `SGR7K3L2QX`) of a completed payment on this router: "
        "this device joins the grant it bought",
    )


@strawberry.input(description="A code the customer typed in the portal, and the device to put online")
class RedeemCodeInput:
    router_id: strawberry.ID = strawberry.field(description=_ROUTER)
    code: str = strawberry.field(
        description=f"A voucher, an access code or an M-Pesa receipt. {_CODE_FORMS}. Anything else, another "
        "router's code or a revoked one: CODE_INVALID (one answer for all)"
    )
    mac_address: str | None = strawberry.field(
        default=None,
        description="The device's MAC as the hotspot gives it (`$(mac)`): `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` "
        "or `AABBCCDDEEFF`. Required: missing or malformed is INVALID_MAC",
    )
    ip_address: str | None = strawberry.field(
        default=None,
        description="The device's IPv4 or IPv6 address as the hotspot gives it (`$(ip)`), when it does: the router "
        "needs it to log the device in by itself (without it the customer types the code on the hotspot's login "
        "page). Malformed: INVALID_IP",
    )


@strawberry.type(description="redeemCode's result: what the code was and the grant it gets the device online with")
class RedeemCodePayload:
    kind: CodeKind | None = strawberry.field(
        default=None, description="What the code was; null when the code was refused"
    )
    activation: ActivationType | None = strawberry.field(
        default=None,
        description="The grant, with its `accessCode` (this caller proved it by the code it typed): PENDING while "
        "the server puts it on the router (poll accessStatus with `accessCode` until ACTIVE), ACTIVE when this "
        "device is online or may log in with the code. Also given with ROUTER_UNREACHABLE; null with other errors",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Empty on success. CODE_INVALID, CODE_EXPIRED (both count towards the throttle), "
        "DEVICE_LIMIT_REACHED (every device slot of the code is online), ROUTER_NOT_FOUND, INVALID_MAC, INVALID_IP, "
        "RATE_LIMITED (too many wrong codes from this device, or the hotspot is busy with codes: try again), "
        "ROUTER_UNREACHABLE (the code is good and `activation` is given, but the router did not answer: type the "
        "code on the hotspot's login page or try again), SERVICE_UNAVAILABLE",
    )


@strawberry.type(
    name="AccessStatus",
    description="Where the grant of a code the caller holds stands: what a returning device shows as "
    '"connected until …". The fields are null when `errors` is not empty',
)
class AccessStatusPayload:
    status: ActivationStatus | None = strawberry.field(
        default=None, description="PENDING (being put on the router), ACTIVE, or FAILED (retried by itself)"
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the time runs out (ISO 8601, UTC); show it in the portal's time zone"
    )
    package: PackageType | None = strawberry.field(default=None, description="The package the grant gives")
    devices_allowed: int | None = strawberry.field(
        default=None, description="How many devices may be online at once with the code (the package's sharedUsers)"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Empty on success. CODE_INVALID (unknown, revoked, another router's, or a voucher not "
        "redeemed yet), CODE_EXPIRED, ROUTER_NOT_FOUND, RATE_LIMITED, SERVICE_UNAVAILABLE",
    )


@strawberry.type
class AccessQuery:
    @strawberry.field(
        permission_classes=[IsOperatorOrPortal],
        description="X-Public-Key (or an operator JWT): where the grant of a code the device holds stands (an "
        "access code, a redeemed voucher's code, or the M-Pesa receipt of a completed payment on this router), "
        "from the database only, never by MAC. The portal polls it after redeemCode until ACTIVE. Failures are "
        "throttled with redeemCode's per-router budget",
    )
    async def access_status(
        self,
        info: strawberry.Info,
        router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER)],
        code: Annotated[str, strawberry.argument(description=f"The code the device holds. {_CODE_FORMS}")],
    ) -> AccessStatusPayload:
        try:
            attempt = await router_io(access.code_attempt_begin)(
                operator=operator_principal(info).operator,
                router_id=router_id,
                code=code,
                client_ip=client_ip_of(info),
                needs_device=False,
            )
            async with released():  # a turn's wait holds no thread or connection
                await asyncio.sleep(attempt.wait_seconds)
            grant = await router_io(access.access_status)(attempt=attempt)
        except ApplicationError as error:
            return AccessStatusPayload(errors=UserError.list_of(error))
        return AccessStatusPayload(
            status=ActivationStatus(grant.status),
            expires_at=grant.expires_at,
            package=grant.package,  # type: ignore[arg-type]
            devices_allowed=grant.package.shared_users,
        )


@strawberry.type
class AccessMutation:
    @strawberry.mutation(
        permission_classes=[IsOperatorOrPortal],
        description="X-Public-Key (or an operator JWT): the portal's one code box. A voucher (redeemed exactly "
        "once, even when typed on several devices at once: the others join its grant), an access code or the "
        "M-Pesa receipt of a completed payment on this router gets this device online while the grant has a free "
        "device slot. A fresh voucher's grant comes back PENDING and the server puts it on the router and logs "
        "this device in within moments: poll accessStatus with its `accessCode` until ACTIVE (no waiting here). "
        "No router is asked anything before the code is known good; wrong and ended codes are throttled per "
        "device (RATE_LIMITED) and slowed, never locked, per router",
    )
    async def redeem_code(
        self,
        info: strawberry.Info,
        input: Annotated[RedeemCodeInput, strawberry.argument(description="The code and the device")],
    ) -> RedeemCodePayload:
        try:
            attempt = await router_io(access.code_attempt_begin)(
                operator=operator_principal(info).operator,
                router_id=input.router_id,
                code=input.code,
                mac_address=input.mac_address,
                ip_address=input.ip_address,
                client_ip=client_ip_of(info),
            )
            async with released():  # a turn's wait holds no thread or connection
                await asyncio.sleep(attempt.wait_seconds)
            redemption = await router_io(access.code_redeem)(attempt=attempt)
        except ApplicationError as error:
            return RedeemCodePayload(errors=UserError.list_of(error))
        return RedeemCodePayload(
            kind=CodeKind(redemption.kind.value),
            activation=redemption.activation,  # type: ignore[arg-type]
            errors=UserError.list_of(redemption.error) if redemption.error else [],
        )
