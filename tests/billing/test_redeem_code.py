"""redeemCode and accessStatus: every kind of code, every refusal, device slots on a loopback router.

The resolvers run their work off the request thread (project.db_threads.router_io), on connections of
their own: the tests commit (transaction=True) so those threads see the rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from billing import access
from billing.models import Payment, Voucher, VoucherBatch
from network.activation import activation_grant
from network.models import Activation, Package, Router
from network.services import package_profile_sync
from network.tasks import activate_customer
from project import throttling
from project.errors import ApplicationError, ErrorCode
from project.schema import schema
from tests.fakes.routeros_server import FakeRouterOS

pytestmark = pytest.mark.django_db(transaction=True)

MAC1, MAC2, MAC3 = "AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02", "AA:BB:CC:DD:EE:03"
IP1, IP2, IP3 = "10.5.50.11", "10.5.50.12", "10.5.50.13"
VOUCHER_CODE = "ABCDEFGHJKLM"
RECEIPT = "SGR7K3L2QX"

REDEEM = """
mutation($input: RedeemCodeInput!) {
  redeemCode(input: $input) {
    kind
    activation { id status accessCode expiresAt source package { id sharedUsers } }
    errors { field code message }
  }
}"""
STATUS = """
query($routerId: ID!, $code: String!) {
  accessStatus(routerId: $routerId, code: $code) {
    status expiresAt devicesAllowed package { id name } errors { field code message }
  }
}"""


@pytest.fixture(autouse=True)
def _knobs(settings) -> None:
    settings.ROUTER_API_TIMEOUT_SECONDS = 2
    settings.ACTIVATION_RETRIES = 1
    settings.CODE_FAILURE_WINDOW_SECONDS = 10**6  # nothing slides out while a slow machine runs the test


@pytest.fixture(autouse=True)
def _no_scheduled_retries() -> Iterator[None]:
    """An activation that failed leaves its retry on Huey's schedule: not for the next test."""
    yield
    for task in HUEY.read_schedule(timezone.now().replace(tzinfo=None) + timedelta(days=3650)):
        if not isinstance(task, activate_customer.task_class):
            HUEY.add_schedule(task)


@pytest.fixture
def fake_router() -> Iterator[FakeRouterOS]:
    with FakeRouterOS(username="cloudpilot", password="router-pass-123") as fake:
        yield fake


class Spot:
    """Alice's hotspot on the fake router: a 1-hour package for two devices."""

    def __init__(self, operator, fake: FakeRouterOS) -> None:
        self.operator = operator
        self.fake = fake
        self.router = operator.add_router(host=fake.host, port=fake.port)
        package = operator.add_package(self.router)
        Package.objects.filter(pk=package.pk).update(shared_users=2)
        package_profile_sync(package_id=package.pk)  # as updatePackage's sync job would
        self.package = Package.objects.get(pk=package.pk)
        self.client = Client()

    def post(self, query: str, variables: dict, *, public_key: str | None = None, remote_addr: str = "10.0.0.1"):
        response = self.client.post(
            "/graphql/",
            data=json.dumps({"query": query, "variables": variables}),
            content_type="application/json",
            headers={"X-Public-Key": public_key or self.operator.public_key},
            REMOTE_ADDR=remote_addr,
        )
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def redeem(self, code: str, mac: str | None = MAC1, ip: str | None = IP1, **kwargs) -> dict:
        variables = {"routerId": str(kwargs.pop("router_id", self.router.pk)), "code": code}
        if mac is not None:
            variables["macAddress"] = mac
        if ip is not None:
            variables["ipAddress"] = ip
        return self.post(REDEEM, {"input": variables}, **kwargs)["redeemCode"]

    def status(self, code: str, **kwargs) -> dict:
        router_id = str(kwargs.pop("router_id", self.router.pk))
        return self.post(STATUS, {"routerId": router_id, "code": code}, **kwargs)["accessStatus"]

    def voucher(self, code: str = VOUCHER_CODE, *, valid_until=None, router: Router | None = None, **fields):
        router = router or self.router
        package = (
            self.package
            if router == self.router
            else Package.objects.create(router=router, name="1 Hour", price=self.package.price, duration_minutes=60)
        )
        batch = VoucherBatch.objects.create(
            owner=router.owner, router=router, package=package, price=package.price, count=1, valid_until=valid_until
        )
        return Voucher.objects.create(batch=batch, router=router, code=code, **fields)

    def paid_grant(self, *, receipt: str = RECEIPT, mac: str = MAC1, ip: str = IP1, **payment_fields) -> Activation:
        """A completed payment whose grant the router has taken (the first device logged in)."""
        payment = self.operator.add_paid_payment(
            self.router, self.package, mpesa_reference=receipt, mac_address=mac, ip_address=ip, **payment_fields
        )
        with transaction.atomic():
            grant = activation_grant(
                source=Activation.Source.PAYMENT,
                owner=self.operator.user,
                router=self.router,
                package=self.package,
                expires_at=payment.package_expiry_time,
                mac_address=mac,
                ip_address=ip,
                reference=str(payment.pk),
            )
            Payment.objects.filter(pk=payment.pk).update(activation=grant)
        grant.refresh_from_db()
        assert grant.status == Activation.Status.ACTIVE, grant.last_error
        return grant

    def sessions(self, code: str) -> list[str]:
        return sorted(row["mac-address"] for row in self.fake.active if row["user"] == code)


