"""Issue 9, item 10: payment throttles count the right client, in the right place.

Behind a hotspot's NAT every customer shares one address, and behind a load balancer every client
arrived from it: the per-IP budget counted REMOTE_ADDR across all operators, so one client blocked
everyone. `X-Forwarded-For` is believed from TRUSTED_PROXIES only (else anyone picks their address),
the IP budget is per router, and the phone budget per operator.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from billing.models import Payment
from project.client_address import client_address
from tests.conftest import OTHER_PUBLIC_KEY, OTHER_SECRET_KEY
from tests.documents import CREATE_LINK, INITIATE

pytestmark = pytest.mark.django_db


def push(gql, shop, phone: str, *, public_key: str | None = None, router=None, package=None, **headers) -> dict:
    data = shop.payment_input(phoneNumber=phone)
    if router is not None:
        data.update(routerId=str(router.pk), packageId=str(package.pk))
    result = gql(
        INITIATE,
        {"input": data},
        public_key=public_key or shop.operator.public_key,
        headers={key.replace("_", "-"): value for key, value in headers.items()},
    )
    return result["data"]["initiatePayment"]


def codes(result: dict) -> list[str]:
    return [error["code"] for error in result["errors"]]


@pytest.fixture
def bobs_hotspot(other_operator, shop):
    """Bob's router and package, paid through the same loopback IntaSend with his own keys."""
    router = other_operator.add_router(name="Bob's Cafe")
    package = other_operator.add_package(router)
    other_operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)
    return other_operator, router, package


def test_forwarded_for_from_an_untrusted_peer_is_ignored(gql, shop, settings):
    settings.TRUSTED_PROXIES = []
    settings.PAYMENT_RATE_LIMIT_PER_IP = 2
    spoofed = [push(gql, shop, f"07110000{i:02d}", X_Forwarded_For=f"198.51.100.{i}") for i in range(3)]

    assert [codes(r) for r in spoofed] == [[], [], ["RATE_LIMITED"]]  # a new header each time bought nothing
    assert set(Payment.objects.values_list("client_ip", flat=True)) == {"127.0.0.1"}


def test_forwarded_for_from_a_trusted_proxy_names_the_client(gql, shop, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    settings.PAYMENT_RATE_LIMIT_PER_IP = 2
    # The client's own header is kept on the left; the proxy appends the address it saw.
    behind = [push(gql, shop, f"07110000{i:02d}", X_Forwarded_For="10.9.9.9, 203.0.113.7") for i in range(3)]
    other = push(gql, shop, "0711000099", X_Forwarded_For="10.9.9.9, 203.0.113.8")

    assert [codes(r) for r in behind] == [[], [], ["RATE_LIMITED"]]
    assert codes(other) == []
    assert set(Payment.objects.values_list("client_ip", flat=True)) == {"203.0.113.7", "203.0.113.8"}


def test_client_address_reads_the_chain_from_the_right():
    factory = RequestFactory()

    def seen(peer: str, forwarded: str | None, trusted: list[str]) -> str | None:
        from django.test import override_settings

        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        with override_settings(TRUSTED_PROXIES=trusted):
            request = factory.get("/", REMOTE_ADDR=peer, **extra)
            scope = {"type": "websocket", "client": (peer, 5000), "headers": []}
            if forwarded is not None:
                scope["headers"] = [(b"x-forwarded-for", forwarded.encode())]
            assert client_address(request) == client_address(scope)
            return client_address(request)

    assert seen("203.0.113.7", "1.2.3.4", []) == "203.0.113.7"
    assert seen("203.0.113.7", "1.2.3.4", ["10.0.0.0/8"]) == "203.0.113.7"  # the peer is no proxy of ours
    assert seen("10.0.0.2", "1.2.3.4, 203.0.113.7", ["10.0.0.0/8"]) == "203.0.113.7"
    assert seen("10.0.0.2", "203.0.113.7, 10.0.0.3", ["10.0.0.0/8"]) == "203.0.113.7"  # two proxies
    assert seen("10.0.0.2", "garbage", ["10.0.0.0/8"]) == "10.0.0.2"
    assert seen("10.0.0.2", None, ["10.0.0.0/8"]) == "10.0.0.2"
    assert seen("::ffff:10.0.0.2", "[2001:db8::1]:443", ["10.0.0.0/8"]) == "2001:db8::1"


def test_one_nat_address_exhausting_its_budget_at_one_operator_does_not_block_another(
    gql, shop, settings, bobs_hotspot
):
    settings.PAYMENT_RATE_LIMIT_PER_IP = 2
    bob, router, package = bobs_hotspot
    alices = [push(gql, shop, f"07110000{i:02d}") for i in range(3)]

    bobs = push(gql, shop, "0722000001", public_key=bob.public_key, router=router, package=package)

    assert [codes(r) for r in alices] == [[], [], ["RATE_LIMITED"]]
    assert codes(bobs) == []


def test_pushes_to_a_phone_at_one_operator_do_not_block_it_at_another(gql, shop, settings, bobs_hotspot):
    settings.PAYMENT_RATE_LIMIT_PER_PHONE = 2
    bob, router, package = bobs_hotspot
    victim = "0712345678"

    def link(key: str, r, p) -> dict:
        # Links, not pushes: the already-pending rule would refuse a second push before the budget does.
        data = shop.payment_input(phoneNumber=victim, routerId=str(r.pk), packageId=str(p.pk))
        return gql(CREATE_LINK, {"input": data}, public_key=key)["data"]["createPaymentLink"]

    at_alice = [link(shop.operator.public_key, shop.router, shop.package) for _ in range(3)]

    assert [codes(r) for r in at_alice] == [[], [], ["RATE_LIMITED"]]
    assert codes(link(bob.public_key, router, package)) == []
