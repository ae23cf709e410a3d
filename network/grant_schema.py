"""GraphQL for customers' time and who is online (extendAccess, revokeAccess, activeSessions,
disconnectSession). Operators only; thin resolvers over network.grants, mixed into NetworkQuery and
NetworkMutation (network/schema.py).

activeSessions and disconnectSession talk to the router while the operator waits (seconds when it is
slow): they run on the router I/O pool (``project.db_threads.router_io``), never on the thread every
request shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from graphql import GraphQLError

from network import grants
from project.db_threads import router_io
from project.errors import ApplicationError
from project.graphql_support import IsOperator, UserError, operator_principal

if TYPE_CHECKING:
    from network.schema import ActivationType

_ACTIVATION_ID = "One of the caller's access grants (`Activation.id`), of any source; else ACTIVATION_NOT_FOUND"
_REASON = "Why (1 to 500 characters, no control characters); kept in the audit log"
_ROUTER_ID = "One of the caller's routers (`Router.id`); else ROUTER_NOT_FOUND"
_ERRORS = "Empty on success; otherwise one entry per problem (every invalid argument at once, each naming its `field`)"

ActivationRef = Annotated["ActivationType", strawberry.lazy("network.schema")]


@strawberry.type(description="A device online on a router's hotspot now (a row of `/ip/hotspot/active`)")
class HotspotSession:
    user: str = strawberry.field(description="The hotspot user it logged in as: an access code for our grants")
    mac_address: str = strawberry.field(description="The device's MAC, `AA:BB:CC:DD:EE:FF`")
    ip_address: str | None = strawberry.field(description="The device's address on the hotspot network")
    uptime_seconds: int = strawberry.field(description="How long this session has been online, in seconds")
    bytes_in: int = strawberry.field(description="Bytes the router received from the device (its uploads)")
    bytes_out: int = strawberry.field(description="Bytes the router sent to the device (its downloads)")
    activation: ActivationRef | None = strawberry.field(
        description="Our grant whose access code the user is; null for a user not made by CloudPilot"
    )


@strawberry.type(description="extendAccess's and revokeAccess's result: the grant as it now is, or `errors`")
class AccessChangePayload:
    activation: ActivationRef | None = strawberry.field(
        default=None, description="The grant after the change; null when refused (nothing changed)"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=_ERRORS)


@strawberry.type(description="disconnectSession's result")
class DisconnectSessionPayload:
    mac_address: str | None = strawberry.field(
        default=None, description="The device logged off, as the router writes its MAC; null when refused"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=_ERRORS)


@strawberry.type
class GrantQuery:
    @strawberry.field(
        permission_classes=[IsOperator],
        description="Operator JWT only. Who is online on the router now, read live from it (user, MAC, IP, uptime, "
        "bytes), each joined to our grant. Throttled per operator with disconnectSession. Errors (top-level "
        "`extensions.code`): ROUTER_NOT_FOUND, ROUTER_UNREACHABLE (the router did not answer), ROUTER_NOT_ALLOWED, "
        "RATE_LIMITED, SERVICE_UNAVAILABLE",
    )
    async def active_sessions(
        self, info: strawberry.Info, router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)]
    ) -> list[HotspotSession]:
        try:
            devices = await router_io(grants.sessions_active)(
                operator=operator_principal(info).operator, router_id=router_id
            )
        except ApplicationError as error:
            raise GraphQLError(error.message, extensions={"code": error.code.value}) from None
        return [
            HotspotSession(
                user=device.user,
                mac_address=device.mac_address,
                ip_address=device.ip_address,
                uptime_seconds=device.uptime_seconds,
                bytes_in=device.bytes_in,
                bytes_out=device.bytes_out,
                activation=device.activation,  # type: ignore[arg-type]
            )
            for device in devices
        ]


@strawberry.type
class GrantMutation:
    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Give an ACTIVE grant more time (1 minute to 1 year): its expiry moves on "
        "and the router user's limit-uptime grows too (pushed in the background, retried while the router is "
        "down). Errors: ACTIVATION_NOT_FOUND, INVALID_INPUT (minutes, reason, a grant not ACTIVE, renewed since, or "
        "within two minutes of its end: grant new access instead)",
    )
    def extend_access(
        self,
        info: strawberry.Info,
        activation_id: Annotated[strawberry.ID, strawberry.argument(description=_ACTIVATION_ID)],
        minutes: Annotated[int, strawberry.argument(description="Minutes to add, 1 to 525600 (a year)")],
        reason: Annotated[str, strawberry.argument(description=_REASON)],
    ) -> AccessChangePayload:
        operator = operator_principal(info).operator
        try:
            activation = grants.grant_extend(
                operator=operator, actor=operator, activation_id=activation_id, minutes=minutes, reason=reason
            )
        except ApplicationError as error:
            return AccessChangePayload(errors=UserError.list_of(error))
        return AccessChangePayload(activation=activation)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. End a grant now (REVOKED): its code stops working at once (redeemCode, "
        "accessStatus), and every device using it is logged off the router and the hotspot user removed (in the "
        "background, retried while the router is down). Errors: ACTIVATION_NOT_FOUND, INVALID_INPUT (reason, a "
        "grant already ended)",
    )
    def revoke_access(
        self,
        info: strawberry.Info,
        activation_id: Annotated[strawberry.ID, strawberry.argument(description=_ACTIVATION_ID)],
        reason: Annotated[str, strawberry.argument(description=_REASON)],
    ) -> AccessChangePayload:
        operator = operator_principal(info).operator
        try:
            activation = grants.grant_revoke(
                operator=operator, actor=operator, activation_id=activation_id, reason=reason
            )
        except ApplicationError as error:
            return AccessChangePayload(errors=UserError.list_of(error))
        return AccessChangePayload(activation=activation)  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Log one device off the router now (`/ip/hotspot/active/remove`, and its "
        "MAC cookie). Its code keeps working (revokeAccess ends a code). Throttled per operator with "
        "activeSessions. Errors: ROUTER_NOT_FOUND, INVALID_MAC, INVALID_INPUT (no device with that MAC online), "
        "ROUTER_UNREACHABLE, ROUTER_NOT_ALLOWED, RATE_LIMITED, SERVICE_UNAVAILABLE",
    )
    async def disconnect_session(
        self,
        info: strawberry.Info,
        router_id: Annotated[strawberry.ID, strawberry.argument(description=_ROUTER_ID)],
        mac_address: Annotated[
            str,
            strawberry.argument(
                description="The device's MAC: `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` or `AABBCCDDEEFF`"
            ),
        ],
    ) -> DisconnectSessionPayload:
        operator = operator_principal(info).operator
        try:
            mac = await router_io(grants.session_disconnect)(
                operator=operator, actor=operator, router_id=router_id, mac_address=mac_address
            )
        except ApplicationError as error:
            return DisconnectSessionPayload(errors=UserError.list_of(error))
        return DisconnectSessionPayload(mac_address=mac)
