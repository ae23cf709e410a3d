"""updateRouter, deleteRouter, Router.warnings/status, deletePackage, Package.position, whole-shilling prices."""

from __future__ import annotations

import pytest

from network.models import Activation, Package, Router
from network.services import PLAINTEXT_WARNING, WHOLE_SHILLINGS
from project.models import AuditEntry
from tests.fakes.routeros_server import PROFILE
from tests.grants import grant_for

pytestmark = pytest.mark.django_db(transaction=True)

UPDATE_ROUTER = """
mutation($input: UpdateRouterInput!) { updateRouter(input: $input) {
  router { id name host apiPort useSsl username hotspotAddress status lastContactAt lastError warnings }
  errors { field code message }
} }
"""
DELETE_ROUTER = """
mutation($id: ID!, $force: Boolean) { deleteRouter(routerId: $id, force: $force) {
  router { id name } errors { field code message }
} }
"""
DELETE_PACKAGE = """
mutation($id: ID!) { deletePackage(packageId: $id) { package { id isActive } errors { field code message } } }
"""
ROUTERS = "{ routers { id name status warnings } }"
PACKAGES = "query($id: ID!) { packages(routerId: $id) { id name position price } }"
CREATE_PACKAGE = """
mutation($input: CreatePackageInput!) { createPackage(input: $input) {
  package { id position price } errors { field code message }
} }
"""
UPDATE_PACKAGE = """
mutation($input: UpdatePackageInput!) { updatePackage(input: $input) {
  package { id position price } errors { field code message }
} }
"""


def update_router(gql, operator, **fields) -> dict:
    return gql(UPDATE_ROUTER, {"input": fields}, **operator.auth)["data"]["updateRouter"]


def _profile(fake, package_id) -> dict | None:
    return next((p for p in fake.profiles if p["name"] == f"cloudpilot-pkg-{package_id}"), None)


# --- updateRouter ------------------------------------------------------------------------------


def test_update_router_changes_only_the_given_fields_and_is_audited(gql, hotspot):
    router = hotspot.router
    before = Router.objects.get(pk=router.pk)
    result = update_router(gql, hotspot.operator, routerId=str(router.pk), name="Market Stall", password="new-secret")
    assert result["errors"] == []
    assert result["router"]["name"] == "Market Stall"
    after = Router.objects.get(pk=router.pk)
    assert (after.host, after.api_port, after.username) == (before.host, before.api_port, before.username)
    assert after.password() == "new-secret"
    entry = AuditEntry.objects.get(action="updateRouter")
    assert entry.object_id == str(router.pk) and entry.operator == hotspot.operator.user
    assert entry.changes == {"name": ["Main Street", "Market Stall"], "password": "changed"}
    assert "new-secret" not in str(entry.changes)


def test_a_new_address_resyncs_the_package_profiles(gql, hotspot):
    hotspot.fake.delete_rows(PROFILE, name=hotspot.package.profile_name)  # a reset or replaced device
    result = update_router(gql, hotspot.operator, routerId=str(hotspot.router.pk), apiPort=hotspot.fake.port)
    assert result["errors"] == []
    assert _profile(hotspot.fake, hotspot.package.pk) is None  # same port: nothing changed, nothing pushed
    result = update_router(gql, hotspot.operator, routerId=str(hotspot.router.pk), username="cloudpilot2")
    assert result["errors"] == [] and result["router"]["username"] == "cloudpilot2"
    assert AuditEntry.objects.filter(action="updateRouter").count() == 1


def test_a_changed_login_resyncs_profiles(gql, hotspot):
    hotspot.fake.delete_rows(PROFILE, name=hotspot.package.profile_name)  # a reset or replaced device
    result = update_router(gql, hotspot.operator, routerId=str(hotspot.router.pk), password="router-pass-123")
    assert result["errors"] == []
    assert _profile(hotspot.fake, hotspot.package.pk) is not None


def test_update_router_reports_every_invalid_field_at_once_and_changes_nothing(gql, hotspot):
    before = Router.objects.filter(pk=hotspot.router.pk).values().get()
    result = update_router(
        gql,
        hotspot.operator,
        routerId=str(hotspot.router.pk),
        name="",
        host="bad host;rm",
        apiPort=70000,
        username="a\nb",
        password=None,
        hotspotAddress="http://x/y",
        useSsl=None,
    )
    assert result["router"] is None
    assert sorted((e["field"], e["code"]) for e in result["errors"]) == [
        ("apiPort", "INVALID_INPUT"),
        ("host", "INVALID_INPUT"),
        ("hotspotAddress", "INVALID_INPUT"),
        ("name", "INVALID_INPUT"),
        ("password", "INVALID_INPUT"),
        ("useSsl", "INVALID_INPUT"),
        ("username", "INVALID_INPUT"),
    ]
    assert Router.objects.filter(pk=hotspot.router.pk).values().get() == before
    assert not AuditEntry.objects.filter(action="updateRouter").exists()


