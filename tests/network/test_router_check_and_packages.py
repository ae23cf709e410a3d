"""checkRouterConnection, and packages' hotspot profiles kept in sync with the router."""

from __future__ import annotations

import pytest

from network.models import Package, Router
from network.routeros import AUTH_FAILED_TEXT

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = """
mutation($id: ID!) { checkRouterConnection(routerId: $id) {
  ok identity version error errors { field code message }
} }
"""
UPDATE = """
mutation($input: UpdatePackageInput!) { updatePackage(input: $input) {
  package { id name price durationMinutes uploadKbps downloadKbps dataLimitMb sharedUsers isActive }
  errors { field code message }
} }
"""
CREATE_PACKAGE = """
mutation($input: CreatePackageInput!) { createPackage(input: $input) { package { id } errors { code } } }
"""


def check(gql, operator, router_id) -> dict:
    return gql(CHECK, {"id": str(router_id)}, **operator.auth)["data"]["checkRouterConnection"]


# --- checkRouterConnection ---------------------------------------------------------------------


def test_check_router_connection_reports_identity_and_version(gql, hotspot):
    result = check(gql, hotspot.operator, hotspot.router.pk)
    assert result == {"ok": True, "identity": "main-street-hap", "version": "7.14.3 (stable)", "error": None,
                      "errors": []}  # fmt: skip
    assert Router.objects.get(pk=hotspot.router.pk).last_contact_at is not None


def test_check_router_connection_with_wrong_credentials_says_so(gql, hotspot):
    router = Router.objects.get(pk=hotspot.router.pk)
    router.set_password("not-the-router-password")
    router.save()
    result = check(gql, hotspot.operator, router.pk)
    assert result == {"ok": False, "identity": None, "version": None, "error": AUTH_FAILED_TEXT, "errors": []}
    assert AUTH_FAILED_TEXT == "Router rejected the API username or password"
    assert Router.objects.get(pk=router.pk).last_contact_at is None


def test_check_router_connection_when_the_router_is_down(gql, hotspot):
    hotspot.fake.set_down()
    result = check(gql, hotspot.operator, hotspot.router.pk)
    assert result["ok"] is False and result["errors"] == []
    assert result["error"].startswith(f"Could not connect to router {hotspot.fake.host}:{hotspot.fake.port}")


def test_check_router_connection_of_someone_elses_router_looks_missing(gql, hotspot, other_operator):
    for router_id in (hotspot.router.pk, 999999, "nope"):
        result = check(gql, other_operator, router_id)
        assert result["ok"] is False and result["error"] == "Router not found"
        assert [(e["code"], e["field"]) for e in result["errors"]] == [("ROUTER_NOT_FOUND", "routerId")]
    assert hotspot.fake.commands == []


def test_check_router_connection_needs_an_operator(gql, hotspot):
    response = gql(CHECK, {"id": str(hotspot.router.pk)}, **hotspot.operator.portal)
    assert response["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- Package profiles ------------------------------------------------------------------------


def _profile(fake, package_id) -> dict | None:
    return next((p for p in fake.profiles if p["name"] == f"cloudpilot-pkg-{package_id}"), None)


def test_a_new_package_gets_its_profile_on_the_router(gql, hotspot):
    created = gql(
        CREATE_PACKAGE,
        {"input": {"routerId": str(hotspot.router.pk), "name": "Day", "price": "80", "durationMinutes": 1440,
                   "uploadKbps": 3000, "downloadKbps": 8000, "sharedUsers": 3}},
        **hotspot.operator.auth,
    )["data"]["createPackage"]  # fmt: skip
    assert created["errors"] == []
    profile = _profile(hotspot.fake, created["package"]["id"])
    assert profile["rate-limit"] == "3000k/8000k" and profile["shared-users"] == "3"


def test_changing_speeds_or_shared_users_updates_the_profile(gql, hotspot):
    package_id = str(hotspot.package.pk)
    auth = hotspot.operator.auth
    result = gql(UPDATE, {"input": {"packageId": package_id, "downloadKbps": 4096, "sharedUsers": 2}}, **auth)
    result = result["data"]["updatePackage"]
    assert result["errors"] == []
    assert result["package"]["downloadKbps"] == 4096 and result["package"]["uploadKbps"] == 1024
    profile = _profile(hotspot.fake, package_id)
    assert profile["rate-limit"] == "1024k/4096k" and profile["shared-users"] == "2"

    # null clears a cap; with no speeds at all the profile has no rate-limit.
    gql(UPDATE, {"input": {"packageId": package_id, "uploadKbps": None, "downloadKbps": None}}, **auth)
    assert "rate-limit" not in _profile(hotspot.fake, package_id)
    package = Package.objects.get(pk=package_id)
    assert package.upload_kbps is None and package.download_kbps is None


def test_changes_that_do_not_touch_the_profile_do_not_call_the_router(gql, hotspot):
    hotspot.fake.clear_commands()
    result = gql(
        UPDATE,
        {"input": {"packageId": str(hotspot.package.pk), "name": "One Hour", "price": "30.00", "isActive": False}},
        **hotspot.operator.auth,
    )["data"]["updatePackage"]
    assert result["errors"] == []
    assert result["package"]["name"] == "One Hour" and result["package"]["price"] == "30.00"
    assert result["package"]["isActive"] is False
    assert hotspot.fake.commands == []


def test_update_package_validates_like_create(gql, hotspot):
    auth = hotspot.operator.auth
    package_id = str(hotspot.package.pk)
    cases = [
        ({"price": "0.50"}, "price"),
        ({"durationMinutes": 0}, "durationMinutes"),
        ({"sharedUsers": 0}, "sharedUsers"),
        ({"uploadKbps": -1}, "uploadKbps"),
        ({"name": "  "}, "name"),
        ({"name": None}, "name"),
        ({"isActive": None}, "isActive"),
    ]
    for change, field in cases:
        errors = gql(UPDATE, {"input": {"packageId": package_id, **change}}, **auth)["data"]["updatePackage"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", field)], change
    package = Package.objects.get(pk=package_id)
    assert (package.name, str(package.price), package.duration_minutes) == ("1 Hour", "25.00", 60)


def test_update_package_of_someone_elses_package_looks_missing(gql, hotspot, other_operator):
    result = gql(UPDATE, {"input": {"packageId": str(hotspot.package.pk), "name": "Mine now"}}, **other_operator.auth)
    assert result["data"]["updatePackage"] == {
        "package": None,
        "errors": [{"field": "packageId", "code": "PACKAGE_NOT_FOUND", "message": "Package not found"}],
    }
    assert Package.objects.get(pk=hotspot.package.pk).name == "1 Hour"
    response = gql(UPDATE, {"input": {"packageId": str(hotspot.package.pk)}}, **hotspot.operator.portal)
    assert response["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
