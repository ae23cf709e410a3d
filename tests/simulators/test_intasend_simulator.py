"""The IntaSend simulator served by the app: the real SDK against it, the phone and checkout pages,
and the webhook they deliver back to /payments/webhook/ the way IntaSend does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from billing.gateways import GatewayCredentials, GatewayRejected, IntaSendGateway
from billing.models import Payment, PaymentCredential, WebhookDelivery
from billing.simulator import runtime
from billing.simulator.ledger import IntaSendLedger
from tests.documents import CREATE_LINK, INITIATE
from tests.live import REPO
from tests.simulators.conftest import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)

API = "/simulator/intasend/api/v1/"


def gateway(simulator_url: str, public_key: str = "ISPubKey_test_anyone", secret: str = "ISSecretKey_test_x"):
    return IntaSendGateway(GatewayCredentials(public_key, secret, "SANDBOX"), base_url=simulator_url, timeout=(2, 5))


# -- the API, through Django -----------------------------------------------------------------------


def test_the_sdk_talks_to_the_simulator_through_the_app(simulator, live_server):
    base = f"{live_server.url}{API}"
    with gateway(base) as gw:
        pushed = gw.stk_push(phone_number="254712345678", amount=Decimal("20"), api_ref="ref-1", narrative="1 hour")
        assert pushed.state == "PENDING"
        assert gw.status(invoice_id=pushed.invoice_id).state == "PENDING"
        created = gw.checkout(amount=Decimal("50"), api_ref="ref-2")
    assert created.url == f"{live_server.url}/simulator/intasend/checkout/{created.checkout_id}/express/"

    invoice = simulator.ledger.invoice(pushed.invoice_id)
    assert (invoice.public_key, invoice.narrative, invoice.value) == ("ISPubKey_test_anyone", "1 hour", Decimal("20"))
    [push] = [r for r in simulator.ledger.requests if r.path.endswith("mpesa-stk-push/")]
    assert push.authenticated_as == "ISPubKey_test_anyone"
    assert push.headers["Authorization"] == "Bearer <redacted>"

    # Open accounts: one account per public key, so another key does not see the invoice.
    with gateway(base, public_key="ISPubKey_test_someone_else") as other, pytest.raises(GatewayRejected) as missing:
        other.status(invoice_id=pushed.invoice_id)
    assert missing.value.status_code == 404
    # Keys not shaped like IntaSend's are refused like a wrong key.
    with gateway(base, secret="not-a-secret-key") as wrong, pytest.raises(GatewayRejected) as refused:
        wrong.stk_push(phone_number="254712345678", amount=Decimal("20"), api_ref="x", narrative="x")
    assert refused.value.status_code == 401


def test_api_paths_and_error_shapes(client, simulator):
    def post(endpoint: str, body, **headers):
        data = body if isinstance(body, str) else json.dumps(body)
        return client.post(API + endpoint, data=data, content_type="application/json", headers=headers)

    auth = {"Authorization": "Bearer ISSecretKey_test_x", "X-IntaSend-Public-API-Key": "ISPubKey_test_x"}
    push = {"phone_number": "254712345678", "amount": 10, "currency": "KES", "api_ref": "r"}

    unauthenticated = post("payment/mpesa-stk-push/", push)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"detail": "Authentication credentials were not provided."}

    invalid = post("payment/mpesa-stk-push/", {**push, "phone_number": "0712"}, **auth)
    assert invalid.status_code == 400
    assert invalid.json()["type"] == "validation_error"
    assert invalid.json()["errors"][0]["attr"] == "phone_number"

    ok = post("payment/mpesa-stk-push/", push, **auth)
    assert ok.status_code == 200 and ok.json()["invoice"]["state"] == "PENDING"

    assert post("payment/status/", "not json", **auth).json()["errors"][0]["code"] == "parse_error"
    missing = post("nope/", {})
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"
    assert client.get(API + "payment/status/").status_code == 405


def test_simulators_are_404_when_switched_off(client, simulator, settings):
    settings.SIMULATORS_ENABLED = False
    for path in (
        "/simulator/",
        "/simulator/phone/",
        API + "payment/status/",
        "/simulator/intasend/checkout/x/express/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(API + "payment/mpesa-stk-push/", data="{}", content_type="application/json").status_code == 404


def _in_fresh_process(code: str, **env: str) -> str:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DEBUG", "SIMULATORS"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="project.settings", **env)
    environment.pop("INTASEND_API_BASE_URL", None)
    prelude = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.urls import resolve, Resolver404\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_in_production_the_routes_do_not_exist():
    probe = (
        "try:\n    resolve('/simulator/phone/'); print('routed', end=' ')\n"
        "except Resolver404:\n    print('absent', end=' ')\n"
        "print(settings.SIMULATORS_ENABLED, settings.INTASEND_API_BASE_URL)"
    )
    assert _in_fresh_process(probe, DEBUG="0") == "absent False None"
    assert _in_fresh_process(probe, DEBUG="0", SIMULATORS_ENABLED="1", PORT="9123") == (
        "routed True http://127.0.0.1:9123/simulator/intasend/api/v1/"
    )
    assert _in_fresh_process(probe, DEBUG="1").startswith("routed True")


# -- the phone -------------------------------------------------------------------------------------


def _initiate(gql, shop, **overrides) -> dict:
    result = gql(INITIATE, {"input": shop_input(shop, **overrides)}, public_key=shop.operator.public_key)
    payload = result["data"]["initiatePayment"]
    assert payload["errors"] == [], payload
    return payload["payment"]


def shop_input(shop, **overrides) -> dict:
    data = {
        "routerId": str(shop.router.pk),
        "packageId": str(shop.package.pk),
        "phoneNumber": "0712345678",
        "amount": str(shop.package.price),
    }
    data.update(overrides)
    return data


def test_phone_lists_the_prompt_and_approve_completes_the_payment(simulator, sim_shop, gql, browser, settings):
    settings.INTASEND_CALLBACK_URL = None  # the webhook goes to the server the phone page is on
    payment = _initiate(gql, sim_shop)
    invoice_id = payment["intasendInvoiceId"]

    phone = browser.get("/simulator/phone/")
    assert f'id="prompt-{invoice_id}"' in phone.text
    assert "254712345678" in phone.text and "Pay KES 25<" in phone.text and "1 Hour WiFi" in phone.text

    answered = browser.submit(phone, f"/simulator/phone/{invoice_id}/approve/")
    assert answered.status_code == 200 and "approved" in answered.text
    assert f'id="prompt-{invoice_id}"' not in answered.text  # no longer pending

    completed = wait_for_status(payment["id"], "COMPLETED")
    assert completed.mpesa_reference == simulator.ledger.invoice(invoice_id).mpesa_reference
    delivery = WebhookDelivery.objects.get(payment=completed)
    assert (delivery.state, delivery.outcome) == ("COMPLETE", WebhookDelivery.Outcome.ACCEPTED)  # challenge matched
    # The completion was confirmed with the status API before it was applied.
    assert [r for r in simulator.ledger.requests if r.path.endswith("payment/status/")]
    assert completed.events.filter(new_status="COMPLETED").exists()

    simulator.webhooks.wait()
    [sent] = simulator.webhooks.deliveries
    assert sent.body["challenge"] == "webhook-challenge-1" and sent.status_code == 200
    assert sent.url.endswith("/payments/webhook/")
    assert "HTTP 200" in browser.get("/simulator/phone/").text  # the phone page shows the delivery

    again = browser.submit(phone, f"/simulator/phone/{invoice_id}/approve/")
    assert "already answered" in again.text


def test_phone_decline_fails_the_payment(simulator, sim_shop, gql, browser):
    payment = _initiate(gql, sim_shop)
    phone = browser.get("/simulator/phone/")
    browser.submit(phone, f"/simulator/phone/{payment['intasendInvoiceId']}/decline/")

    failed = wait_for_status(payment["id"], "FAILED")
    assert failed.failure_reason == "Request cancelled by user"
    assert failed.intasend_state == "FAILED"


def test_checkout_page_pays_a_payment_link(simulator, sim_shop, gql, browser):
    result = gql(CREATE_LINK, {"input": shop_input(sim_shop, phoneNumber="")}, public_key=sim_shop.operator.public_key)
    payload = result["data"]["createPaymentLink"]
    assert payload["errors"] == [], payload
    url = payload["payment"]["paymentUrl"]

    page = browser.get(url)
    assert "KES 25<" in page.text and 'id="pay"' in page.text
    refused = browser.submit(page, url, phone_number="12345", action="pay")
    assert refused.status_code == 400 and "0712 345 678" in refused.text

    paid = browser.submit(browser.get(url), url, phone_number="0712 345 678", action="pay")
    assert "Payment complete" in paid.text

    completed = wait_for_status(payload["payment"]["id"], "COMPLETED")
    assert completed.intasend_invoice_id  # named by the webhook, confirmed by the status API
    checkout = simulator.ledger.checkout(completed.intasend_checkout_id)
    assert checkout.paid and checkout.callback_url.endswith("/payments/webhook/")


def test_checkout_cancel_fails_the_link(simulator, sim_shop, gql, browser):
    result = gql(CREATE_LINK, {"input": shop_input(sim_shop)}, public_key=sim_shop.operator.public_key)
    payment = result["data"]["createPaymentLink"]["payment"]
    url = payment["paymentUrl"]
    cancelled = browser.submit(browser.get(url), url, action="cancel")
    assert "Payment cancelled" in cancelled.text
    assert wait_for_status(payment["id"], "FAILED").failure_reason == "Request cancelled by user"


def test_unknown_checkout_is_404(client, simulator):
    assert client.get("/simulator/intasend/checkout/00000000-0000-0000-0000-000000000000/express/").status_code == 404


# -- accounts and challenges ------------------------------------------------------------------------


def _invoice_for(credential, api_ref):
    ledger = IntaSendLedger(open_accounts=True)
    return ledger.create_invoice(
        public_key=credential.api_key,
        value=Decimal("25"),
        currency="KES",
        account="254712345678",
        api_ref=api_ref,
        host="127.0.0.1",
    )


def _payment_with(operator, credential):
    router = operator.add_router()
    package = operator.add_package(router)
    return Payment.objects.create(
        owner=operator.user, router=router, package=package, credential=credential, amount=package.price
    )


def test_webhooks_carry_only_sandbox_credentials_challenges(operator, other_operator, fake_intasend):
    sandbox = operator.add_credential(challenge="sandbox-challenge")
    assert runtime.invoice_challenge(_invoice_for(sandbox, str(_payment_with(operator, sandbox).pk))) == (
        "sandbox-challenge"
    )

    fake_intasend.add_account("ISPubKey_live_bob", "ISSecretKey_live_bob")
    live = other_operator.add_credential(
        api_key="ISPubKey_live_bob", private_key="ISSecretKey_live_bob", challenge="live-challenge"
    )
    PaymentCredential.objects.filter(pk=live.pk).update(environment=PaymentCredential.Environment.LIVE)
    assert runtime.invoice_challenge(_invoice_for(live, str(_payment_with(other_operator, live).pk))) is None
    assert runtime.invoice_challenge(_invoice_for(sandbox, "not-one-of-ours")) is None


def test_closed_ledgers_still_need_a_known_pair():
    closed = IntaSendLedger({"ISPubKey_test_a": "ISSecretKey_test_a"})
    assert closed.account_for_secret("ISSecretKey_test_a") == "ISPubKey_test_a"
    assert closed.account_for_secret("ISSecretKey_test_b", "ISPubKey_test_b") is None
    assert not closed.has_public_key("ISPubKey_test_b")

    open_ledger = IntaSendLedger({"ISPubKey_test_a": "ISSecretKey_test_a"}, open_accounts=True)
    assert open_ledger.account_for_secret("ISSecretKey_test_b", "ISPubKey_test_b") == "ISPubKey_test_b"
    assert open_ledger.account_for_secret("ISSecretKey_test_b", "ISPubKey_test_a") is None  # a fixed account
    assert open_ledger.account_for_secret("ISSecretKey_test_b", "pk_other") is None
    assert open_ledger.has_public_key("ISPubKey_test_z") and not open_ledger.has_public_key("ISPubKey_")
    with pytest.raises(ValueError):
        IntaSendLedger({})


def test_phone_refresh_fragment_and_index(client, simulator):
    fragment = client.get("/simulator/phone/?partial=1").content.strip()
    assert fragment.startswith(b'<div class="card muted" id="no-prompts"')
    index = client.get("/simulator/")
    assert index.status_code == 200 and b"/simulator/intasend/api/v1/" in index.content
