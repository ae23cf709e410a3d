"""Issue 10, item 5: router and package mutations report every invalid field at once (API.md "Errors")."""

from __future__ import annotations

import itertools

import pytest

from network import services
from network.models import MAX_DURATION_MINUTES, MAX_SHARED_USERS, Package, Router
from project.errors import ApplicationError

pytestmark = pytest.mark.django_db

CREATE_ROUTER = """
mutation($input: CreateRouterInput!) { createRouter(input: $input) { router { id } errors { field code message } } }
"""
CREATE_PACKAGE = """
mutation($input: CreatePackageInput!) { createPackage(input: $input) { package { id } errors { field code message } } }
"""
UPDATE_PACKAGE = """
mutation($input: UpdatePackageInput!) { updatePackage(input: $input) { package { id } errors { field code message } } }
"""

GOOD_ROUTER = {"name": "Main Street", "host": "10.0.0.9", "username": "cloudpilot", "password": "router-pass-123"}
BAD_ROUTER = {
    "name": "",
    "host": "not a host!",
    "apiPort": 0,
    "username": "   ",
    "password": "",
    "hotspotAddress": "http://hotspot.lan/login",
}

# Each package field with a value its rule refuses, and the error that value earns.
BAD_PACKAGE = {
    "name": ("", "name must be 1 to 100 characters"),
    "price": ("-5", "price must be between 1 and 99999999 KES"),
    "durationMinutes": (0, f"durationMinutes must be between 1 and {MAX_DURATION_MINUTES}"),
    "uploadKbps": (-1, "uploadKbps must be positive"),
    "downloadKbps": (0, "downloadKbps must be positive"),
    "dataLimitMb": (-3, "dataLimitMb must be positive"),
    "sharedUsers": (0, f"sharedUsers must be between 1 and {MAX_SHARED_USERS}"),
}


@pytest.fixture
def loopback_refused(settings) -> None:
    """A real installation: no loopback allowance, simulators off."""
    settings.ROUTER_ALLOWED_NETWORKS = []
    settings.ROUTER_DENIED_NETWORKS = []
    settings.SIMULATORS_ENABLED = False


def good_package(router: Router) -> dict:
    return {"routerId": str(router.pk), "name": "1 Hour", "price": "25.00", "durationMinutes": 60}


def create_package(gql, operator, package_input: dict) -> dict:
    return gql(CREATE_PACKAGE, {"input": package_input}, **operator.auth)["data"]["createPackage"]


def fields_of(errors: list[dict]) -> list[str]:
    return [error["field"] for error in errors]


def test_create_package_reports_name_price_and_duration_together(gql, operator):
    router = operator.add_router()
    result = create_package(
        gql, operator, {"routerId": str(router.pk), "name": "", "price": "-5", "durationMinutes": 0}
    )
    assert result["package"] is None
    assert result["errors"] == [
        {"field": field, "code": "INVALID_INPUT", "message": BAD_PACKAGE[field][1]}
        for field in ("name", "price", "durationMinutes")
    ]
    assert not Package.objects.exists()


def test_every_subset_of_bad_package_fields_is_reported_exactly(gql, operator):
    router = operator.add_router()
    fields = list(BAD_PACKAGE)
    for size in range(len(fields) + 1):
        for bad in itertools.combinations(fields, size):
            package_input = good_package(router) | {field: BAD_PACKAGE[field][0] for field in bad}
            result = create_package(gql, operator, package_input)
            reported = fields_of(result["errors"])
            assert sorted(reported) == sorted(bad), (bad, result["errors"])
            assert all(error["code"] == "INVALID_INPUT" for error in result["errors"])
            assert {error["message"] for error in result["errors"]} == {BAD_PACKAGE[field][1] for field in bad}
            if bad:
                assert result["package"] is None
    # Only the one all-good input was stored.
    assert Package.objects.count() == 1


def test_someone_elses_router_is_reported_with_the_bad_fields(gql, operator, other_operator):
    router = other_operator.add_router()
    result = create_package(gql, operator, good_package(router) | {"name": "", "price": "0"})
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("routerId", "ROUTER_NOT_FOUND"),
        ("name", "INVALID_INPUT"),
        ("price", "INVALID_INPUT"),
    ]
    assert not Package.objects.exists()


def test_one_bad_package_field_is_one_error(gql, operator):
    router = operator.add_router()
    result = create_package(gql, operator, good_package(router) | {"price": "12.345"})
    assert result["errors"] == [{"field": "price", "code": "INVALID_INPUT", "message": services.WHOLE_SHILLINGS}]


