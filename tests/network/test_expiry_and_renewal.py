"""Expiry takes customers off the router (only EXPIRED once the router confirmed); renewals extend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from network.models import Activation
from network.tasks import expire_activations
from tests.network.conftest import IP, MAC, pay

pytestmark = pytest.mark.django_db(transaction=True)


def _time_is_up(*activations: Activation) -> None:
    past = timezone.now() - timedelta(seconds=1)
    Activation.objects.filter(pk__in=[a.pk for a in activations]).update(expires_at=past)


def test_expiry_removes_the_user_its_session_and_cookie(gql, client, hotspot):
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    staying = pay(gql, client, hotspot, phoneNumber="0722000111")  # another customer, not due yet
    activation = Activation.objects.get(payment=payment)
    code = activation.access_code
    assert [s["user"] for s in hotspot.fake.active] == [code]
    assert [c["user"] for c in hotspot.fake.cookies] == [code]

    expire_activations()  # nothing is due yet
    assert {u["name"] for u in hotspot.fake.users} == {code, staying.activation.access_code}

    _time_is_up(activation)
    expire_activations()
    activation.refresh_from_db()
    assert activation.status == "EXPIRED" and activation.last_error == ""
    assert [u["name"] for u in hotspot.fake.users] == [staying.activation.access_code]
    assert hotspot.fake.active == [] and hotspot.fake.cookies == []
    assert Activation.objects.get(payment=staying).status == "ACTIVE"

    # Nothing left to do: the next run does not even connect.
    hotspot.fake.clear_commands()
    expire_activations()
    assert hotspot.fake.commands == []


def test_expiry_also_removes_sessions_the_device_started_itself(gql, client, hotspot):
    payment = pay(gql, client, hotspot)  # no MAC/IP: the customer typed the code on the login page
    code = payment.activation.access_code
    hotspot.fake.seed_session(code, mac_address="AA:BB:CC:DD:EE:77", address="10.5.50.77")
    _time_is_up(payment.activation)
    expire_activations()
    assert hotspot.fake.users == [] and hotspot.fake.active == [] and hotspot.fake.cookies == []


def test_expiry_with_the_router_down_keeps_trying_and_does_not_mark_expired(gql, client, hotspot):
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    activation = Activation.objects.get(payment=payment)
    _time_is_up(activation)
    hotspot.fake.set_down()
    for _ in range(3):
        expire_activations()
        activation.refresh_from_db()
        assert activation.status == "ACTIVE"
        assert activation.last_error.startswith("Expiry: Could not connect to router")
    assert len(hotspot.fake.users) == 1  # still there: nothing was confirmed

    hotspot.fake.set_down(False)
    expire_activations()
    activation.refresh_from_db()
    assert activation.status == "EXPIRED" and activation.last_error == ""
    assert hotspot.fake.users == [] and hotspot.fake.active == [] and hotspot.fake.cookies == []


def test_a_router_refusing_one_removal_does_not_block_the_others(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    second = pay(gql, client, hotspot, phoneNumber="0722000111")
    _time_is_up(first.activation, second.activation)
    hotspot.fake.trap_next("/ip/hotspot/user/remove", "failure: item is busy")
    expire_activations()
    statuses = sorted(Activation.objects.values_list("status", flat=True))
    assert statuses == ["ACTIVE", "EXPIRED"]
    refused = Activation.objects.get(status="ACTIVE")
    assert refused.last_error == "Expiry: Router refused /ip/hotspot/user/remove: failure: item is busy"
    expire_activations()
    assert set(Activation.objects.values_list("status", flat=True)) == {"EXPIRED"}
    assert hotspot.fake.users == []


# --- Renewal ---------------------------------------------------------------------------------


def test_paying_again_before_expiry_extends_the_same_user(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    renewal = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    a1 = Activation.objects.get(payment=first)
    a2 = Activation.objects.get(payment=renewal)

    assert a2.status == "ACTIVE" and a2.renewal_of_id == a1.pk
    assert a2.access_code == a1.access_code
    # Time is stacked: the new hour starts where the old one ends.
    assert a2.expires_at == a1.expires_at + timedelta(minutes=60)
    assert a1.status == "ACTIVE"
    [user] = hotspot.fake.users
    assert user["name"] == a1.access_code
    assert user["limit-uptime"] == f"{2 * 3600}s"
    assert user["comment"] == f"cloudpilot pay:{renewal.pk};exp:{int(a2.expires_at.timestamp())}"
    assert hotspot.fake.command_paths().count("/ip/hotspot/user/add") == 1

    # The first hour runs out: the user now belongs to the renewal, so nothing is removed.
    _time_is_up(a1)
    hotspot.fake.clear_commands()
    expire_activations()
    a1.refresh_from_db()
    assert a1.status == "EXPIRED"
    assert "/ip/hotspot/user/remove" not in hotspot.fake.command_paths()
    assert len(hotspot.fake.users) == 1 and len(hotspot.fake.active) == 1

    # The renewal runs out: now the user goes.
    _time_is_up(a2)
    expire_activations()
    assert Activation.objects.get(pk=a2.pk).status == "EXPIRED"
    assert hotspot.fake.users == [] and hotspot.fake.active == [] and hotspot.fake.cookies == []


def test_the_same_device_with_another_phone_number_is_the_same_customer(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    second = pay(gql, client, hotspot, phoneNumber="0722000111", macAddress=MAC, ipAddress=IP)
    assert second.activation.access_code == first.activation.access_code
    assert len(hotspot.fake.users) == 1


def test_data_caps_add_up_on_renewal(gql, client, hotspot, operator):
    capped = operator.add_package(hotspot.router, price="30.00", name="1 GB", data_limit_mb=1000)
    first = pay(gql, client, hotspot, packageId=str(capped.pk), amount="30.00")
    pay(gql, client, hotspot, packageId=str(capped.pk), amount="30.00")
    [user] = hotspot.fake.users
    assert user["name"] == first.activation.access_code
    assert user["limit-bytes-total"] == str(2 * 1000 * 1_000_000)
    # An uncapped package on top lifts the cap (its time still ends at expiry).
    pay(gql, client, hotspot)
    [user] = hotspot.fake.users
    assert "limit-bytes-total" not in user
    assert user["limit-uptime"] == f"{3 * 3600}s"
    assert user["profile"] == hotspot.package.profile_name  # the newest package's speed


def test_another_customer_gets_their_own_code(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    other = pay(gql, client, hotspot, phoneNumber="0722000111", macAddress="AA:BB:CC:DD:EE:02", ipAddress="10.5.50.24")
    assert other.activation.access_code != first.activation.access_code
    assert len(hotspot.fake.users) == 2


def test_paying_again_in_the_last_minutes_starts_a_new_code(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    Activation.objects.filter(payment=first).update(expires_at=timezone.now() + timedelta(seconds=60))
    second = pay(gql, client, hotspot)
    assert second.activation.access_code != first.activation.access_code
    assert second.activation.renewal_of_id is None
    assert len(hotspot.fake.users) == 2


def test_paying_again_after_expiry_starts_a_new_code(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    _time_is_up(first.activation)
    expire_activations()
    second = pay(gql, client, hotspot)
    assert second.activation.access_code != first.activation.access_code
    assert [u["name"] for u in hotspot.fake.users] == [second.activation.access_code]


def test_expiry_waits_while_a_renewal_is_still_being_applied(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    hotspot.fake.set_down()
    renewal = pay(gql, client, hotspot)
    a2 = Activation.objects.get(payment=renewal)
    assert a2.status == "PENDING" and a2.access_code == first.activation.access_code
    hotspot.fake.set_down(False)

    _time_is_up(first.activation)
    expire_activations()
    assert Activation.objects.get(payment=first).status == "ACTIVE"  # undecided until the renewal is
    assert len(hotspot.fake.users) == 1

    from tests.network.conftest import run_due_retries

    run_due_retries()
    a2.refresh_from_db()
    assert a2.status == "ACTIVE"
    expire_activations()
    assert Activation.objects.get(payment=first).status == "EXPIRED"
    assert len(hotspot.fake.users) == 1
