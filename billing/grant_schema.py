"""GraphQL for manual grants (grantAccess). Operators only; a thin resolver over billing.manual_grants,
mixed into BillingMutation (billing/schema.py)."""

from __future__ import annotations

from typing import Annotated

import strawberry
import strawberry_django

from billing import manual_grants
from network.schema import ActivationType
from project.errors import ApplicationError
from project.graphql_support import IsOperator, UserError, operator_principal


@strawberry.input(
    description="A manual access grant: a cash sale, goodwill, or money that arrived after a payment failed"
)
class GrantAccessInput:
    router_id: strawberry.ID = strawberry.field(
        description="One of the caller's routers (`Router.id`); else ROUTER_NOT_FOUND"
    )
    package_id: strawberry.ID = strawberry.field(
        description="A package of that router (on sale or not) whose time, speed and data cap the grant gives; "
        "else PACKAGE_NOT_FOUND"
    )
    reason: str = strawberry.field(
        description="Why (1 to 500 characters, no control characters), e.g. `Cash sale`; kept on the grant and in "
        "the audit log"
    )
    phone_number: str | None = strawberry.field(
        default=None, description="The customer's phone, as for payments (`0712345678`, `+254712345678`); optional"
    )
    mac_address: str | None = strawberry.field(
        default=None,
        description="The device to log in: its MAC (`AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` or `AABBCCDDEEFF`). "
        "With `ipAddress` the router logs it in by itself; without, the customer types the access code",
    )
    ip_address: str | None = strawberry.field(
        default=None, description="The device's IPv4 or IPv6 address on the hotspot; optional"
    )
    payment_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A settled payment of the caller on that router that has no grant (typically FAILED and "
        "`paidAfterFailure`): the grant is linked to it, at most one grant per payment. Unknown or foreign: "
        "PAYMENT_NOT_FOUND; already granted or still in progress: INVALID_INPUT",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Up to 128 characters: the same key with the same input returns the grant already made (a "
        "double click grants once); with a different input, IDEMPOTENCY_MISMATCH",
    )


@strawberry.type(description="grantAccess's result: the new grant, or `errors` saying why not")
class GrantAccessPayload:
    activation: ActivationType | None = strawberry.field(
        default=None,
        description="The grant (source MANUAL) with its access code once drawn: PENDING while the server puts it "
        "on the router, then ACTIVE. Null when refused (nothing changed)",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Empty on success; otherwise one entry per problem (every invalid field at once, each naming "
        "its `field`): ROUTER_NOT_FOUND, PACKAGE_NOT_FOUND, PAYMENT_NOT_FOUND, INVALID_PHONE, INVALID_MAC, "
        "INVALID_IP, INVALID_INPUT, IDEMPOTENCY_MISMATCH",
    )


@strawberry.type
class ManualGrantMutation:
    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Give a customer a package's time by hand (source MANUAL), through the same "
        "path as payments and vouchers: the server puts it on the router in the background and retries",
    )
    def grant_access(
        self,
        info: strawberry.Info,
        input: Annotated[GrantAccessInput, strawberry.argument(description="The grant")],
    ) -> GrantAccessPayload:
        operator = operator_principal(info).operator
        try:
            activation = manual_grants.grant_access(
                operator=operator,
                actor=operator,
                data=manual_grants.GrantInput(
                    router_id=input.router_id,
                    package_id=input.package_id,
                    reason=input.reason,
                    phone_number=input.phone_number,
                    mac_address=input.mac_address,
                    ip_address=input.ip_address,
                    payment_id=input.payment_id,
                    idempotency_key=input.idempotency_key,
                ),
            )
        except ApplicationError as error:
            return GrantAccessPayload(errors=UserError.list_of(error))
        return GrantAccessPayload(activation=activation)  # type: ignore[arg-type]
