"""GraphQL for vouchers sold for cash: batches, their stock and sheet, revocation. Operators only.

Mixed into BillingQuery/BillingMutation (billing/schema.py); thin resolvers over billing.vouchers.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
import strawberry_django
from django.conf import settings
from django.utils import timezone
from strawberry import auto

from billing import models, vouchers
from network.schema import ActivationType, PackageType
from project.errors import ApplicationError
from project.graphql_support import IsOperator, UserError, operator_principal, request_of, without_database

_ERRORS = (
    "Empty on success; otherwise one entry per problem (every invalid input field at once, each naming its `field`)"
)


@strawberry.enum(description="Where a voucher stands")
class VoucherStatus(enum.Enum):
    UNUSED = strawberry.enum_value("UNUSED", description="For sale: not yet redeemed, revoked or expired")
    REDEEMED = strawberry.enum_value(
        "REDEEMED", description="A customer redeemed it: its code is now the access code of `activation`"
    )
    REVOKED = strawberry.enum_value(
        "REVOKED", description="The operator withdrew it (revokeVoucher): it no longer redeems"
    )
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="Never redeemed and its batch's `validUntil` has passed: it no longer redeems"
    )


@strawberry_django.type(models.Voucher, name="Voucher", description="One printed code of a voucher batch")
class VoucherType:
    id: auto = strawberry_django.field(description="Stable id; the `id` of revokeVoucher")
    code: str = strawberry_django.field(
        description="The code customers type: 12 characters of `23456789ABCDEFGHJKLMNPQRSTUVWXYZ` (printed in "
        "groups of four, `ABCD-EFGH-JKLM`; customers may type it with dashes, spaces or in lower case)"
    )
    redeemed_at: datetime | None = strawberry_django.field(description="When a customer redeemed it; null until then")
    activation: ActivationType | None = strawberry_django.field(
        description="The access grant its redemption made (source VOUCHER); null until redeemed"
    )

    @strawberry_django.field(
        only=["status", "batch__valid_until"],
        select_related=["batch"],
        description="UNUSED, REDEEMED, REVOKED, or EXPIRED (unused past the batch's `validUntil`)",
    )
    @without_database
    def status(self, info: strawberry.Info) -> VoucherStatus:
        return VoucherStatus(self.status_at(timezone.now()))


@strawberry_django.type(
    models.VoucherBatch,
    name="VoucherBatch",
    description="Vouchers printed together for cash sale: one package, its price when the batch was made",
)
class VoucherBatchType:
    id: auto = strawberry_django.field(description="Stable id; the `id` of voucherBatch")
    package: PackageType = strawberry_django.field(description="What each voucher gives (time, speed, data, devices)")
    price: Decimal = strawberry_django.field(
        description="The package's price in KES when the batch was made: what each voucher sells for, and what "
        "revenue counts when one is redeemed, whatever the package costs later"
    )
    count: int = strawberry_django.field(description="How many vouchers the batch was made with")
    note: str = strawberry_django.field(description="The operator's note (e.g. who sells them); empty when none")
    created_at: datetime = strawberry_django.field(description="When the batch was made")
    valid_until: datetime | None = strawberry_django.field(
        description="After this instant unused vouchers no longer redeem (they read EXPIRED); null: no end"
    )
    vouchers: list[VoucherType] = strawberry_django.field(description="Every voucher of the batch, in order")
    unused_count: int = strawberry_django.field(description="Vouchers still for sale")
    redeemed_count: int = strawberry_django.field(description="Vouchers customers have redeemed")
    revoked_count: int = strawberry_django.field(description="Vouchers the operator revoked")
    expired_count: int = strawberry_django.field(description="Unused vouchers past `validUntil`")

    @strawberry_django.field(
        only=["id"],
        description="An absolute link to the printable sheet (A4; `?paper=80mm` or `58mm` for thermal rolls; "
        "`?all=1` prints used ones too), signed for this batch and valid 10 minutes: read it again for a fresh "
        "one. Whoever holds it can print the codes: do not share it",
    )
    @without_database
    def print_url(self, info: strawberry.Info) -> str:
        path = vouchers.sheet_path(self)
        request = request_of(info)
        return request.build_absolute_uri(path) if request is not None else settings.SERVER_URL + path


@strawberry.input(description="A batch of vouchers to make (createVoucherBatch)")
class CreateVoucherBatchInput:
    package_id: strawberry.ID = strawberry.field(
        description="One of the operator's active packages (`Package.id`), else PACKAGE_NOT_FOUND"
    )
    count: int = strawberry.field(description=f"How many vouchers, 1 to {vouchers.MAX_BATCH_SIZE}")
    note: str | None = strawberry.field(
        default=None,
        description=f"Optional, for the operator (e.g. who sells them): at most {vouchers.NOTE_MAX_LENGTH} "
        "characters, no control characters",
    )
    valid_until: datetime | None = strawberry.field(
        default=None, description="Optional: unused vouchers stop redeeming at this instant; must be in the future"
    )


@strawberry.type(description="createVoucherBatch's result: the new batch, or `errors` saying why not")
class CreateVoucherBatchPayload:
    batch: VoucherBatchType | None = strawberry.field(
        default=None, description="The batch with its vouchers and `printUrl`; null when refused (nothing made)"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description=f"{_ERRORS}. PACKAGE_NOT_FOUND, INVALID_INPUT (count, note, validUntil)",
    )


@strawberry.type(description="revokeVoucher's result: the voucher as it now is, or `errors` saying why not")
class RevokeVoucherPayload:
    voucher: VoucherType | None = strawberry.field(
        default=None,
        description="The voucher, REVOKED (or EXPIRED: it no longer redeems either way); null when refused",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="VOUCHER_NOT_FOUND (unknown or not the operator's); INVALID_INPUT for a redeemed voucher (its "
        "customer's time is a running grant: end that instead). Revoking a revoked voucher again is no error",
    )


_BATCH_ID = Annotated[strawberry.ID, strawberry.argument(description="The batch's id (`VoucherBatch.id`)")]
_VOUCHER_ID = Annotated[strawberry.ID, strawberry.argument(description="The voucher's id (`Voucher.id`)")]


@strawberry.type
class VoucherQuery:
    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="Operator JWT only. The operator's voucher batches, newest first, with their stock",
    )
    def voucher_batches(self, info: strawberry.Info) -> list[VoucherBatchType]:
        return vouchers.voucher_batches_for(operator_principal(info).operator)  # type: ignore[return-value]

    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="Operator JWT only. One of the operator's voucher batches; null when unknown or not theirs",
    )
    def voucher_batch(self, info: strawberry.Info, id: _BATCH_ID) -> VoucherBatchType | None:
        return vouchers.voucher_batch_find_for(  # type: ignore[return-value]
            operator=operator_principal(info).operator, batch_id=id
        )


@strawberry.type
class VoucherMutation:
    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Make 1 to 1000 vouchers for one of the operator's active packages, at its "
        "current price, each with a fresh 12-character code unique on the package's router; print them from "
        "`batch.printUrl`. Errors: PACKAGE_NOT_FOUND, INVALID_INPUT",
    )
    def create_voucher_batch(
        self,
        info: strawberry.Info,
        input: Annotated[CreateVoucherBatchInput, strawberry.argument(description="The batch")],
    ) -> CreateVoucherBatchPayload:
        operator = operator_principal(info).operator
        try:
            batch = vouchers.voucher_batch_create(
                operator=operator,
                data=vouchers.VoucherBatchInput(
                    package_id=input.package_id, count=input.count, note=input.note, valid_until=input.valid_until
                ),
            )
        except ApplicationError as error:
            return CreateVoucherBatchPayload(errors=UserError.list_of(error))
        # Read back with its stock, as voucherBatch gives it.
        created = vouchers.voucher_batch_find_for(operator=operator, batch_id=batch.pk).get()
        return CreateVoucherBatchPayload(batch=created)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Withdraw an unused voucher: it no longer redeems (CODE_INVALID). Errors: "
        "VOUCHER_NOT_FOUND; INVALID_INPUT for a redeemed one",
    )
    def revoke_voucher(self, info: strawberry.Info, id: _VOUCHER_ID) -> RevokeVoucherPayload:
        try:
            voucher = vouchers.voucher_revoke(operator=operator_principal(info).operator, voucher_id=id)
        except ApplicationError as error:
            return RevokeVoucherPayload(errors=UserError.list_of(error))
        return RevokeVoucherPayload(voucher=voucher)  # type: ignore[arg-type]
