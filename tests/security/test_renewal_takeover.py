"""Issue 9, item 2: nobody takes over another customer's access code by "renewing" it.

A renewal happens only when the payer presents the code (``PaymentInput.renewCode``) and buys the same
package again; a MAC address or phone number typed into a payment never decides it (API.md "Access").
Everything runs against the loopback IntaSend and RouterOS fakes, through GraphQL with the public key.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from billing.models import Payment
from network.models import Activation
from tests.documents import CREATE_LINK, INITIATE
from tests.network import conftest as network
from tests.network.conftest import CHALLENGE, deliver_webhook, pay

pytestmark = pytest.mark.django_db(transaction=True)

# The shop wired to a loopback MikroTik, from the network tests (with their autouse knobs).
hotspot, fake_router = network.hotspot, network.fake_router
_activation_knobs, _no_leftover_retries = network._activation_knobs, network._no_leftover_retries

VICTIM_MAC = "02:00:00:00:00:01"
VICTIM_IP = "10.5.50.31"
VICTIM_PHONE = "0712345678"
ATTACKER_PHONE = "0733000999"
RENEW_KEY = "renewal-idempotency-key-0123456789abcdef"
CODE_INVALID = {
    "field": "renewCode",
    "code": "CODE_INVALID",
    "message": "This code cannot be renewed with this package",
}


@pytest.fixture
def capped(hotspot, operator):
    """The victim's package: 1 GB for 30 KES (the shop's 25 KES hour has no data cap)."""
    return operator.add_package(hotspot.router, price="30.00", name="1 GB", data_limit_mb=1000)


@pytest.fixture
def victim(gql, client, hotspot, capped) -> Activation:
    payment = pay(
        gql,
        client,
        hotspot,
        packageId=str(capped.pk),
        amount="30.00",
        phoneNumber=VICTIM_PHONE,
        macAddress=VICTIM_MAC,
        ipAddress=VICTIM_IP,
    )
    activation = Activation.objects.get(payment=payment)
    assert activation.status == "ACTIVE"
    return activation


def _router_user(hotspot, name: str) -> dict:
    [user] = [u for u in hotspot.fake.users if u["name"] == name]
    return user


def _initiate_errors(gql, hotspot, **overrides) -> list[dict]:
    result = gql(INITIATE, {"input": hotspot.payment_input(**overrides)}, public_key=hotspot.operator.public_key)
    return result["data"]["initiatePayment"]["errors"]


def _snapshot(hotspot) -> tuple[int, int]:
    """What reached IntaSend and what was recorded so far."""
    return len(hotspot.intasend.requests), Payment.objects.count()


def test_paying_with_the_victims_mac_in_another_format_gets_a_fresh_code(gql, client, hotspot, victim):
    before = dict(_router_user(hotspot, victim.access_code))
    assert before["limit-bytes-total"] == str(1000 * 1_000_000)

    attacker = pay(gql, client, hotspot, phoneNumber=ATTACKER_PHONE, macAddress=VICTIM_MAC.replace(":", "-"))

    attack = Activation.objects.get(payment=attacker)
    assert attack.status == "ACTIVE"
    assert attack.access_code != victim.access_code and attack.renewal_of_id is None
    # The victim's router user is exactly as it was: same profile, same uptime, the 1 GB cap kept.
    assert _router_user(hotspot, victim.access_code) == before
    victim.refresh_from_db()
    assert victim.status == "ACTIVE" and not victim.renewals.exists()


def test_payment_link_with_the_victims_phone_paid_from_another_phone_gets_a_fresh_code(gql, client, hotspot, victim):
    before = dict(_router_user(hotspot, victim.access_code))
    result = gql(
        CREATE_LINK,
        {"input": hotspot.payment_input(phoneNumber=VICTIM_PHONE)},
        public_key=hotspot.operator.public_key,
    )["data"]["createPaymentLink"]
    assert result["errors"] == []
    link = Payment.objects.get(pk=result["payment"]["id"])
    invoice = hotspot.intasend.pay_checkout(link.intasend_checkout_id, account="254733000999", webhook=False)
    body = hotspot.intasend.webhook_body(invoice.invoice_id, challenge=CHALLENGE)
    response = client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    link.refresh_from_db()
    assert link.status == "COMPLETED"

    attack = Activation.objects.get(payment=link)
    assert attack.status == "ACTIVE" and attack.access_code != victim.access_code
    assert _router_user(hotspot, victim.access_code) == before


def test_renew_code_of_another_router_is_code_invalid_and_nothing_is_sent(gql, hotspot, operator, victim):
    other_router = operator.add_router(name="Back Street")
    other_package = operator.add_package(other_router, price="30.00", name="1 GB", data_limit_mb=1000)
    before = _snapshot(hotspot)
    errors = _initiate_errors(
        gql,
        hotspot,
        routerId=str(other_router.pk),
        packageId=str(other_package.pk),
        amount="30.00",
        phoneNumber=ATTACKER_PHONE,
        renewCode=victim.access_code,
    )
    assert errors == [CODE_INVALID]
    assert _snapshot(hotspot) == before  # nothing sent to IntaSend, nothing recorded


def test_renew_code_with_another_package_is_code_invalid_and_the_cap_stays(gql, client, hotspot, victim):
    user_before = dict(_router_user(hotspot, victim.access_code))
    before = _snapshot(hotspot)
    # The cheap uncapped hour cannot be stacked on the 1 GB code: same answer as an unknown code.
    assert _initiate_errors(gql, hotspot, phoneNumber=VICTIM_PHONE, renewCode=victim.access_code) == [CODE_INVALID]
    link = gql(
        CREATE_LINK,
        {"input": hotspot.payment_input(renewCode=victim.access_code)},
        public_key=hotspot.operator.public_key,
    )["data"]["createPaymentLink"]
    assert link["errors"] == [CODE_INVALID] and link["payment"] is None
    assert _snapshot(hotspot) == before  # nothing sent to IntaSend, nothing recorded
    assert _router_user(hotspot, victim.access_code) == user_before


def test_unknown_or_ended_renew_code_is_code_invalid_and_nothing_is_sent(gql, hotspot, capped, victim):
    before = _snapshot(hotspot)
    for code in ("ZZZZZZZZ", victim.access_code + "X" * 20):
        assert _initiate_errors(gql, hotspot, packageId=str(capped.pk), amount="30.00", renewCode=code) == [
            CODE_INVALID
        ]
    Activation.objects.filter(pk=victim.pk).update(expires_at=victim.expires_at - timedelta(hours=2))
    assert _initiate_errors(gql, hotspot, packageId=str(capped.pk), amount="30.00", renewCode=victim.access_code) == [
        CODE_INVALID
    ]
    assert _snapshot(hotspot) == before  # nothing sent to IntaSend, nothing recorded


def test_same_package_renew_code_extends_the_grant_with_the_same_code(gql, client, hotspot, capped, victim):
    renewal = pay(
        gql, client, hotspot, packageId=str(capped.pk), amount="30.00", renewCode=f" {victim.access_code.lower()} "
    )
    extended = Activation.objects.get(payment=renewal)
    assert renewal.renews_id == victim.pk
    assert extended.status == "ACTIVE" and extended.access_code == victim.access_code
    assert extended.renewal_of_id == victim.pk
    assert extended.expires_at == victim.expires_at + timedelta(minutes=capped.duration_minutes)
    user = _router_user(hotspot, victim.access_code)
    assert user["limit-bytes-total"] == str(2 * 1000 * 1_000_000)  # caps add up, never vanish
    assert user["limit-uptime"] == f"{2 * 3600}s"
    assert user["profile"] == capped.profile_name
    assert len(hotspot.fake.users) == 1


def test_idempotency_key_replayed_with_another_renew_code_is_a_mismatch(gql, hotspot, capped, victim):
    first = gql(
        INITIATE,
        {"input": hotspot.payment_input(packageId=str(capped.pk), amount="30.00", idempotencyKey=RENEW_KEY)},
        public_key=hotspot.operator.public_key,
    )["data"]["initiatePayment"]
    assert first["errors"] == []
    errors = _initiate_errors(
        gql,
        hotspot,
        packageId=str(capped.pk),
        amount="30.00",
        idempotencyKey=RENEW_KEY,
        renewCode=victim.access_code,
    )
    assert [e["code"] for e in errors] == ["IDEMPOTENCY_MISMATCH"]


def test_a_renewal_whose_grant_ended_before_the_money_arrived_gets_a_fresh_code(gql, client, hotspot, capped, victim):
    payment_input = hotspot.payment_input(packageId=str(capped.pk), amount="30.00", renewCode=victim.access_code)
    result = gql(INITIATE, {"input": payment_input}, public_key=hotspot.operator.public_key)["data"]
    assert result["initiatePayment"]["errors"] == []
    renewal = Payment.objects.get(pk=result["initiatePayment"]["payment"]["id"])
    # The grant is over (expired on the router) before the customer approves the prompt.
    Activation.objects.filter(pk=victim.pk).update(status="EXPIRED")
    hotspot.intasend.settle(renewal.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver_webhook(client, hotspot, renewal)
    fresh = Activation.objects.get(payment=renewal)
    assert fresh.status == "ACTIVE" and fresh.access_code != victim.access_code and fresh.renewal_of_id is None


def test_guessing_renewal_codes_counts_in_the_code_budget_and_is_then_refused(gql, hotspot, settings):
    settings.CODE_FAILURES_PER_ROUTER = 3
    settings.CODE_FAILURE_WINDOW_SECONDS = 10**6
    guesses = [f"GUESS{index:03d}" for index in range(4)]
    answers = []
    for index, guess in enumerate(guesses):
        payload = hotspot.payment_input(renewCode=guess, phoneNumber=f"07330009{index:02d}")
        answers.append(gql(INITIATE, {"input": payload}, public_key=hotspot.operator.public_key))
    errors = [answer["data"]["initiatePayment"]["errors"] for answer in answers]
    assert errors[:3] == [[CODE_INVALID]] * 3
    assert [(e["field"], e["code"]) for e in errors[3]] == [("renewCode", "RATE_LIMITED")]
    assert not Payment.objects.filter(renews__isnull=False).exists()
    # A purchase without a code is not held up: the customer gets a new code.
    fresh = gql(INITIATE, {"input": hotspot.payment_input()}, public_key=hotspot.operator.public_key)
    assert fresh["data"]["initiatePayment"]["errors"] == []