@pytest.fixture
def spot(operator, fake_router) -> Spot:
    return Spot(operator, fake_router)


def codes(result: dict) -> list[str]:
    return [error["code"] for error in result["errors"]]


# --- Vouchers ---------------------------------------------------------------------------------------


def test_voucher_redeems_into_an_active_grant_with_its_code(spot):
    voucher = spot.voucher()

    result = spot.redeem("abcd-efgh jklm")  # as printed, typed in lower case

    assert result["errors"] == [] and result["kind"] == "VOUCHER"
    activation = result["activation"]
    assert activation["accessCode"] == VOUCHER_CODE and activation["source"] == "VOUCHER"
    assert activation["status"] == "ACTIVE"  # the job ran on commit (Huey's immediate mode in tests)
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.REDEEMED and voucher.redeemed_at is not None
    assert str(voucher.activation_id) == activation["id"]
    grant = voucher.activation
    assert grant.reference == str(voucher.pk) and grant.package_id == spot.package.pk
    minutes = (grant.expires_at - grant.granted_at).total_seconds() / 60
    assert minutes == pytest.approx(spot.package.duration_minutes, abs=1)
    assert spot.sessions(VOUCHER_CODE) == [MAC1]  # the activation job logged this device in


def test_redeemed_voucher_is_the_access_code_of_its_grant_for_further_devices(spot):
    spot.voucher()
    first = spot.redeem(VOUCHER_CODE)["activation"]

    second = spot.redeem(VOUCHER_CODE, mac=MAC2, ip=IP2)
    assert second["errors"] == [] and second["kind"] == "ACCESS_CODE"
    assert second["activation"]["id"] == first["id"] and second["activation"]["accessCode"] == VOUCHER_CODE
    assert spot.sessions(VOUCHER_CODE) == [MAC1, MAC2]

    third = spot.redeem(VOUCHER_CODE, mac=MAC3, ip=IP3)  # two devices allowed
    assert codes(third) == ["DEVICE_LIMIT_REACHED"] and third["activation"] is None
    assert spot.sessions(VOUCHER_CODE) == [MAC1, MAC2]

    again = spot.redeem(VOUCHER_CODE, mac=MAC2, ip=IP2)  # a device already online is fine
    assert again["errors"] == [] and again["activation"]["id"] == first["id"]
    assert Activation.objects.filter(source=Activation.Source.VOUCHER).count() == 1