def test_create_router_reports_each_bad_field(gql, operator):
    result = gql(CREATE_ROUTER, {"input": BAD_ROUTER}, **operator.auth)["data"]["createRouter"]
    assert result["router"] is None
    assert result["errors"] == [
        {"field": "name", "code": "INVALID_INPUT", "message": "name must be 1 to 100 characters"},
        {"field": "host", "code": "INVALID_INPUT", "message": "host must be a hostname or IP address"},
        {"field": "apiPort", "code": "INVALID_INPUT", "message": "apiPort must be between 1 and 65535"},
        {"field": "username", "code": "INVALID_INPUT", "message": "username must be 1 to 100 characters"},
        {
            "field": "hotspotAddress",
            "code": "INVALID_INPUT",
            "message": "hotspotAddress must be a hostname or IP address with an optional port (no scheme or path)",
        },
        {"field": "password", "code": "INVALID_INPUT", "message": "password is required"},
    ]
    assert not Router.objects.exists()


def test_create_router_one_bad_field_is_one_error(gql, operator):
    for field, value in BAD_ROUTER.items():
        result = gql(CREATE_ROUTER, {"input": GOOD_ROUTER | {field: value}}, **operator.auth)["data"]["createRouter"]
        assert fields_of(result["errors"]) == [field], (field, result["errors"])
    assert not Router.objects.exists()


def test_a_refused_destination_is_reported_with_the_other_fields(gql, operator, loopback_refused):
    bad = {"host": "127.0.0.1", "username": "", "password": "pass\r\nword"}
    result = gql(CREATE_ROUTER, {"input": GOOD_ROUTER | bad}, **operator.auth)["data"]["createRouter"]
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("host", "ROUTER_NOT_ALLOWED"),
        ("username", "INVALID_INPUT"),
        ("password", "INVALID_INPUT"),
    ]
    assert not Router.objects.exists()


def test_a_host_is_checked_for_where_it_leads_only_once_host_and_port_are_well_formed(gql, operator, loopback_refused):
    malformed_host = {"host": "127.0.0.1\r\n"}
    result = gql(CREATE_ROUTER, {"input": GOOD_ROUTER | malformed_host}, **operator.auth)["data"]["createRouter"]
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("host", "INVALID_INPUT")]

    bad_port = {"host": "127.0.0.1", "apiPort": 70000}
    result = gql(CREATE_ROUTER, {"input": GOOD_ROUTER | bad_port}, **operator.auth)["data"]["createRouter"]
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("apiPort", "INVALID_INPUT")]


def test_update_package_reports_each_bad_field_and_changes_nothing(gql, operator):
    package = operator.add_package(operator.add_router())
    change = {"name": " ", "price": "0.50", "durationMinutes": 0, "sharedUsers": 0, "uploadKbps": -1}
    result = gql(UPDATE_PACKAGE, {"input": {"packageId": str(package.pk), **change}}, **operator.auth)
    result = result["data"]["updatePackage"]
    assert result["package"] is None
    assert sorted(fields_of(result["errors"])) == sorted(change)
    package.refresh_from_db()
    assert (package.name, str(package.price), package.duration_minutes, package.shared_users) == (
        "1 Hour",
        "25.00",
        60,
        1,
    )


def test_update_of_someone_elses_package_is_reported_with_the_bad_fields(gql, operator, other_operator):
    package = other_operator.add_package(other_operator.add_router())
    change = {"packageId": str(package.pk), "name": "", "durationMinutes": -1}
    result = gql(UPDATE_PACKAGE, {"input": change}, **operator.auth)["data"]["updatePackage"]
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("packageId", "PACKAGE_NOT_FOUND"),
        ("name", "INVALID_INPUT"),
        ("durationMinutes", "INVALID_INPUT"),
    ]


def test_update_refuses_every_cleared_required_field_at_once(operator):
    package = operator.add_package(operator.add_router())
    update = services.PackageUpdate(
        package_id=package.pk, name=None, price=None, duration_minutes=None, shared_users=None, is_active=None
    )
    with pytest.raises(ApplicationError) as raised:
        services.package_update(operator=operator.user, data=update)
    assert [(e.field, e.message) for e in raised.value.errors] == [
        ("name", "name cannot be null"),
        ("price", "price cannot be null"),
        ("durationMinutes", "durationMinutes cannot be null"),
        ("sharedUsers", "sharedUsers cannot be null"),
        ("isActive", "isActive cannot be null"),
    ]
    package.refresh_from_db()
    assert package.name == "1 Hour" and package.is_active
