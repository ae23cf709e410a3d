"""The audit log: what operators change through the API and the admin, append-only, each reading their own."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse

from billing.models import Payment, Voucher
from billing.vouchers import VoucherBatchInput, voucher_batch_create
from network.models import Package
from project.models import AuditEntry
from tests.grants import grant_for

pytestmark = pytest.mark.django_db

LOG = """query($offset: Int, $limit: Int) { auditLog(pagination: {offset: $offset, limit: $limit}) {
  totalCount results { id at actor action objectType objectId changes } } }"""


def log_of(gql, operator, **page) -> dict:
    return gql(LOG, page, **operator.auth)["data"]["auditLog"]


def actions_of(user) -> list[str]:
    return list(AuditEntry.objects.filter(operator=user).order_by("id").values_list("action", flat=True))


def test_entries_are_append_only(operator):
    router = operator.add_router()
    entry = AuditEntry.objects.get(operator=operator.user, action="createRouter", object_id=str(router.pk))
    entry.action = "nothing happened"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "createRouter"


def test_the_log_is_the_operators_own_newest_first_and_paginated(operator, other_operator, gql):
    router = operator.add_router()
    operator.add_package(router)
    other_operator.add_router(name="Bob's")
    log = log_of(gql, operator)
    assert log["totalCount"] == 2
    assert [entry["action"] for entry in log["results"]] == ["createPackage", "createRouter"]
    created = log["results"][1]
    assert (created["actor"], created["objectType"], created["objectId"]) == ("alice", "Router", str(router.pk))
    assert created["changes"]["name"] == "Main Street"
    assert created["changes"]["password"] == "set"  # never the password itself
    assert "router-pass-123" not in str(log)
    page = log_of(gql, operator, offset=1, limit=1)
    assert (page["totalCount"], [entry["action"] for entry in page["results"]]) == (2, ["createRouter"])
    assert [entry["actor"] for entry in log_of(gql, other_operator)["results"]] == ["bob"]
    assert gql(LOG, {"offset": -1}, **operator.auth)["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_todays_operations_are_recorded_with_what_changed(operator, gql):
    router = operator.add_router()
    package = operator.add_package(router)
    auth = operator.auth
    answer = gql(
        'mutation { updateOperatorProfile(input: {businessName: "Mama Wifi", timeZone: "UTC"}) { errors { code } } }',
        **auth,
    )
    assert answer["data"]["updateOperatorProfile"]["errors"] == []
    batch = voucher_batch_create(operator=operator.user, data=VoucherBatchInput(package_id=package.pk, count=2))
    voucher = batch.vouchers.first()
    gql("mutation($id: ID!) { revokeVoucher(id: $id) { errors { code } } }", {"id": str(voucher.pk)}, **auth)
    payment = operator.add_paid_payment(router, package)
    activation = grant_for(payment, status="FAILED")
    gql(
        "mutation($id: ID) { retryActivation(activationId: $id) { errors { code } } }",
        {"id": str(activation.pk)},
        **auth,
    )
    gql("mutation { rotatePublicKey { publicKey } }", **auth)
    public_key = operator.public_key
    gql("mutation { revokeTokens { errors { code } } }", **auth)

    assert actions_of(operator.user) == [
        "createRouter",
        "createPackage",
        "updateOperatorProfile",
        "createVoucherBatch",
        "revokeVoucher",
        "retryActivation",
        "rotatePublicKey",
        "revokeTokens",
    ]
    entries = {entry.action: entry for entry in AuditEntry.objects.filter(operator=operator.user)}
    assert entries["updateOperatorProfile"].changes == {
        "business_name": ["", "Mama Wifi"],
        "time_zone": ["Africa/Nairobi", "UTC"],
    }
    assert entries["revokeVoucher"].changes == {"status": ["UNUSED", "REVOKED"]}
    assert entries["retryActivation"].changes == {"status": ["FAILED", "PENDING"]}
    assert entries["createVoucherBatch"].changes["count"] == 2
    assert entries["rotatePublicKey"].changes == {"publicKey": "changed"}
    everything = str(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert public_key not in everything and voucher.code not in everything
    assert all(entry.via == AuditEntry.Via.API and entry.actor == operator.user for entry in entries.values())


def test_refused_changes_record_nothing(operator, other_operator, gql):
    bobs = other_operator.add_router()
    answer = gql(
        'mutation($r: ID!) { createPackage(input: {routerId: $r, name: "", price: "-1", durationMinutes: 0}) '
        "{ errors { field } } }",
        {"r": str(bobs.pk)},
        **operator.auth,
    )
    assert len(answer["data"]["createPackage"]["errors"]) > 1
    gql('mutation { updateOperatorProfile(input: {timeZone: "Mars/Olympus"}) { errors { code } } }', **operator.auth)
    assert actions_of(operator.user) == []


# --- The admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "admin-pass-123")


def _change_form_data(model_admin, user, obj) -> dict:
    request = RequestFactory().get("/")
    request.user = user
    form = model_admin.get_form(request, obj, change=True)(instance=obj)
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if value is True:
            data[name] = "on"
        elif value is not None and value is not False:
            data[name] = value
    return data


def test_admin_changes_are_recorded_with_a_before_after_diff(client, operator, admin_user):
    router = operator.add_router()
    package = operator.add_package(router)
    client.force_login(admin_user)
    data = _change_form_data(site._registry[Package], admin_user, package)
    data.update(price="30", name="Hour+")
    response = client.post(reverse("admin:network_package_change", args=[package.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(action="admin.change")
    assert (entry.operator, entry.actor, entry.actor_name, entry.via) == (operator.user, admin_user, "root", "ADMIN")
    assert (entry.object_type, entry.object_id) == ("Package", str(package.pk))
    assert entry.changes == {"name": ["1 Hour", "Hour+"], "price": ["25.00", "30.00"]}


def test_admin_deletions_and_actions_are_recorded(client, operator, admin_user):
    router = operator.add_router()
    package = operator.add_package(router)
    unsold = operator.add_package(router, name="Never sold")
    batch = voucher_batch_create(operator=operator.user, data=VoucherBatchInput(package_id=package.pk, count=2))
    client.force_login(admin_user)
    response = client.post(reverse("admin:network_package_delete", args=[unsold.pk]), {"post": "yes"})
    assert response.status_code == 302
    voucher_ids = [str(pk) for pk in batch.vouchers.values_list("pk", flat=True)]
    response = client.post(
        reverse("admin:billing_voucher_changelist"), {"action": "revoke", "_selected_action": voucher_ids}
    )
    assert response.status_code == 302
    assert Voucher.objects.filter(batch=batch, status=Voucher.Status.REVOKED).count() == 2
    admin_entries = AuditEntry.objects.filter(via=AuditEntry.Via.ADMIN)
    assert sorted(admin_entries.values_list("action", "object_id")) == sorted(
        [("admin.delete", str(unsold.pk))] + [("revokeVoucher", pk) for pk in voucher_ids]
    )
    # The action's service recorded what it did, naming who clicked; the admin adds no second entry.
    assert all(entry.operator == operator.user and entry.actor == admin_user for entry in admin_entries)
    assert AuditEntry.objects.filter(action="revokeVoucher").count() == 2


def test_an_action_without_a_service_of_its_own_is_recorded_per_object(operator, admin_user):
    from django.contrib import admin as django_admin

    router = operator.add_router()
    package = operator.add_package(router)
    model_admin = site._registry[Package]

    @django_admin.action(description="Touch")
    def touch(modeladmin, request, queryset):
        return None

    request = RequestFactory().post("/")
    request.user = admin_user
    model_admin._recorded_action(touch, "touch")(model_admin, request, Package.objects.filter(pk=package.pk))
    entry = AuditEntry.objects.get(action="admin.touch")
    assert (entry.object_id, entry.actor, entry.via) == (str(package.pk), admin_user, "ADMIN")


def test_a_batch_made_in_the_admin_names_the_admin(client, operator, admin_user):
    router = operator.add_router()
    package = operator.add_package(router)
    client.force_login(admin_user)
    response = client.post(reverse("admin:billing_voucherbatch_add"), {"package": package.pk, "count": 3})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="createVoucherBatch")
    assert (entry.operator, entry.actor, entry.via, entry.changes["count"]) == (operator.user, admin_user, "ADMIN", 3)


def test_admin_secrets_are_marked_never_shown(operator, admin_user):
    from project.admin_scoping import _redacted

    changes = {"private_key_encrypted": ["a", "b"], "password_encrypted": ["x", "y"], "client_secret": "s", "name": 1}
    assert _redacted(changes, "changed") == {
        "private_key_encrypted": "changed",
        "password_encrypted": "changed",
        "client_secret": "changed",
        "name": 1,
    }


def test_the_admin_shows_entries_read_only_and_scoped(client, operator, other_operator):
    from tests.project.test_admin import make_staff

    operator.add_router()
    other_operator.add_router(name="Bob's")
    make_staff(operator)
    from django.contrib.auth.models import Permission

    operator.user.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    client.force_login(operator.user)
    mine = AuditEntry.objects.get(operator=operator.user)
    bobs = AuditEntry.objects.get(operator=other_operator.user)
    listing = client.get(reverse("admin:project_auditentry_changelist"))
    assert listing.status_code == 200
    assert b"alice" in listing.content and b"bob" not in listing.content
    assert client.get(reverse("admin:project_auditentry_change", args=[bobs.pk])).status_code in (302, 404)
    page = client.get(reverse("admin:project_auditentry_change", args=[mine.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(reverse("admin:project_auditentry_delete", args=[mine.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:project_auditentry_add")).status_code == 403
    assert AuditEntry.objects.filter(pk=mine.pk).exists()
    assert Payment.objects.count() == 0


def test_deleting_an_object_of_nobodys_in_the_admin_records_nothing(client, admin_user):
    from billing.models import WebhookDelivery

    delivery = WebhookDelivery.objects.create(http_status=200)
    client.force_login(admin_user)
    response = client.post(reverse("admin:billing_webhookdelivery_delete", args=[delivery.pk]), {"post": "yes"})
    assert response.status_code in (302, 403)
    assert not AuditEntry.objects.exists()