def test_voucher_of_a_batch_past_its_end_is_expired(spot):
    voucher = spot.voucher(valid_until=timezone.now() - timedelta(minutes=1))
    result = spot.redeem(VOUCHER_CODE)
    assert codes(result) == ["CODE_EXPIRED"] and result["activation"] is None
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.UNUSED and not Activation.objects.exists()


def test_revoked_voucher_is_invalid_like_an_unknown_one(spot):
    spot.voucher(status=Voucher.Status.REVOKED, revoked_at=timezone.now())
    revoked = spot.redeem(VOUCHER_CODE)
    unknown = spot.redeem("ABCDEFGHJKLN")
    assert revoked == unknown
    assert codes(revoked) == ["CODE_INVALID"] and not Activation.objects.exists()


def test_voucher_grant_stays_pending_when_the_router_is_down(spot):
    spot.voucher()
    spot.fake.set_down()
    result = spot.redeem(VOUCHER_CODE)
    assert result["errors"] == [] and result["kind"] == "VOUCHER"
    assert result["activation"]["status"] == "PENDING" and result["activation"]["accessCode"] == VOUCHER_CODE
    assert Voucher.objects.get().status == Voucher.Status.REDEEMED  # consumed: the grant exists and is retried


# --- Access codes and receipts -------------------------------------------------------------------------


def test_access_code_logs_a_second_device_in_then_the_slots_are_full(spot):
    grant = spot.paid_grant()
    assert spot.sessions(grant.access_code) == [MAC1]

    second = spot.redeem(grant.access_code.lower(), mac=MAC2, ip=IP2)
    assert second["errors"] == [] and second["kind"] == "ACCESS_CODE"
    assert second["activation"]["id"] == str(grant.pk) and second["activation"]["accessCode"] == grant.access_code
    assert spot.sessions(grant.access_code) == [MAC1, MAC2]

    third = spot.redeem(grant.access_code, mac=MAC3, ip=IP3)
    assert codes(third) == ["DEVICE_LIMIT_REACHED"] and third["activation"] is None


def test_mpesa_receipt_of_a_completed_payment_reconnects_a_device(spot):
    grant = spot.paid_grant()
    result = spot.redeem(RECEIPT.lower(), mac=MAC2, ip=IP2)
    assert result["errors"] == [] and result["kind"] == "MPESA_RECEIPT"
    assert result["activation"]["id"] == str(grant.pk) and result["activation"]["accessCode"] == grant.access_code
    assert spot.sessions(grant.access_code) == [MAC1, MAC2]


def test_receipt_of_a_payment_not_completed_or_on_another_router_is_invalid(spot):
    spot.paid_grant()
    Payment.objects.create(
        owner=spot.operator.user,
        router=spot.router,
        package=spot.package,
        amount=spot.package.price,
        status=Payment.Status.FAILED,
        mpesa_reference="QWE4RTY5UI",
        paid_after_failure=True,
    )
    other_router = spot.operator.add_router(name="Other", host=spot.fake.host, port=spot.fake.port)
    assert codes(spot.redeem("QWE4RTY5UI")) == ["CODE_INVALID"]
    assert codes(spot.redeem(RECEIPT, router_id=other_router.pk)) == ["CODE_INVALID"]


def test_without_ip_the_device_is_counted_and_left_to_the_login_page(spot):
    grant = spot.paid_grant()
    result = spot.redeem(grant.access_code, mac=MAC2, ip=None)
    assert result["errors"] == [] and result["activation"]["accessCode"] == grant.access_code
    assert spot.sessions(grant.access_code) == [MAC1]  # the router needs the IP to log it in itself


def test_router_refusing_the_login_leaves_the_device_to_the_login_page(spot):
    grant = spot.paid_grant()
    spot.fake.fail_hotspot_logins("your device is not on the hotspot")
    result = spot.redeem(grant.access_code, mac=MAC2, ip=IP2)
    assert result["errors"] == [] and result["activation"]["accessCode"] == grant.access_code


