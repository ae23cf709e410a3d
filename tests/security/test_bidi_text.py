"""Text customers read (business name, portal message, package and router names) may not carry
bidirectional controls: U+202E on a portal or a printed voucher could make a price or a phone number read
as another. Found from outside: updateOperatorProfile took U+202E in businessName and portalMessage."""

from __future__ import annotations

import pytest

from billing.models import OperatorProfile
from network.models import Package

pytestmark = pytest.mark.django_db

RLO = "\u202e"
PROFILE = (
    "mutation($input: UpdateOperatorProfileInput!) { updateOperatorProfile(input: $input) { errors { field code } } }"
)
PACKAGE = (
    "mutation($input: CreatePackageInput!) { createPackage(input: $input) { package { id } errors { field code } } }"
)
ROUTER = "mutation($input: CreateRouterInput!) { createRouter(input: $input) { router { id } errors { field code } } }"


@pytest.mark.parametrize("mark", [RLO, "\u2066", "\u200f"])
def test_the_profile_refuses_bidirectional_controls(gql, operator, mark):
    result = gql(
        PROFILE, {"input": {"businessName": f"Mama{mark} Njeri", "portalMessage": f"Pay 50{mark}05"}}, **operator.auth
    )
    errors = result["data"]["updateOperatorProfile"]["errors"]
    assert {(e["field"], e["code"]) for e in errors} == {
        ("businessName", "INVALID_INPUT"),
        ("portalMessage", "INVALID_INPUT"),
    }
    assert OperatorProfile.objects.get(user=operator.user).business_name == ""


def test_a_message_keeps_its_line_breaks_and_ordinary_unicode(gql, operator):
    text = "Karibu! Bei nafuu 🙂\nPiga simu: 0712 345 678"
    result = gql(PROFILE, {"input": {"portalMessage": text}}, **operator.auth)
    assert result["data"]["updateOperatorProfile"]["errors"] == []


def test_package_and_router_names_refuse_them(gql, operator):
    router = operator.add_router()
    package = {"routerId": str(router.pk), "name": f"1 day {RLO}05 KES", "price": "50", "durationMinutes": 60}
    errors = gql(PACKAGE, {"input": package}, **operator.auth)["data"]["createPackage"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("name", "INVALID_INPUT")]
    assert not Package.objects.filter(router=router).exists()
    new_router = {"name": f"Kiosk{RLO}", "host": "10.0.0.9", "username": "api", "password": "secret"}
    errors = gql(ROUTER, {"input": new_router}, **operator.auth)["data"]["createRouter"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("name", "INVALID_INPUT")]
