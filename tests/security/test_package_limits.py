"""Issue 9, item 18: the admin took a package the API refuses, and paying for it left the activation stuck.

One validation for the API and the admin (network.services.PACKAGE_RULES, the model's bounds); and an
unexpected error while recording an activation releases its lease and says so.
"""

from __future__ import annotations

import logging

import pytest
from django.db import connection, transaction

from network.activation import RECORD_FAILED_TEXT, activation_grant, activation_perform
from network.models import MAX_DURATION_MINUTES, MAX_SHARED_USERS, Activation, Package
from tests.fakes.routeros_server import FakeRouterOS
from tests.network.conftest import drop_scheduled_retries

CREATE_PACKAGE = """
mutation($input: CreatePackageInput!) { createPackage(input: $input) { package { id } errors { field code } } }
"""
GOOD = {"name": "Fast hour", "price": "40.00", "duration_minutes": 60, "shared_users": 1, "is_active": "on"}
TOO_MUCH = [
    ({"duration_minutes": 99_999_999}, "durationMinutes"),
    ({"duration_minutes": MAX_DURATION_MINUTES + 1}, "durationMinutes"),
    ({"shared_users": 30_000}, "sharedUsers"),
    ({"shared_users": MAX_SHARED_USERS + 1}, "sharedUsers"),
    ({"price": "0.50"}, "price"),
    ({"price": "1.234"}, "price"),
    ({"upload_kbps": 0}, "uploadKbps"),
]


@pytest.fixture
def admin_client(client, operator):
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    client.force_login(operator.user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "api_field"), TOO_MUCH)
def test_admin_refuses_a_package_the_api_refuses(admin_client, gql, operator, change, api_field):
    router = operator.add_router()
    form = {**GOOD, **change}

    response = admin_client.post("/admin/network/package/add/", {"router": router.pk, **form})
    api = {
        "routerId": str(router.pk),
        "name": form["name"],
        "price": form["price"],
        "durationMinutes": form["duration_minutes"],
        "sharedUsers": form["shared_users"],
        "uploadKbps": form.get("upload_kbps"),
    }
    answer = gql(CREATE_PACKAGE, {"input": api}, **operator.auth)["data"]["createPackage"]

    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert [e["field"] for e in answer["errors"]] == [api_field]
    assert not Package.objects.exists()
    assert admin_client.post("/admin/network/package/add/", {"router": router.pk, **GOOD}).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_unexpected_error_while_recording_releases_the_lease(operator, settings, caplog):
    settings.ROUTER_API_TIMEOUT_SECONDS = 2
    with FakeRouterOS(username="cloudpilot", password="router-pass-123") as fake:
        router = operator.add_router(host=fake.host, port=fake.port)
        package = operator.add_package(router)
        # A row the old admin let through, whose limits cannot be recorded once the router has already
        # taken them: on PostgreSQL the 99,999,999 minutes (limit_uptime_seconds overflows its
        # integer: DataError), on SQLite a byte cap past 64 bits (OverflowError).
        if connection.vendor == "postgresql":
            Package.objects.filter(pk=package.pk).update(duration_minutes=99_999_999)
        else:
            Package.objects.filter(pk=package.pk).update(data_limit_mb=10**13)
        payment = operator.add_paid_payment(router, Package.objects.get(pk=package.pk))
        caplog.set_level(logging.INFO)
        try:
            with transaction.atomic():
                activation = activation_grant(  # the job runs on commit (immediate mode)
                    source=Activation.Source.PAYMENT,
                    owner=payment.owner,
                    router=payment.router,
                    package=payment.package,
                    expires_at=payment.package_expiry_time,
                    granted_at=payment.completed_at,
                    reference=str(payment.pk),
                )

            activation.refresh_from_db()
            assert activation.status == Activation.Status.PENDING  # retried later, like a router error
            assert activation.claimed_until is None and activation.last_error == RECORD_FAILED_TEXT
            assert [u["name"] for u in fake.users] == [activation.access_code]  # the router did its part
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "network.activation"]
            assert len(errors) == 1 and "while recording" in errors[0].getMessage()

            assert activation_perform(activation.pk, final_attempt=True).value == "FAILED"
            activation.refresh_from_db()
            assert activation.status == Activation.Status.FAILED and activation.claimed_until is None
        finally:
            drop_scheduled_retries()
