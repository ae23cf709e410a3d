"""Operator A can never see or touch operator B's things, by token or by public key."""

from __future__ import annotations

import pytest

from billing.models import Payment
from tests.documents import CHECK_STATUS, INITIATE, PAYMENT, PAYMENTS

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs_payment(gql, shop, other_operator):
    """Bob has his own router, package, credential and a payment."""
    from tests.conftest import OTHER_PUBLIC_KEY, OTHER_SECRET_KEY

    router = other_operator.add_router(name="Bob's")
    package = other_operator.add_package(router)
    other_operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)
    result = gql(
        INITIATE,
        {
            "input": {
                "routerId": str(router.pk),
                "packageId": str(package.pk),
                "phoneNumber": "0799000111",
                "amount": "25.00",
            }
        },
        **other_operator.auth,
    )["data"]["initiatePayment"]
    assert result["errors"] == []
    return {"router": router, "package": package, "payment_id": result["payment"]["id"]}


@pytest.mark.parametrize("credentials", ["token", "public_key"])
def test_cannot_pay_on_another_operators_router(gql, shop, bobs_payment, credentials):
    auth = shop.operator.auth if credentials == "token" else shop.operator.portal
    result = gql(
        INITIATE,
        {
            "input": shop.payment_input(
                routerId=str(bobs_payment["router"].pk), packageId=str(bobs_payment["package"].pk)
            )
        },
        **auth,
    )["data"]["initiatePayment"]
    assert [e["code"] for e in result["errors"]] == ["ROUTER_NOT_FOUND"]


@pytest.mark.parametrize("credentials", ["token", "public_key"])
def test_cannot_use_another_operators_package_on_own_router(gql, shop, bobs_payment, credentials):
    auth = shop.operator.auth if credentials == "token" else shop.operator.portal
    result = gql(INITIATE, {"input": shop.payment_input(packageId=str(bobs_payment["package"].pk))}, **auth)["data"][
        "initiatePayment"
    ]
    assert [e["code"] for e in result["errors"]] == ["PACKAGE_NOT_FOUND"]


@pytest.mark.parametrize("credentials", ["token", "public_key"])
def test_another_operators_payment_looks_missing(gql, shop, bobs_payment, credentials):
    auth = shop.operator.auth if credentials == "token" else shop.operator.portal
    payment_id = bobs_payment["payment_id"]
    assert gql(PAYMENT, {"id": payment_id}, **auth)["data"]["payment"] is None
    result = gql(CHECK_STATUS, {"id": payment_id}, **auth)["data"]["checkPaymentStatus"]
    assert result["errors"] == [
        {"field": "paymentId", "code": "PAYMENT_NOT_FOUND", "message": "Payment not found or access denied"}
    ]
    assert result["payment"] is None
    missing = gql(CHECK_STATUS, {"id": "6d1e1c1e-0000-4000-8000-000000000000"}, **auth)
    assert missing["data"]["checkPaymentStatus"]["errors"] == result["errors"]  # no existence leak


def test_payments_list_shows_only_own(gql, shop, bobs_payment):
    mine = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    listing = gql(PAYMENTS, **shop.operator.auth)["data"]["payments"]
    assert listing["totalCount"] == 1
    assert [p["id"] for p in listing["results"]] == [mine["payment"]["id"]]


def test_routers_packages_and_credentials_are_private(gql, shop, bobs_payment, other_operator):
    data = gql("{ routers { id } paymentCredentials { id apiKey } }", **shop.operator.auth)["data"]
    assert [r["id"] for r in data["routers"]] == [str(shop.router.pk)]
    assert [c["apiKey"] for c in data["paymentCredentials"]] == [shop.credential.api_key]
    bobs_router = str(bobs_payment["router"].pk)
    for auth in (shop.operator.auth, shop.operator.portal):
        packages = gql("query($r: ID!) { packages(routerId: $r) { id } }", {"r": bobs_router}, **auth)
        assert packages["data"]["packages"] == []
    create = gql(
        'mutation($r: ID!) { createPackage(input: {routerId: $r, name: "x", price: "5", durationMinutes: 5})'
        " { package { id } errors { code } } }",
        {"r": bobs_router},
        **shop.operator.auth,
    )["data"]["createPackage"]
    assert create == {"package": None, "errors": [{"code": "ROUTER_NOT_FOUND"}]}


def test_portal_key_grants_only_portal_operations(gql, shop):
    portal = shop.operator.portal
    for query in (
        "{ me { id } }",
        "{ routers { id } }",
        "{ paymentCredentials { id } }",
        "{ payments { totalCount } }",
        "mutation { rotatePublicKey { publicKey } }",
    ):
        body = gql(query, **portal)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", query
    packages = gql("query($r: ID!) { packages(routerId: $r) { id } }", {"r": str(shop.router.pk)}, **portal)
    assert packages["data"]["packages"] == [{"id": str(shop.package.pk)}]


def test_portal_sees_only_active_packages_operator_sees_all(gql, shop):
    hidden = shop.operator.add_package(shop.router, name="Retired", active=False)
    query = "query($r: ID!) { packages(routerId: $r) { id } }"
    portal_ids = {p["id"] for p in gql(query, {"r": str(shop.router.pk)}, **shop.operator.portal)["data"]["packages"]}
    operator_ids = {p["id"] for p in gql(query, {"r": str(shop.router.pk)}, **shop.operator.auth)["data"]["packages"]}
    assert str(hidden.pk) not in portal_ids
    assert str(hidden.pk) in operator_ids


def test_portal_does_not_see_router_connection_details(gql, shop):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["initiatePayment"]
    assert result["payment"]["router"] == {"id": str(shop.router.pk), "name": shop.router.name}
    body = gql(
        PAYMENT.replace("router { id name }", "router { id host username apiPort }"),
        {"id": result["payment"]["id"], "secret": result["payment"]["clientSecret"]},
        **shop.operator.portal,
    )
    assert body["data"]["payment"]["router"] == {
        "id": str(shop.router.pk),
        "host": None,
        "username": None,
        "apiPort": None,
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Public-Key": "not-a-key"},
        {"X-Public-Key": "0" * 32},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_missing_or_bad_credentials_are_unauthenticated(gql, shop, headers):
    body = gql(INITIATE, {"input": shop.payment_input()}, headers=headers)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert Payment.objects.count() == 0


def test_malformed_public_key_is_rejected_without_a_database_lookup(gql, shop, django_assert_num_queries):
    with django_assert_num_queries(0):
        body = gql(
            "query($r: ID!) { packages(routerId: $r) { id } }",
            {"r": "1"},
            headers={"X-Public-Key": "zz" * 16},
        )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
