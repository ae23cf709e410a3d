"""A COMPLETE webhook puts the customer online on the (fake) MikroTik, over the real RouterOS API client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from network.activation import ACCESS_CODE_ALPHABET
from network.models import Activation, Router
from tests.fakes.routeros_server import HOTSPOT_LOGIN_FAILED, PROFILE
from tests.network.conftest import (
    IP,
    MAC,
    ROUTER_PASSWORD,
    ROUTER_USER,
    activation_of,
    deliver_webhook,
    initiate,
    pay,
    scheduled_retries,
)

pytestmark = pytest.mark.django_db(transaction=True)

CREATE_ROUTER = """
mutation($input: CreateRouterInput!) { createRouter(input: $input) { router { id lastContactAt } errors { code } } }
"""
CREATE_PACKAGE = """
mutation($input: CreatePackageInput!) { createPackage(input: $input) { package { id } errors { code message } } }
"""
ROUTERS = "{ routers { id lastContactAt } }"

CODE_RE = re.compile(f"^[{ACCESS_CODE_ALPHABET}]{{8}}$")


def test_complete_webhook_puts_the_customer_online(gql, client, shop, fake_router):
    auth = shop.operator.auth
    router = gql(
        CREATE_ROUTER,
        {
            "input": {
                "name": "Kibera hAP",
                "host": fake_router.host,
                "apiPort": fake_router.port,
                "username": ROUTER_USER,
                "password": ROUTER_PASSWORD,
            }
        },
        **auth,
    )["data"]["createRouter"]
    assert router["errors"] == [] and router["router"]["lastContactAt"] is None
    package = gql(
        CREATE_PACKAGE,
        {
            "input": {
                "routerId": router["router"]["id"],
                "name": "3 Hours",
                "price": "50.00",
                "durationMinutes": 180,
                "uploadKbps": 2000,
                "downloadKbps": 5000,
                "sharedUsers": 2,
                "dataLimitMb": 1500,
            }
        },
        **auth,
    )["data"]["createPackage"]
    assert package["errors"] == []
    routing = {"routerId": router["router"]["id"], "packageId": package["package"]["id"], "amount": "50.00"}

    payment = pay(gql, client, shop, macAddress=MAC.lower(), ipAddress=IP, **routing)

    # The payer (portal key) sees the code; so does the operator.
    seen_by_payer = activation_of(gql, payment, **shop.operator.portal)
    assert seen_by_payer["status"] == "ACTIVE"
    assert seen_by_payer["attempts"] == 1 and seen_by_payer["lastError"] is None
    assert seen_by_payer["activatedAt"] is not None
    code = seen_by_payer["accessCode"]
    assert CODE_RE.match(code)
    assert activation_of(gql, payment, **auth)["accessCode"] == code

    profile_name = f"cloudpilot-pkg-{package['package']['id']}"
    [profile] = [p for p in fake_router.profiles if p["name"] == profile_name]
    assert profile["rate-limit"] == "2000k/5000k"  # upload/download
    assert profile["shared-users"] == "2"

    [user] = fake_router.users
    assert user["name"] == code and user["password"] == code
    assert user["profile"] == profile_name
    assert user["limit-uptime"] == f"{180 * 60}s"
    assert user["limit-bytes-total"] == str(1500 * 1_000_000)
    payment.refresh_from_db()
    expiry = int(payment.package_expiry_time.timestamp())
    assert user["comment"] == f"cloudpilot pay:{payment.pk};exp:{expiry}"
    assert Activation.objects.get(payment=payment).expires_at == payment.package_expiry_time

    # The device waiting on the login page was logged in with the portal's MAC and IP.
    [session] = fake_router.active
    assert (session["user"], session["mac-address"], session["address"]) == (code, MAC, IP)
    assert [(c["user"], c["mac-address"]) for c in fake_router.cookies] == [(code, MAC)]

    [listed] = [r for r in gql(ROUTERS, **auth)["data"]["routers"] if r["id"] == router["router"]["id"]]
    assert listed["lastContactAt"] is not None


def test_data_capless_package_has_no_byte_limit_and_no_login_without_mac(gql, client, hotspot):
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    assert activation.status == "ACTIVE" and activation.last_error == ""
    [user] = hotspot.fake.users
    assert "limit-bytes-total" not in user
    assert user["limit-uptime"] == "3600s"
    assert "/ip/hotspot/active/login" not in hotspot.fake.command_paths()
    assert hotspot.fake.active == []


def test_webhook_replay_never_creates_a_second_user(gql, client, hotspot):
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    assert hotspot.fake.command_paths().count("/ip/hotspot/user/add") == 1
    hotspot.fake.clear_commands()
    for _ in range(5):
        deliver_webhook(client, hotspot, payment)
    assert len(hotspot.fake.users) == 1
    assert hotspot.fake.commands == []
    activation = Activation.objects.get(payment=payment)
    assert activation.attempts == 1 and activation.status == "ACTIVE"


def test_rerunning_the_job_after_success_is_a_no_op(gql, client, hotspot):
    from network.tasks import activate_customer

    payment = pay(gql, client, hotspot)
    hotspot.fake.clear_commands()
    activate_customer(payment.activation.pk)
    assert hotspot.fake.commands == []  # not even a connection
    assert Activation.objects.get(payment=payment).attempts == 1


def test_device_login_failure_is_recorded_and_the_activation_is_still_active(gql, client, hotspot):
    hotspot.fake.fail_hotspot_logins(HOTSPOT_LOGIN_FAILED)
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)

    activation = activation_of(gql, payment, **hotspot.operator.auth)
    assert activation["status"] == "ACTIVE"
    assert "Automatic login of the device failed" in activation["lastError"]
    assert HOTSPOT_LOGIN_FAILED in activation["lastError"]
    assert activation["accessCode"] in [u["name"] for u in hotspot.fake.users]
    assert hotspot.fake.active == []
    assert scheduled_retries() == []  # not retried: the customer can type the code


def test_completion_sends_only_user_add_and_the_device_login(gql, client, hotspot):
    pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    # The profile is the profile sync's: no print or set of it on the way to online.
    assert hotspot.fake.command_paths() == ["/login", "/ip/hotspot/user/add", "/ip/hotspot/active/login"]
    assert [s["mac-address"] for s in hotspot.fake.active] == [MAC]


def test_a_profile_missing_on_the_router_is_created_and_the_user_added_again(gql, client, hotspot):
    # The router was reset (or the package's sync never ran): it has no profile for the package.
    hotspot.fake.delete_rows(PROFILE, name=hotspot.package.profile_name)
    pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    assert hotspot.fake.command_paths() == [
        "/login",
        "/ip/hotspot/user/add",  # refused: no such profile
        "/ip/hotspot/user/profile/print",
        "/ip/hotspot/user/profile/add",
        "/ip/hotspot/user/add",
        "/ip/hotspot/active/login",
    ]
    [profile] = [p for p in hotspot.fake.profiles if p["name"] == hotspot.package.profile_name]
    assert profile["rate-limit"] == "1024k/2048k" and profile["shared-users"] == "1"
    [user] = hotspot.fake.users
    assert user["profile"] == hotspot.package.profile_name


def test_a_renewal_on_a_router_that_lost_the_profile_puts_it_back(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    code = Activation.objects.get(payment=first).access_code
    hotspot.fake.delete_rows(PROFILE, name=hotspot.package.profile_name)
    renewal = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP, renewCode=code)

    activation = Activation.objects.get(payment=renewal)
    assert activation.status == "ACTIVE" and activation.access_code == code
    assert [p["name"] for p in hotspot.fake.profiles].count(hotspot.package.profile_name) == 1
    [user] = hotspot.fake.users
    assert user["limit-uptime"] == f"{2 * 3600}s"


def test_activation_updates_the_routers_last_contact(gql, client, hotspot):
    assert hotspot.router.last_contact_at is None
    pay(gql, client, hotspot)
    assert Router.objects.get(pk=hotspot.router.pk).last_contact_at is not None


def test_every_activation_change_is_published_to_subscribers(gql, client, hotspot, monkeypatch):
    import billing.notifications as notifications

    published: list[str] = []
    real = notifications.publish_payment_changed

    def spy(*, payment_id, operator_id):
        published.append(str(payment_id))
        real(payment_id=payment_id, operator_id=operator_id)

    payment = initiate(gql, hotspot)
    monkeypatch.setattr(notifications, "publish_payment_changed", spy)
    hotspot.fake.set_down()
    hotspot.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver_webhook(client, hotspot, payment)
    # (billing publishes the completion itself) the attempt's claim (attempts 1), its failure (lastError)
    assert published == [str(payment.pk)] * 2
    from tests.network.conftest import run_due_retries

    hotspot.fake.set_down(False)
    run_due_retries()
    assert published == [str(payment.pk)] * 4  # claim (attempts 2), ACTIVE
    assert Activation.objects.get(payment=payment).status == "ACTIVE"


def test_a_late_activation_runs_for_the_full_duration_from_when_it_got_online(gql, client, hotspot, settings):
    from network.activation import activation_perform

    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    # As if the router had only been reached an hour after the payment, after an operator's retry.
    late = payment.completed_at - timedelta(hours=1)
    type(payment).objects.filter(pk=payment.pk).update(
        completed_at=late, package_expiry_time=late + timedelta(minutes=60)
    )
    Activation.objects.filter(pk=activation.pk).update(status="PENDING")
    activation_perform(activation.pk, final_attempt=True)
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"
    assert activation.expires_at >= activation.activated_at + timedelta(minutes=60) - timedelta(seconds=1)
