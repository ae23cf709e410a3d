"""Proving IntaSend keys without moving money: the gateway's two calls, and both simulators answering
them as IntaSend does (known keys pass, unknown ones are refused with IntaSend's error shapes)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from billing.gateways import CredentialsRejected, GatewayCredentials, GatewayUnavailable, IntaSendGateway
from billing.simulator.api import IntaSendAPI
from billing.simulator.ledger import IntaSendLedger
from tests.fakes.intasend_server import FakeIntaSend

PUBLIC_KEY = "ISPubKey_test_keycheck0001"
SECRET = "ISSecretKey_test_keycheck0001"
OTHER_PUBLIC_KEY = "ISPubKey_test_keycheck0002"
OTHER_SECRET = "ISSecretKey_test_keycheck0002"


@pytest.fixture
def fake() -> Iterator[FakeIntaSend]:
    with FakeIntaSend(accounts={PUBLIC_KEY: SECRET, OTHER_PUBLIC_KEY: OTHER_SECRET}) as server:
        yield server


def check(fake: FakeIntaSend, public_key: str = PUBLIC_KEY, secret: str = SECRET) -> None:
    with IntaSendGateway(GatewayCredentials(public_key, secret, "SANDBOX"), base_url=fake.base_url) as gateway:
        gateway.verify_keys()


def test_known_keys_pass_with_a_wallet_list_and_a_status_lookup(fake):
    check(fake)

    wallets, status = fake.requests
    assert (wallets.method, wallets.path, wallets.authenticated_as) == ("GET", "/api/v1/wallets/", PUBLIC_KEY)
    assert (status.method, status.path) == ("POST", "/api/v1/payment/status/")
    assert "Authorization" not in status.headers  # the publishable key alone, as status checks send it
    assert status.json == {"invoice_id": "CLOUDPILOT-KEY-CHECK", "public_key": PUBLIC_KEY}
    assert fake.invoices == {}


@pytest.mark.parametrize(
    ("public_key", "secret", "refused"),
    [
        (PUBLIC_KEY, "ISSecretKey_test_typo", ("secret",)),
        ("ISPubKey_test_typo", "ISSecretKey_test_typo", ("secret", "publishable")),
        (OTHER_PUBLIC_KEY, SECRET, ("secret",)),  # a mixed pair: the secret is not this account's
        ("ISPubKey_test_typo", SECRET, ("secret", "publishable")),
    ],
)
def test_refused_keys_are_named(fake, public_key, secret, refused):
    with pytest.raises(CredentialsRejected) as caught:
        check(fake, public_key, secret)

    assert caught.value.keys == refused
    assert caught.value.status_code == 401 and caught.value.detail  # IntaSend's words, for the log


def test_a_403_authentication_failure_refuses_but_a_permission_denial_does_not(fake):
    """IntaSend's docs show a bad token as a 403 ``authentication_failed``; another 403 is a known key
    that may not list wallets."""
    bad = {"type": "client_error", "errors": [{"code": "authentication_failed", "detail": "Invalid api token"}]}
    fake.fail_next("wallets/", status=403, body=bad)
    with pytest.raises(CredentialsRejected) as caught:
        check(fake)
    assert caught.value.keys == ("secret",)

    fake.fail_next("wallets/", status=403)  # permission_denied
    check(fake)


def test_older_answer_shapes_still_prove_the_keys(fake):
    fake.fail_next("wallets/", status=200, body=[{"id": 9, "currency": "KES", "wallet_type": "SETTLEMENT"}])
    fake.fail_next(
        "payment/status/",
        status=400,
        body={"type": "validation_error", "errors": [{"code": "invalid", "detail": "Bad id", "attr": "invoice_id"}]},
    )
    check(fake)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("wallets/", 429, None),
        ("wallets/", 404, None),
        ("wallets/", 500, None),
        ("wallets/", 200, "not json"),
        ("wallets/", 200, {"count": 1}),
        ("payment/status/", 400, None),  # a validation error about something else proves nothing
        ("payment/status/", 200, {"no": "invoice"}),
        ("payment/status/", 503, None),
    ],
)
def test_answers_that_prove_nothing_are_unavailable(fake, path, status, body):
    fake.fail_next(path, status=status, body=body)

    with pytest.raises(GatewayUnavailable):
        check(fake)


def test_a_timeout_is_unavailable(fake):
    fake.hang_next("wallets/", 3)
    gateway = IntaSendGateway(GatewayCredentials(PUBLIC_KEY, SECRET, "SANDBOX"), base_url=fake.base_url, timeout=(1, 1))
    with gateway, pytest.raises(GatewayUnavailable):
        gateway.verify_keys()


def test_the_wallet_list_shows_the_accounts_settlement_balance(fake):
    check(fake)
    with IntaSendGateway(GatewayCredentials(PUBLIC_KEY, SECRET, "SANDBOX"), base_url=fake.base_url) as gateway:
        result = gateway.stk_push(phone_number="254712345678", amount=25, api_ref="a", narrative="n")
    fake.settle(result.invoice_id, "COMPLETE", webhook=False)

    status, content_type, body = fake.api.handle("GET", "/api/v1/wallets/", {"Authorization": f"Bearer {SECRET}"}, b"")

    page = json.loads(body)
    assert status == 200 and page["count"] == 1 and page["next"] is None
    [wallet] = page["results"]
    assert wallet["wallet_type"] == "SETTLEMENT" and wallet["currency"] == "KES"
    assert wallet["available_balance"] == "25.00"


def test_registering_an_account_makes_its_keys_pass(fake):
    with pytest.raises(CredentialsRejected):
        check(fake, "ISPubKey_test_new", "ISSecretKey_test_new")
    fake.add_account("ISPubKey_test_new", "ISSecretKey_test_new")
    check(fake, "ISPubKey_test_new", "ISSecretKey_test_new")


# -- the product's simulator (open accounts: any pair shaped like IntaSend's) ---------------------------


def answer(api: IntaSendAPI, method: str, path: str, headers: dict[str, str], body: dict | None = None):
    status, _, raw = api.handle(method, path, headers, json.dumps(body).encode() if body else b"")
    return status, json.loads(raw)


def test_the_products_simulator_takes_intasend_shaped_keys_and_refuses_others():
    api = IntaSendAPI(IntaSendLedger(open_accounts=True))
    shaped = {"Authorization": "Bearer ISSecretKey_test_anything", "INTASEND_PUBLIC_API_KEY": "ISPubKey_test_anything"}

    assert answer(api, "GET", "/api/v1/wallets/", shaped)[0] == 200
    assert (
        answer(api, "POST", "/api/v1/payment/status/", {}, {"invoice_id": "X", "public_key": "ISPubKey_test_a"})[0]
        == 404
    )

    status, body = answer(api, "GET", "/api/v1/wallets/", {"Authorization": "Bearer sk_live_typo"})
    assert status == 401 and body["errors"][0]["code"] == "authentication_failed"
    assert answer(api, "GET", "/api/v1/wallets/", {})[0] == 401
    status, body = answer(api, "POST", "/api/v1/payment/status/", {}, {"invoice_id": "X", "public_key": "pk_typo"})
    assert status == 401 and body["errors"][0]["code"] == "authentication_failed"
