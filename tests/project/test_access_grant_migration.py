"""Migrating existing rows to stand-alone access grants (network 0005-0006, billing 0007-0009), and back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0006_personal_data_retention"), ("network", "0004_personal_data_retention")]
AFTER = [("billing", "0009_payment_activation_related_name"), ("network", "0006_activation_without_payment")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_each_activation_becomes_a_grant_of_its_payment_and_back():
    try:
        apps = _migrate(BEFORE)
        User = apps.get_model("auth", "User")
        Router = apps.get_model("network", "Router")
        Package = apps.get_model("network", "Package")
        Payment = apps.get_model("billing", "Payment")
        Activation = apps.get_model("network", "Activation")
        owner = User.objects.create(username="migrated-operator")
        router = Router.objects.create(
            owner=owner, name="Shop", host="10.0.0.1", username="api", password_encrypted="x"
        )
        package = Package.objects.create(router=router, name="1 Hour", price=Decimal("20.00"), duration_minutes=60)
        completed = timezone.now() - timedelta(minutes=5)
        first = Payment.objects.create(
            owner=owner,
            router=router,
            package=package,
            amount=Decimal("20.00"),
            status="COMPLETED",
            phone_number="254712345678",
            mac_address="AA:BB:CC:DD:EE:FF",
            ip_address="10.5.50.23",
            completed_at=completed,
            package_expiry_time=completed + timedelta(hours=1),
        )
        old = Activation.objects.create(payment=first, status="ACTIVE", access_code="K7P2MX9Q")
        renewal = Payment.objects.create(
            owner=owner,
            router=router,
            package=package,
            amount=Decimal("20.00"),
            status="COMPLETED",
            completed_at=completed,
            renews=old,
        )
        renewing = Activation.objects.create(payment=renewal, status="FAILED", last_error="down")
        unpaid = Payment.objects.create(owner=owner, router=router, package=package, amount=Decimal("20.00"))

        apps = _migrate(AFTER)
        Activation = apps.get_model("network", "Activation")
        Payment = apps.get_model("billing", "Payment")
        grant = Activation.objects.get(pk=old.pk)
        assert (grant.source, grant.owner_id, grant.router_id, grant.package_id) == (
            "PAYMENT",
            owner.pk,
            router.pk,
            package.pk,
        )
        assert (grant.phone_number, grant.mac_address, grant.ip_address) == (
            "254712345678",
            "AA:BB:CC:DD:EE:FF",
            "10.5.50.23",
        )
        assert grant.granted_at == completed and grant.reference == str(first.pk) and grant.access_code == "K7P2MX9Q"
        assert Activation.objects.get(pk=renewing.pk).renews_id == old.pk
        assert Payment.objects.get(pk=first.pk).activation_id == old.pk
        assert Payment.objects.get(pk=renewal.pk).activation_id == renewing.pk
        assert Payment.objects.get(pk=unpaid.pk).activation_id is None

        apps = _migrate(BEFORE)
        Activation = apps.get_model("network", "Activation")
        assert Activation.objects.get(pk=old.pk).payment_id == first.pk
        assert Activation.objects.get(pk=renewing.pk).payment_id == renewal.pk
    finally:
        _latest()
