"""Expiry takes customers off the router (only EXPIRED once the router confirmed); renewals extend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from network.models import Activation
from network.tasks import expire_activations
from tests.documents import INITIATE
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


# --- Renewal: only with the code, only of the same package (API.md "Access") --------------------


def test_paying_again_with_the_code_before_expiry_extends_the_same_user(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    a1 = Activation.objects.get(payment=first)
    renewal = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP, renewCode=a1.access_code.lower())
    a2 = Activation.objects.get(payment=renewal)
    assert renewal.renews_id == a1.pk

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


def test_renewing_a_renewal_extends_whatever_holds_the_code_now(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    code = first.activation.access_code
    second = pay(gql, client, hotspot, renewCode=code)
    third = pay(gql, client, hotspot, renewCode=code)
    a2, a3 = Activation.objects.get(payment=second), Activation.objects.get(payment=third)
    assert a3.renewal_of_id == a2.pk and a3.access_code == code
    assert a3.expires_at == first.activation.expires_at + timedelta(minutes=120)
    [user] = hotspot.fake.users
    assert user["limit-uptime"] == f"{3 * 3600}s"


def test_paying_again_without_the_code_is_a_new_grant_with_its_own_code(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    # Same phone, same device: still a separate purchase unless the code is presented.
    second = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    assert second.activation.access_code != first.activation.access_code
    assert second.activation.renewal_of_id is None and second.renews_id is None
    users = {u["name"]: u for u in hotspot.fake.users}
    assert set(users) == {first.activation.access_code, second.activation.access_code}
    assert users[first.activation.access_code]["limit-uptime"] == "3600s"


def test_data_caps_add_up_on_renewal_and_another_package_never_lifts_them(gql, client, hotspot, operator):
    capped = operator.add_package(hotspot.router, price="30.00", name="1 GB", data_limit_mb=1000)
    first = pay(gql, client, hotspot, packageId=str(capped.pk), amount="30.00")
    code = first.activation.access_code
    pay(gql, client, hotspot, packageId=str(capped.pk), amount="30.00", renewCode=code)
    [user] = hotspot.fake.users
    assert user["name"] == code
    assert user["limit-bytes-total"] == str(2 * 1000 * 1_000_000)

    # An uncapped package cannot be stacked on the capped code ...
    result = gql(INITIATE, {"input": hotspot.payment_input(renewCode=code)}, public_key=hotspot.operator.public_key)
    assert result["data"]["initiatePayment"]["errors"] == [
        {"field": "renewCode", "code": "CODE_INVALID", "message": "This code cannot be renewed with this package"}
    ]
    # ... bought on its own it is a separate user, and the capped one keeps its cap.
    other = pay(gql, client, hotspot)
    users = {u["name"]: u for u in hotspot.fake.users}
    assert users[code]["limit-bytes-total"] == str(2 * 1000 * 1_000_000)
    assert users[code]["profile"] == capped.profile_name
    assert "limit-bytes-total" not in users[other.activation.access_code]


def test_another_customer_gets_their_own_code(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    other = pay(gql, client, hotspot, phoneNumber="0722000111", macAddress="AA:BB:CC:DD:EE:02", ipAddress="10.5.50.24")
    assert other.activation.access_code != first.activation.access_code
    assert len(hotspot.fake.users) == 2


def test_renewing_in_the_last_minutes_starts_a_new_code(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    Activation.objects.filter(payment=first).update(expires_at=timezone.now() + timedelta(seconds=60))
    second = pay(gql, client, hotspot, renewCode=first.activation.access_code)
    assert second.activation.access_code != first.activation.access_code
    assert second.activation.renewal_of_id is None
    assert len(hotspot.fake.users) == 2


def test_renewing_after_expiry_is_refused_and_a_plain_payment_starts_a_new_code(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    _time_is_up(first.activation)
    expire_activations()
    code = first.activation.access_code
    result = gql(INITIATE, {"input": hotspot.payment_input(renewCode=code)}, public_key=hotspot.operator.public_key)
    assert [e["code"] for e in result["data"]["initiatePayment"]["errors"]] == ["CODE_INVALID"]
    second = pay(gql, client, hotspot)
    assert second.activation.access_code != code
    assert [u["name"] for u in hotspot.fake.users] == [second.activation.access_code]


def test_expiry_waits_while_a_renewal_is_still_being_applied(gql, client, hotspot):
    first = pay(gql, client, hotspot)
    hotspot.fake.set_down()
    renewal = pay(gql, client, hotspot, renewCode=first.activation.access_code)
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