def test_router_refusing_a_further_session_is_the_device_limit(spot):
    """Our count and the router's can disagree (a device logged in meanwhile, a profile not synced yet):
    the router's own refusal answers DEVICE_LIMIT_REACHED too."""
    grant = spot.paid_grant()
    spot.redeem(grant.access_code, mac=MAC2, ip=IP2)
    Package.objects.filter(pk=spot.package.pk).update(shared_users=3)  # the router's profile still says 2
    result = spot.redeem(grant.access_code, mac=MAC3, ip=IP3)
    assert codes(result) == ["DEVICE_LIMIT_REACHED"]
    assert spot.sessions(grant.access_code) == [MAC1, MAC2]


def test_router_down_on_a_further_device_answers_unreachable_with_the_grant(spot):
    grant = spot.paid_grant()
    spot.fake.set_down()
    result = spot.redeem(grant.access_code, mac=MAC2, ip=IP2)
    assert codes(result) == ["ROUTER_UNREACHABLE"] and result["kind"] == "ACCESS_CODE"
    assert result["activation"]["id"] == str(grant.pk) and result["activation"]["status"] == "ACTIVE"
    grant.refresh_from_db()
    assert grant.status == Activation.Status.ACTIVE and grant.mac_address == MAC1


def test_failed_grant_with_time_left_is_started_again_for_the_device(spot):
    grant = spot.paid_grant()
    Activation.objects.filter(pk=grant.pk).update(status=Activation.Status.FAILED, last_error="router was down")
    result = spot.redeem(grant.access_code, mac=MAC2, ip=IP2)
    assert result["errors"] == [] and result["activation"]["status"] == "ACTIVE"
    grant.refresh_from_db()
    assert grant.status == Activation.Status.ACTIVE and grant.mac_address == MAC2
    assert MAC2 in spot.sessions(grant.access_code)


