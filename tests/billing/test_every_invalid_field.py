"""Issue 10, item 5: payment and credential mutations report every invalid field at once (API.md "Errors").

Router and package are looked up first and stop validation (the amount is checked against the
package); then every field is reported together, before credentials and before any gateway call.
"""

from __future__ import annotations

import pytest

from billing.models import Payment, PaymentCredential
from tests.documents import CREATE_LINK, INITIATE

pytestmark = pytest.mark.django_db

ADD_CREDENTIAL = """mutation($input: AddPaymentCredentialInput!) { addPaymentCredential(input: $input) {
  credential { id } errors { field code message } } }"""

FOUR_BAD_FIELDS = {"phoneNumber": "0812345678", "amount": "20.00", "macAddress": "AA:BB:CC", "ipAddress": "10.0.0.300"}
FOUR_ERRORS = [
    {"field": "phoneNumber", "code": "INVALID_PHONE", "message": "Invalid phone number format"},
    {"field": "amount", "code": "AMOUNT_MISMATCH", "message": "Amount must match package price: 25.00 KES"},
    {"field": "macAddress", "code": "INVALID_MAC", "message": "Invalid MAC address format"},
    {"field": "ipAddress", "code": "INVALID_IP", "message": "Invalid IP address format"},
]


def initiate(gql, shop, auth: dict, **overrides) -> dict:
    return gql(INITIATE, {"input": shop.payment_input(**overrides)}, **auth)["data"]["initiatePayment"]


def create_link(gql, shop, auth: dict, **overrides) -> dict:
    return gql(CREATE_LINK, {"input": shop.payment_input(**overrides)}, **auth)["data"]["createPaymentLink"]


def nothing_written_or_sent(shop) -> None:
    assert not Payment.objects.exists()
    assert shop.intasend.requests == []


def test_initiate_reports_phone_amount_mac_and_ip_together(gql, shop):
    result = initiate(gql, shop, shop.operator.portal, **FOUR_BAD_FIELDS)
    assert result["payment"] is None
    assert result["errors"] == FOUR_ERRORS
    nothing_written_or_sent(shop)


def test_a_short_portal_idempotency_key_is_reported_with_the_other_fields(gql, shop):
    result = initiate(gql, shop, shop.operator.portal, idempotencyKey="too-short", **FOUR_BAD_FIELDS)
    assert [e["field"] for e in result["errors"]] == [
        "phoneNumber",
        "amount",
        "macAddress",
        "ipAddress",
        "idempotencyKey",
    ]
    nothing_written_or_sent(shop)


def test_an_unparsable_amount_is_one_error_not_also_a_mismatch(gql, shop):
    result = initiate(gql, shop, shop.operator.auth, amount="NaN", phoneNumber="nope")
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("phoneNumber", "INVALID_PHONE"),
        ("amount", "INVALID_INPUT"),
    ]
    nothing_written_or_sent(shop)


def test_router_and_package_stop_validation_before_the_fields(gql, shop):
    result = initiate(gql, shop, shop.operator.auth, routerId="999999", packageId="999999", **FOUR_BAD_FIELDS)
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("routerId", "ROUTER_NOT_FOUND")]
    result = initiate(gql, shop, shop.operator.auth, packageId="999999", **FOUR_BAD_FIELDS)
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("packageId", "PACKAGE_NOT_FOUND")]
    nothing_written_or_sent(shop)


def test_fields_are_reported_before_missing_credentials(gql, shop):
    shop.credential.is_active = False
    shop.credential.save()
    result = initiate(gql, shop, shop.operator.auth, **FOUR_BAD_FIELDS)
    assert result["errors"] == FOUR_ERRORS
    result = initiate(gql, shop, shop.operator.auth)
    assert [e["code"] for e in result["errors"]] == ["NO_CREDENTIALS"]
    nothing_written_or_sent(shop)


def test_one_bad_payment_field_is_one_error(gql, shop):
    for field, value in FOUR_BAD_FIELDS.items():
        result = initiate(gql, shop, shop.operator.portal, **{field: value})
        assert [e["field"] for e in result["errors"]] == [field], result["errors"]
    nothing_written_or_sent(shop)


def test_payment_link_reports_every_bad_field(gql, shop):
    bad = {"amount": "24", "macAddress": "nope", "ipAddress": "::g", "paymentMethod": "bitcoin"}
    result = create_link(gql, shop, shop.operator.portal, phoneNumber="", **bad)
    assert result["payment"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("amount", "AMOUNT_MISMATCH"),
        ("macAddress", "INVALID_MAC"),
        ("ipAddress", "INVALID_IP"),
        ("paymentMethod", "INVALID_INPUT"),
    ]
    nothing_written_or_sent(shop)


def test_add_payment_credential_reports_both_missing_keys(gql, operator):
    result = gql(
        ADD_CREDENTIAL,
        {"input": {"apiKey": " ", "privateKey": "", "environment": "SANDBOX"}},
        **operator.auth,
    )["data"]["addPaymentCredential"]
    assert result["credential"] is None
    assert result["errors"] == [
        {"field": "apiKey", "code": "INVALID_INPUT", "message": "apiKey is required"},
        {"field": "privateKey", "code": "INVALID_INPUT", "message": "privateKey is required"},
    ]
    assert not PaymentCredential.objects.exists()
