"""Twenty devices typing one fresh voucher at the same moment: it is redeemed exactly once.

Real threads, each with its own database connection, through GraphQL. On PostgreSQL the voucher's row
lock decides, on SQLite the IMMEDIATE write transaction does (tests/billing/test_races.py). Whoever comes
second holds the code just as well: it joins the one grant as a further device while slots remain
(DEVICE_LIMIT_REACHED after), or gets it PENDING while the router is not done with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import Client

from billing.models import Voucher, VoucherBatch
from network.models import Activation, Package
from tests.billing.test_races import run_together
from tests.fakes.routeros_server import FakeRouterOS

pytestmark = pytest.mark.django_db(transaction=True)

CODE = "ZXCVBNMQWRTY"
REDEEM = """
mutation($input: RedeemCodeInput!) {
  redeemCode(input: $input) { kind activation { id accessCode status } errors { code } }
}"""


@pytest.fixture
def fake_router() -> Iterator[FakeRouterOS]:
    with FakeRouterOS(username="cloudpilot", password="router-pass-123") as fake:
        yield fake


@pytest.mark.parametrize("attempt", range(2))
def test_twenty_simultaneous_redemptions_make_one_grant(operator, fake_router, settings, attempt):
    settings.ROUTER_API_TIMEOUT_SECONDS = 5
    router = operator.add_router(host=fake_router.host, port=fake_router.port)
    package = operator.add_package(router)
    Package.objects.filter(pk=package.pk).update(shared_users=3)
    batch = VoucherBatch.objects.create(
        owner=operator.user, router=router, package=package, price=package.price, count=1
    )
    voucher = Voucher.objects.create(batch=batch, router=router, code=CODE)
    key = operator.public_key
    answers: list[dict] = []

    def redeemer(index: int):
        def redeem() -> None:
            variables = {
                "input": {
                    "routerId": str(router.pk),
                    "code": CODE.lower() if index % 2 else CODE,
                    "macAddress": f"AA:BB:CC:DD:{attempt:02X}:{index:02X}",
                    "ipAddress": f"10.5.50.{index + 10}",
                }
            }
            response = Client().post(
                "/graphql/",
                data=json.dumps({"query": REDEEM, "variables": variables}),
                content_type="application/json",
                headers={"X-Public-Key": key},
            )
            assert response.status_code == 200, response.content
            answers.append(response.json()["data"]["redeemCode"])

        return redeem

    errors = run_together(*(redeemer(index) for index in range(20)))

    assert errors == []
    assert len(answers) == 20
    grants = list(Activation.objects.filter(router=router))
    assert len(grants) == 1
    (grant,) = grants
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.REDEEMED and voucher.activation_id == grant.pk
    assert grant.source == Activation.Source.VOUCHER and grant.access_code == CODE
    kinds = sorted(answer["kind"] or answer["errors"][0]["code"] for answer in answers)
    assert kinds.count("VOUCHER") == 1, kinds
    for answer in answers:
        if answer["activation"] is not None:
            assert answer["activation"]["id"] == str(grant.pk) and answer["activation"]["accessCode"] == CODE
            assert answer["kind"] in ("VOUCHER", "ACCESS_CODE")
        else:
            assert [error["code"] for error in answer["errors"]] == ["DEVICE_LIMIT_REACHED"], answer
    # Never more devices online than the package allows.
    assert len([row for row in fake_router.active if row["user"] == CODE]) <= 3