def test_ended_code_is_expired_and_revoked_code_is_invalid(spot):
    grant = spot.paid_grant()
    Activation.objects.filter(pk=grant.pk).update(status=Activation.Status.EXPIRED)
    assert codes(spot.redeem(grant.access_code, mac=MAC2)) == ["CODE_EXPIRED"]
    assert codes(spot.status(grant.access_code)) == ["CODE_EXPIRED"]
    Activation.objects.filter(pk=grant.pk).update(
        status=Activation.Status.ACTIVE, expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert codes(spot.redeem(grant.access_code, mac=MAC2)) == ["CODE_EXPIRED"]
    Activation.objects.filter(pk=grant.pk).update(status=Activation.Status.REVOKED)
    revoked = spot.redeem(grant.access_code, mac=MAC2)
    assert revoked == spot.redeem("ZZZZ2222", mac=MAC2)
    assert codes(revoked) == ["CODE_INVALID"]


def test_newest_grant_of_a_renewed_code_answers(spot):
    grant = spot.paid_grant()
    later = timezone.now() + timedelta(hours=5)
    renewal = Activation.objects.create(
        source=Activation.Source.PAYMENT,
        owner=spot.operator.user,
        router=spot.router,
        package=spot.package,
        access_code=grant.access_code,
        status=Activation.Status.ACTIVE,
        expires_at=later,
        renewal_of=grant,
    )
    status = spot.status(grant.access_code)
    assert status["errors"] == [] and status["expiresAt"] == later.isoformat()
    assert spot.redeem(RECEIPT, mac=MAC2, ip=IP2)["activation"]["id"] == str(renewal.pk)


# --- One answer for every wrong code -------------------------------------------------------------------


def test_every_wrong_code_gets_the_same_answer_and_no_router_is_asked(spot, other_operator):
    spot.voucher()
    grant = spot.paid_grant()
    other_router = spot.operator.add_router(name="Second", host=spot.fake.host, port=spot.fake.port)
    spot.voucher("MNPQRSTUVWXY", router=other_router)
    bob_router = other_operator.add_router(name="Bob's", host=spot.fake.host, port=spot.fake.port)
    spot.voucher("ZYXWVUTSRQPN", router=bob_router)
    spot.fake.clear_commands()
    wrong = [
        "",
        "   ",
        "ABC",
        "ABCDEFGHJKL",  # 11
        "ABCDEFGHJKLMN",  # 13
        "ABCDEFGHJKL0",  # 0 is not in the alphabet
        "ABCDEFGHJKLI",
        "ＡＢＣＤＥＦＧＨＪＫＬＭ",  # full-width look-alikes of a real voucher
        "ABCDEFGHJKLM\x01",
        "MNPQRSTUVWXY",  # a voucher of Alice's other router
        "ZYXWVUTSRQPN",  # a voucher of Bob's
        grant.access_code[:-1] + ("2" if grant.access_code[-1] != "2" else "3"),
        "1234567890",  # not a receipt: it starts with a digit
        "SGR7K3L2QY",
        "A" * 10_000,
        "' OR 1=1 --",
    ]
    answers = []
    for index, code in enumerate(wrong):
        mac = f"AA:BB:CC:00:00:{index:02X}"  # fresh devices: the per-device budget is not what answers here
        answers.append(spot.redeem(code, mac=mac))
    assert {json.dumps(answer, sort_keys=True) for answer in answers} == {
        json.dumps(
            {
                "kind": None,
                "activation": None,
                "errors": [
                    {
                        "field": "code",
                        "code": "CODE_INVALID",
                        "message": "This code is not valid here. Check it and try again.",
                    }
                ],
            },
            sort_keys=True,
        )
    }
    assert spot.fake.commands == []
    assert Voucher.objects.filter(status=Voucher.Status.UNUSED).count() == 3


def test_other_operators_router_is_not_found(spot, other_operator):
    bob_router = other_operator.add_router(name="Bob's")
    result = spot.redeem(VOUCHER_CODE, router_id=bob_router.pk)
    assert codes(result) == ["ROUTER_NOT_FOUND"]
    assert codes(spot.status(VOUCHER_CODE, router_id=bob_router.pk)) == ["ROUTER_NOT_FOUND"]
    assert codes(spot.redeem(VOUCHER_CODE, router_id="not-a-number")) == ["ROUTER_NOT_FOUND"]


def test_mac_is_required_and_every_invalid_field_is_reported(spot):
    spot.voucher()
    assert codes(spot.redeem(VOUCHER_CODE, mac=None)) == ["INVALID_MAC"]
    assert codes(spot.redeem(VOUCHER_CODE, mac="  ")) == ["INVALID_MAC"]
    both = spot.redeem(VOUCHER_CODE, mac="AA:BB:CC:DD:EE", ip="10.0.0.300")
    assert sorted((e["field"], e["code"]) for e in both["errors"]) == [
        ("ipAddress", "INVALID_IP"),
        ("macAddress", "INVALID_MAC"),
    ]
    assert Voucher.objects.get().status == Voucher.Status.UNUSED


# --- accessStatus ----------------------------------------------------------------------------------------


def test_access_status_for_codes_the_device_holds(spot):
    grant = spot.paid_grant()
    for code in (grant.access_code, grant.access_code.lower(), RECEIPT):
        status = spot.status(code)
        assert status["errors"] == [] and status["status"] == "ACTIVE"
        assert status["expiresAt"] == grant.expires_at.isoformat() and status["devicesAllowed"] == 2
        assert status["package"]["id"] == str(spot.package.pk)


def test_access_status_of_an_unused_voucher_is_invalid_and_of_a_redeemed_one_its_grant(spot):
    spot.voucher()
    assert codes(spot.status(VOUCHER_CODE)) == ["CODE_INVALID"]
    spot.fake.set_down()
    spot.redeem(VOUCHER_CODE)
    status = spot.status(VOUCHER_CODE)
    assert status["errors"] == [] and status["status"] == "PENDING"
    assert spot.fake.connection_count > 0 and Voucher.objects.get().status == Voucher.Status.REDEEMED


def test_the_access_code_is_shown_to_nobody_but_who_presented_the_code(spot, other_operator):
    grant = spot.paid_grant()
    fields = schema.get_type_by_name("AccessStatus").fields
    assert {"status", "expires_at"} <= {field.python_name for field in fields}
    assert not [field for field in fields if "code" in field.python_name]
    bob_key = other_operator.public_key
    for answer in (
        spot.redeem("ZZZZ2222", mac=MAC2),
        spot.redeem(grant.access_code, mac=MAC2, public_key=bob_key),
        spot.status(grant.access_code, public_key=bob_key),
        spot.status("ZZZZ2222"),
    ):
        assert grant.access_code not in json.dumps(answer)


# --- Throttle --------------------------------------------------------------------------------------------


def test_device_is_rate_limited_after_a_few_wrong_codes_even_for_a_good_one(spot, settings):
    settings.CODE_FAILURES_PER_DEVICE = 3
    spot.voucher()
    for wrong in ("ZZZZ2222", "ZZZZ3333", "ZZZZ4444"):
        assert codes(spot.redeem(wrong)) == ["CODE_INVALID"]
    assert codes(spot.redeem(VOUCHER_CODE)) == ["RATE_LIMITED"]
    assert Voucher.objects.get().status == Voucher.Status.UNUSED  # not even looked up
    assert spot.redeem(VOUCHER_CODE, mac=MAC2, ip=IP2)["kind"] == "VOUCHER"  # another device is not locked


def test_successes_do_not_count(spot, settings):
    settings.CODE_FAILURES_PER_DEVICE = 2
    grant = spot.paid_grant()
    for _ in range(5):
        assert spot.redeem(grant.access_code)["errors"] == []


def test_router_is_slowed_not_locked_and_a_good_code_still_gets_in(spot, settings):
    settings.CODE_FAILURES_PER_ROUTER = 4
    settings.CODE_ROUTER_SLOWED_PER_SECOND = 4
    settings.CODE_ROUTER_MAX_WAIT_SECONDS = 30
    settings.CODE_ROUTER_TURNS_PER_ADDRESS = 1000
    grant = spot.paid_grant()
    for index in range(4):  # rotating MACs: the per-device budget never bites
        assert codes(spot.redeem("ZZZZ2222", mac=f"AA:BB:CC:00:01:{index:02X}")) == ["CODE_INVALID"]
    started = time.monotonic()
    for index in range(8):
        assert codes(spot.redeem("ZZZZ2222", mac=f"AA:BB:CC:00:02:{index:02X}")) == ["CODE_INVALID"]
    assert time.monotonic() - started >= 7 / 4 - 0.3  # one turn each, 4 a second
    assert spot.redeem(grant.access_code, mac=MAC2, ip=IP2)["errors"] == []


def test_one_address_cannot_take_every_turn_of_a_slowed_router(spot, settings):
    settings.CODE_FAILURES_PER_ROUTER = 1
    settings.CODE_ROUTER_SLOWED_PER_SECOND = 50
    settings.CODE_ROUTER_TURNS_PER_ADDRESS = 3
    grant = spot.paid_grant()
    for index in range(4):  # the first failure slows the router; the next three take this address's turns
        answer = spot.redeem("ZZZZ2222", mac=f"AA:BB:CC:00:03:{index:02X}", remote_addr="203.0.113.9")
        assert codes(answer) == ["CODE_INVALID"]
    busy = spot.redeem(grant.access_code, mac=MAC2, ip=IP2, remote_addr="203.0.113.9")
    assert codes(busy) == ["RATE_LIMITED"]
    # Another address (the hotspot's customers behind NAT) still has its turns.
    assert spot.redeem(grant.access_code, mac=MAC2, ip=IP2, remote_addr="198.51.100.7")["errors"] == []


def test_hammering_does_not_push_an_addresss_turns_away(spot, settings):
    """Only turns given count against an address: a guesser behind the hotspot's NAT, refused again and
    again, does not keep its customers (the same address) from their share."""
    settings.CODE_FAILURES_PER_ROUTER = 1
    settings.CODE_ROUTER_TURNS_PER_ADDRESS = 2
    settings.CODE_ROUTER_MAX_WAIT_SECONDS = 2
    access.code_failure_record(router=spot.router)
    for _ in range(2):
        access._turn(spot.router, "198.51.100.7")
    for _ in range(20):
        with pytest.raises(ApplicationError):
            access._turn(spot.router, "198.51.100.7")
    time.sleep(2.3)  # the window slid past the two turns given; the twenty refusals weigh nothing
    assert access._turn(spot.router, "198.51.100.7") >= 0


def test_customers_address_keeps_its_lane_while_rotating_addresses_fill_the_other(spot, settings):
    settings.CODE_FAILURES_PER_ROUTER = 1
    settings.CODE_ROUTER_SLOWED_PER_SECOND = 1
    settings.CODE_ROUTER_MAX_WAIT_SECONDS = 3
    grant = spot.paid_grant()
    hotspot_address = "198.51.100.7"
    assert spot.status(grant.access_code, remote_addr=hotspot_address)["errors"] == []  # a customer, earlier
    access.code_failure_record(router=spot.router)  # now slowed
    # Turns are whole seconds: start just after one, so the attempts below all see the same horizon
    # (crossing into the next second would rightly open one more turn at its far end).
    time.sleep(1 - time.time() % 1)
    taken = 0
    with pytest.raises(ApplicationError) as refused:
        for index in range(100):  # a botnet: every attempt from another address
            access._turn(spot.router, f"10.9.0.{index}")
            taken += 1
    assert refused.value.code == ErrorCode.RATE_LIMITED and taken == 4  # the horizon's turns, 1 a second
    assert access._turn(spot.router, hotspot_address) <= 3
    assert spot.status(grant.access_code, remote_addr=hotspot_address)["errors"] == []


def test_one_good_code_vouches_for_three_addresses_only(spot, settings):
    grant = spot.paid_grant()
    for index in range(5):
        assert spot.status(grant.access_code, remote_addr=f"203.0.113.{index}")["errors"] == []
    vouched = [throttling.marked("code-good", f"{spot.router.pk}:203.0.113.{index}") for index in range(5)]
    assert vouched == [True, True, True, False, False]


def test_access_status_failures_count_towards_the_router_budget(spot, settings):
    settings.CODE_FAILURES_PER_ROUTER = 2
    settings.CODE_ROUTER_TURNS_PER_ADDRESS = 2
    settings.CODE_ROUTER_SLOWED_PER_SECOND = 50
    for _ in range(2):
        assert codes(spot.status("ZZZZ2222")) == ["CODE_INVALID"]
    for _ in range(2):  # slowed now: each attempt takes a turn, two per address
        assert codes(spot.status("ZZZZ2222")) == ["CODE_INVALID"]
    assert codes(spot.status("ZZZZ2222")) == ["RATE_LIMITED"]


def test_a_flood_of_client_addresses_does_not_evict_a_slowed_routers_state(spot, settings):
    """The embedded cache once held 300 entries: rotating addresses culled the counters and turns in use,
    and a slowed router let guesses through unslowed (tests/benchmarks/code_guessing.py)."""
    settings.CODE_FAILURES_PER_ROUTER = 1
    assert codes(spot.redeem("ZZZZ2222")) == ["CODE_INVALID"]
    assert access._router_slowed(spot.router)
    started = time.monotonic()
    waits = [access._turn(spot.router, f"10.0.{index // 250}.{index % 250}") for index in range(5)]
    for index in range(3000):
        throttling.hit("code-turns", f"{spot.router.pk}:10.9.{index // 250}.{index % 250}", limit=10, window_seconds=20)
    assert access._router_slowed(spot.router)
    later = access._turn(spot.router, "10.1.0.1") + (time.monotonic() - started)
    # The turns given out before the flood are still taken (waits count from when each was asked:
    # the flood itself takes seconds on a busy machine).
    assert later > max(waits)
