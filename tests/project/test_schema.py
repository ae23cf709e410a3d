"""The committed SDL, the GraphQL protections, and query counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from strawberry.printer import print_schema

from project.schema import build_schema, schema
from tests.documents import INITIATE, PAYMENTS

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_is_current():
    assert SCHEMA_FILE.read_text().strip() == print_schema(schema).strip(), (
        "schema.graphql is stale: run `python manage.py export_schema project.schema:schema --path schema.graphql`"
    )


@pytest.mark.django_db
def test_payments_costs_a_constant_number_of_queries(gql, shop, django_assert_max_num_queries):
    made = iter(range(100))

    def make_payments(count: int) -> None:
        for _ in range(count):
            phone = f"07110000{next(made):02d}"
            result = gql(INITIATE, {"input": shop.payment_input(phoneNumber=phone)}, **shop.operator.auth)["data"][
                "initiatePayment"
            ]
            assert result["errors"] == []

    def count_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            body = gql(PAYMENTS, {"pagination": {"limit": 50}}, **shop.operator.auth)
        assert "errors" not in body
        return len(captured), len(body["data"]["payments"]["results"])

    make_payments(2)
    few, listed_few = count_queries()
    make_payments(8)
    many, listed_many = count_queries()
    assert (listed_few, listed_many) == (2, 10)
    assert many == few, f"payments query count grew with rows: {few} → {many}"
    assert many <= 6


@pytest.mark.django_db
def test_payments_filters_and_pagination(gql, shop):
    for phone in ("0711000001", "0711000002", "0711000003"):
        gql(INITIATE, {"input": shop.payment_input(phoneNumber=phone)}, **shop.operator.auth)
    shop.intasend.fail_next("mpesa-stk-push/", status=400)  # refused: FAILED (a 5xx stays PROCESSING)
    gql(INITIATE, {"input": shop.payment_input(phoneNumber="0711000004")}, **shop.operator.auth)

    def ids(**variables):
        data = gql(PAYMENTS, variables, **shop.operator.auth)["data"]["payments"]
        return data["totalCount"], [p["phoneNumber"] for p in data["results"]]

    assert ids() == (4, ["254711000004", "254711000003", "254711000002", "254711000001"])  # newest first
    assert ids(filters={"status": "FAILED"}) == (1, ["254711000004"])
    assert ids(filters={"phoneNumber": "+254 711 000 002"}) == (1, ["254711000002"])
    assert ids(filters={"routerId": str(shop.router.pk), "status": "PROCESSING"})[0] == 3
    assert ids(filters={"routerId": "424242"}) == (0, [])
    assert ids(pagination={"offset": 1, "limit": 2}) == (4, ["254711000003", "254711000002"])


@pytest.mark.django_db
def test_depth_alias_and_token_limits(gql, operator):
    deep = "{ payments { results { package { router { id } } router { id } } } }"
    assert "errors" not in gql(deep, **operator.auth)
    too_deep = '{ payment(id: "00000000-0000-0000-0000-000000000000") { package { router { id } } } }'
    assert "errors" not in gql(too_deep, **operator.auth)
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(20)) + " }"
    body = gql(aliases, **operator.auth)
    assert body["data"] is None and "aliases" in body["errors"][0]["message"].lower()
    huge = "{ me { " + " ".join(["id"] * 3000) + " } }"
    body = gql(huge, **operator.auth)
    assert body["data"] is None and "token" in body["errors"][0]["message"].lower()


def test_production_schema_hides_introspection_and_suggestions():
    production = build_schema(debug=False)
    result = production.execute_sync("{ __schema { types { name } } }")
    assert result.errors and "introspection" in result.errors[0].message.lower()
    typo = production.execute_sync("{ paymnts { totalCount } }")
    assert typo.errors and "Did you mean" not in typo.errors[0].message
    debug = build_schema(debug=True)
    assert "Did you mean" in debug.execute_sync("{ paymnts { totalCount } }").errors[0].message


@pytest.mark.django_db
def test_unexpected_exceptions_are_masked_but_auth_messages_kept(gql, operator, monkeypatch):
    from billing import selectors

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(selectors, "credentials_for", explode)
    body = gql("{ paymentCredentials { id } }", **operator.auth)
    assert body["errors"][0]["message"] == "Internal server error"
    assert "secret internal detail" not in repr(body)
    unauthenticated = gql("{ paymentCredentials { id } }")
    assert "Authentication required" in unauthenticated["errors"][0]["message"]


@pytest.mark.django_db
def test_negative_pagination_offset_is_a_clear_error(gql, operator):
    body = gql(PAYMENTS, {"pagination": {"offset": -5, "limit": 2}}, **operator.auth)
    assert body["errors"][0]["message"] == "pagination.offset must not be negative"
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_the_document_limits_hold_nothing_around_a_running_operation():
    """A subscription holds every operation and execution hook while it stays open (issue 14 item 4):
    the limits act in the parse and validation steps only."""
    from strawberry.extensions.context import ExecutingContextManager, OperationContextManager

    extensions = schema.get_extensions()
    held = OperationContextManager(extensions).hooks + ExecutingContextManager(extensions).hooks
    assert sorted(type(hook.extension).__name__ for hook in held) == [
        "DjangoOptimizerExtension",
        "_MaskUnexpectedErrors",
    ]