def test_update_router_to_a_refused_address(gql, hotspot):
    result = update_router(gql, hotspot.operator, routerId=str(hotspot.router.pk), host="169.254.169.254")
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("host", "ROUTER_NOT_ALLOWED")]
    assert Router.objects.get(pk=hotspot.router.pk).host == hotspot.router.host


def test_update_router_of_someone_else_looks_missing(gql, hotspot, other_operator):
    for router_id in (str(hotspot.router.pk), "999999", "x"):
        result = update_router(gql, other_operator, routerId=router_id, name="Mine now")
        assert [(e["field"], e["code"]) for e in result["errors"]] == [("routerId", "ROUTER_NOT_FOUND")]
    assert Router.objects.get(pk=hotspot.router.pk).name == "Main Street"


def test_plaintext_api_to_a_public_address_is_warned_about(gql, operator):
    router = operator.add_router(host="41.90.64.10", port=8728)
    private = operator.add_router(name="Back office", host="192.168.88.1", port=8728)
    routers = {r["id"]: r for r in gql(ROUTERS, **operator.auth)["data"]["routers"]}
    assert routers[str(router.pk)]["warnings"] == [PLAINTEXT_WARNING]
    assert routers[str(private.pk)]["warnings"] == []
    assert "in clear" in PLAINTEXT_WARNING
    result = update_router(gql, operator, routerId=str(router.pk), useSsl=True, apiPort=8729)
    assert result["router"]["warnings"] == [] and result["router"]["useSsl"] is True


def test_hotspot_address_null_clears_it(gql, operator):
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(hotspot_address="10.5.50.1")
    result = update_router(gql, operator, routerId=str(router.pk), hotspotAddress=None)
    assert result["errors"] == [] and result["router"]["hotspotAddress"] is None


# --- deleteRouter ------------------------------------------------------------------------------


def test_delete_router_is_soft_and_hides_it(gql, shop):
    operator, router = shop.operator, shop.router
    payment = operator.add_paid_payment(router, shop.package)
    result = gql(DELETE_ROUTER, {"id": str(router.pk)}, **operator.auth)["data"]["deleteRouter"]
    assert result["errors"] == [] and result["router"]["id"] == str(router.pk)
    assert gql(ROUTERS, **operator.auth)["data"]["routers"] == []
    assert gql(PACKAGES, {"id": str(router.pk)}, **operator.portal)["data"]["packages"] == []
    assert Router.objects.get(pk=router.pk).deleted_at is not None
    assert Package.objects.get(pk=shop.package.pk).deleted_at is not None
    # Payments stay readable; new ones are refused.
    listed = gql("{ payments { results { id } } }", **operator.auth)["data"]["payments"]["results"]
    assert [p["id"] for p in listed] == [str(payment.pk)]
    initiate = gql(
        'mutation($r: ID!, $p: ID!) { initiatePayment(input: {routerId: $r, packageId: $p, phoneNumber: "0711000999",'
        ' amount: "25.00"}) { payment { id } errors { code } } }',
        {"r": str(router.pk), "p": str(shop.package.pk)},
        **operator.portal,
    )["data"]["initiatePayment"]
    assert [e["code"] for e in initiate["errors"]] == ["ROUTER_NOT_FOUND"]
    assert AuditEntry.objects.get(action="deleteRouter").object_id == str(router.pk)
    # Deleted twice: it is gone.
    again = gql(DELETE_ROUTER, {"id": str(router.pk)}, **operator.auth)["data"]["deleteRouter"]
    assert [e["code"] for e in again["errors"]] == ["ROUTER_NOT_FOUND"]


def test_delete_router_with_active_grants_needs_force(gql, shop):
    activation = grant_for(shop.operator.add_paid_payment(shop.router, shop.package))
    Activation.objects.filter(pk=activation.pk).update(status=Activation.Status.ACTIVE)
    refused = gql(DELETE_ROUTER, {"id": str(shop.router.pk)}, **shop.operator.auth)["data"]["deleteRouter"]
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("force", "INVALID_INPUT")]
    assert Router.objects.get(pk=shop.router.pk).deleted_at is None
    forced = gql(DELETE_ROUTER, {"id": str(shop.router.pk), "force": True}, **shop.operator.auth)
    assert forced["data"]["deleteRouter"]["errors"] == []
    assert Activation.objects.get(pk=activation.pk).status == Activation.Status.ACTIVE
    assert AuditEntry.objects.get(action="deleteRouter").changes["force"] is True


