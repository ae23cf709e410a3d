"""GraphQL for the operator's money: revenueReport and its CSV link. Operators only.

Mixed into BillingQuery (billing/schema.py); thin resolvers over billing.revenue.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
import strawberry_django
from django.conf import settings
from graphql import GraphQLError

from billing import revenue
from project.errors import ApplicationError
from project.graphql_support import IsOperator, operator_principal, request_of


@strawberry.enum(description="What a revenue report's rows are: one per day, month, router or package")
class RevenueGroupBy(enum.Enum):
    DAY = strawberry.enum_value("DAY", description="Days of the operator's time zone; key `YYYY-MM-DD`")
    MONTH = strawberry.enum_value("MONTH", description="Calendar months of the operator's time zone; key `YYYY-MM`")
    ROUTER = strawberry.enum_value("ROUTER", description="Routers; key the router's id, label its name")
    PACKAGE = strawberry.enum_value("PACKAGE", description="Packages; key the package's id, label its name")


@strawberry.input(description="Which money a revenue report covers, and how its rows are grouped")
class RevenueReportInput:
    from_: date = strawberry.field(
        name="from", description="The first day, in the operator's time zone (`Operator.timeZone`), inclusive"
    )
    to: date = strawberry.field(
        description=f"The last day, inclusive; not before `from`, at most {revenue.MAX_DAYS} days after it counted "
        "with both ends"
    )
    group_by: RevenueGroupBy = strawberry.field(
        default=RevenueGroupBy.DAY,
        description="DAY (key `YYYY-MM-DD`), MONTH (`YYYY-MM`), ROUTER or PACKAGE (key: its id, label: its name)",
    )
    router_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this router's money (a deleted router's too); else ROUTER_NOT_FOUND"
    )

    def as_data(self) -> revenue.ReportInput:
        return revenue.ReportInput(
            start=self.from_, end=self.to, group_by=revenue.GroupBy(self.group_by.value), router_id=self.router_id
        )


@strawberry.type(description="One group of a revenue report's completed payments")
class RevenueRow:
    key: str = strawberry.field(description="`YYYY-MM-DD`, `YYYY-MM`, or the router's or package's id")
    label: str = strawberry.field(description="What to show: the day or month, or the router's or package's name")
    amount: Decimal = strawberry.field(description="What the group's completed payments brought, in `currency`")
    count: int = strawberry.field(description="How many completed payments")


@strawberry.type(
    name="RevenueReport",
    description="The operator's money over a range of days. Payments count on the day they completed, vouchers on "
    "the day they were redeemed, paid-after-failure money on the day IntaSend confirmed it",
)
class RevenueReportType:
    currency: str = strawberry.field(description="Every amount's currency: KES")
    total_amount: Decimal = strawberry.field(
        description="What completed payments brought (what customers paid): the sum of `rows`' amounts"
    )
    count: int = strawberry.field(description="How many payments completed: the sum of `rows`' counts")
    charges: Decimal = strawberry.field(
        description="IntaSend's charges on those payments, where IntaSend reported them (0 where it did not)"
    )
    net: Decimal = strawberry.field(
        description="What the operator receives of `totalAmount`: IntaSend's net where reported, else the amount"
    )
    voucher_amount: Decimal = strawberry.field(
        description="Vouchers redeemed, each at its batch's price (cash collected by the seller; not in `rows`)"
    )
    paid_after_failure_amount: Decimal = strawberry.field(
        description="Money IntaSend confirmed for payments that had already failed here (to refund or grant by "
        "hand; not in `rows`)"
    )
    rows: list[RevenueRow] = strawberry.field(
        description="Completed payments per day, month, router or package, ordered by `key`; groups without "
        "payments are left out"
    )

    @classmethod
    def of(cls, report: revenue.Report) -> RevenueReportType:
        return cls(
            currency=report.currency,
            total_amount=report.total_amount,
            count=report.count,
            charges=report.charges,
            net=report.net,
            voucher_amount=report.voucher_amount,
            paid_after_failure_amount=report.paid_after_failure_amount,
            rows=[RevenueRow(key=row.key, label=row.label, amount=row.amount, count=row.count) for row in report.rows],
        )


def _refused(error: ApplicationError) -> GraphQLError:
    """A query has no payload: every invalid field goes in the error's `extensions.errors` at once."""
    failures = error.errors
    return GraphQLError(
        "; ".join(failure.message for failure in failures),
        extensions={
            "code": failures[0].code.value,
            "errors": [
                {"field": failure.field, "code": failure.code.value, "message": failure.message} for failure in failures
            ],
        },
    )


_INPUT = Annotated[RevenueReportInput, strawberry.argument(description="The days, grouping and router")]
_REFUSALS = (
    "Refused with a top-level error whose `extensions.errors` lists every invalid field at once "
    "(`{field code message}`): INVALID_INPUT (`to` before `from`, a range over "
    f"{revenue.MAX_DAYS} days), ROUTER_NOT_FOUND (routerId unknown or not the operator's)"
)


@strawberry.type
class RevenueQuery:
    @strawberry_django.field(
        permission_classes=[IsOperator],
        description=f"Operator JWT only. The operator's money over days of their time zone. {_REFUSALS}",
    )
    def revenue_report(self, info: strawberry.Info, input: _INPUT) -> RevenueReportType:
        try:
            report = revenue.revenue_report(operator=operator_principal(info).operator, data=input.as_data())
        except ApplicationError as error:
            raise _refused(error) from None
        return RevenueReportType.of(report)

    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="Operator JWT only. An absolute link to the same report's rows and totals as CSV (cells that "
        "could run as spreadsheet formulas are quoted), signed for this report and valid 10 minutes: ask again "
        f"for a fresh one. Whoever holds it can read the figures: do not share it. {_REFUSALS}",
    )
    def revenue_report_csv_url(self, info: strawberry.Info, input: _INPUT) -> str:
        try:
            path = revenue.csv_path(operator=operator_principal(info).operator, data=input.as_data())
        except ApplicationError as error:
            raise _refused(error) from None
        request = request_of(info)
        return request.build_absolute_uri(path) if request is not None else settings.SERVER_URL + path