# --- Packages ----------------------------------------------------------------------------------


def test_delete_package_hides_it_everywhere_but_history(gql, shop):
    operator = shop.operator
    payment = operator.add_paid_payment(shop.router, shop.package)
    result = gql(DELETE_PACKAGE, {"id": str(shop.package.pk)}, **operator.auth)["data"]["deletePackage"]
    assert result["errors"] == [] and result["package"]["isActive"] is False
    for auth in (operator.auth, operator.portal):
        assert gql(PACKAGES, {"id": str(shop.router.pk)}, **auth)["data"]["packages"] == []
    batch = gql(
        "mutation($p: ID!) { createVoucherBatch(input: {packageId: $p, count: 1}) { batch { id } errors { code } } }",
        {"p": str(shop.package.pk)},
        **operator.auth,
    )["data"]["createVoucherBatch"]
    assert batch["batch"] is None and batch["errors"]
    update = gql(UPDATE_PACKAGE, {"input": {"packageId": str(shop.package.pk), "position": 3}}, **operator.auth)
    assert [e["code"] for e in update["data"]["updatePackage"]["errors"]] == ["PACKAGE_NOT_FOUND"]
    read = gql(
        "query($id: UUID!) { payment(id: $id) { package { id name } } }", {"id": str(payment.pk)}, **operator.auth
    )
    assert read["data"]["payment"]["package"]["id"] == str(shop.package.pk)
    assert AuditEntry.objects.get(action="deletePackage").object_id == str(shop.package.pk)


def test_delete_package_of_someone_else_looks_missing(gql, shop, other_operator):
    for package_id in (str(shop.package.pk), "424242", "zz"):
        result = gql(DELETE_PACKAGE, {"id": package_id}, **other_operator.auth)["data"]["deletePackage"]
        assert [(e["field"], e["code"]) for e in result["errors"]] == [("packageId", "PACKAGE_NOT_FOUND")]
    assert Package.objects.get(pk=shop.package.pk).deleted_at is None


def test_position_orders_the_portal_and_is_audited(gql, shop):
    operator = shop.operator
    created = gql(
        CREATE_PACKAGE,
        {"input": {"routerId": str(shop.router.pk), "name": "Day", "price": "80", "durationMinutes": 1440,
                   "position": 0}},
        **operator.auth,
    )["data"]["createPackage"]  # fmt: skip
    assert created["errors"] == [] and created["package"]["position"] == 0
    moved = gql(UPDATE_PACKAGE, {"input": {"packageId": str(shop.package.pk), "position": 5}}, **operator.auth)
    assert moved["data"]["updatePackage"]["package"]["position"] == 5
    listed = gql(PACKAGES, {"id": str(shop.router.pk)}, **operator.portal)["data"]["packages"]
    assert [p["name"] for p in listed] == ["Day", "1 Hour"]
    entry = AuditEntry.objects.get(action="updatePackage")
    assert entry.changes == {"position": [0, 5]}


def test_prices_are_whole_shillings_and_every_invalid_field_is_reported(gql, shop):
    operator = shop.operator
    created = gql(
        CREATE_PACKAGE,
        {"input": {"routerId": str(shop.router.pk), "name": "", "price": "25.50", "durationMinutes": 0,
                   "position": -1}},
        **operator.auth,
    )["data"]["createPackage"]  # fmt: skip
    errors = {e["field"]: e for e in created["errors"]}
    assert set(errors) == {"name", "price", "durationMinutes", "position"}
    assert errors["price"]["message"] == WHOLE_SHILLINGS and errors["price"]["code"] == "INVALID_INPUT"
    updated = gql(
        UPDATE_PACKAGE, {"input": {"packageId": str(shop.package.pk), "price": "25.5", "position": 10001}},
        **operator.auth,
    )["data"]["updatePackage"]  # fmt: skip
    assert {e["field"] for e in updated["errors"]} == {"price", "position"}
    assert Package.objects.get(pk=shop.package.pk).price == shop.package.price
    ok = gql(UPDATE_PACKAGE, {"input": {"packageId": str(shop.package.pk), "price": "30.00"}}, **operator.auth)
    assert ok["data"]["updatePackage"]["package"]["price"] == "30.00"
