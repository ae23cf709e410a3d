"""One IntaSend invoice pays for at most one payment, and only an answer that names the payment
and its amount completes it (API.md "Webhook")."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from billing.models import Payment, PaymentEvent
from billing.simulator.ledger import status_json
from tests.conftest import INTASEND_PUBLIC_KEY
from tests.documents import CREATE_LINK, INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

CHALLENGE = "webhook-challenge-1"  # the shop fixture's credential


def post(client, body):
    return client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json")


def create_link(gql, shop) -> Payment:
    result = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["createPaymentLink"]
    assert result["errors"] == []
    return Payment.objects.get(pk=result["payment"]["id"])


def paid_invoice(shop, *, api_ref: str | None) -> str:
    """An invoice paid at IntaSend for 25 KES (the links' price), with the given api_ref."""
    invoice = shop.intasend.ledger.create_invoice(
        public_key=INTASEND_PUBLIC_KEY,
        value=Decimal("25.00"),
        currency="KES",
        account="254712345678",
        api_ref=api_ref,
        host="127.0.0.1",
    )
    shop.intasend.settle(invoice.invoice_id, "COMPLETE", webhook=False)
    return invoice.invoice_id


def completed(payment: Payment) -> bool:
    payment.refresh_from_db()
    return payment.status == "COMPLETED"


def test_one_paid_invoice_without_api_ref_completes_no_payment_link(client, gql, shop):
    # A credential without a webhook challenge: every webhook is only a hint for a status check.
    shop.credential.webhook_challenge_encrypted = ""
    shop.credential.save(update_fields=["webhook_challenge_encrypted"])
    links = [create_link(gql, shop) for _ in range(3)]
    invoice_id = paid_invoice(shop, api_ref=None)

    for link in links:
        body = {"invoice_id": invoice_id, "api_ref": str(link.pk), "state": "COMPLETE", "value": "25.00"}
        assert post(client, body).status_code == 200

    assert [completed(link) for link in links] == [False, False, False]
    assert not Payment.objects.filter(intasend_invoice_id=invoice_id).exists()


def test_one_paid_invoice_completes_at_most_the_payment_it_names(client, gql, shop):
    shop.credential.webhook_challenge_encrypted = ""
    shop.credential.save(update_fields=["webhook_challenge_encrypted"])
    links = [create_link(gql, shop) for _ in range(3)]
    invoice_id = paid_invoice(shop, api_ref=str(links[0].pk))

    for link in reversed(links):
        body = {"invoice_id": invoice_id, "api_ref": str(link.pk), "state": "COMPLETE", "value": "25.00"}
        assert post(client, body).status_code == 200

    assert [completed(link) for link in links] == [True, False, False]
    assert list(Payment.objects.filter(intasend_invoice_id=invoice_id)) == [links[0]]


def test_webhook_naming_another_payments_invoice_is_ignored_not_a_500(client, gql, shop):
    owner = create_link(gql, shop)
    invoice_id = paid_invoice(shop, api_ref=str(owner.pk))
    Payment.objects.filter(pk=owner.pk).update(intasend_invoice_id=invoice_id)
    other = create_link(gql, shop)

    # Authenticated (right challenge), not a completion claim: applied as it stands, which would
    # copy the invoice id onto the second payment, against the one-invoice-one-payment constraint.
    body = {"invoice_id": invoice_id, "api_ref": str(other.pk), "state": "PROCESSING", "challenge": CHALLENGE}
    assert post(client, body).status_code == 200

    other.refresh_from_db()
    assert other.intasend_invoice_id == "" and other.status == "PENDING"
    assert PaymentEvent.objects.filter(payment=other, note__contains="belongs to another payment").exists()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda invoice: invoice.update(value=None), id="value-null"),
        pytest.param(lambda invoice: invoice.pop("value"), id="value-missing"),
        pytest.param(lambda invoice: invoice.pop("api_ref"), id="api-ref-missing"),
        pytest.param(lambda invoice: invoice.update(api_ref=None), id="api-ref-null"),
    ],
)
def test_status_answer_without_amount_or_api_ref_does_not_complete(client, gql, shop, tamper):
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    answer = status_json(shop.intasend.invoice(payment.intasend_invoice_id))
    tamper(answer["invoice"])
    shop.intasend.fail_next("payment/status/", status=200, body=answer)

    webhook = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge=CHALLENGE)
    assert post(client, webhook).status_code == 200

    assert not completed(payment)
    assert payment.status == "PROCESSING"
    assert PaymentEvent.objects.filter(payment=payment, note__startswith="Not completed").exists()


# -- the in-product simulator vouches only with the payment's own operator's challenge ----------------


def test_simulator_signs_webhooks_with_the_payment_operators_challenge(live_server, shop, other_operator):
    """Two operators stored the same SANDBOX public key; the newer one's challenge must never vouch
    for (or be sent along with) news about the other's payment."""
    from billing.simulator import runtime

    payment = Payment.objects.create(
        owner=shop.operator.user,
        router=shop.router,
        package=shop.package,
        credential=shop.credential,
        amount=shop.package.price,
        phone_number="254712345678",
        status=Payment.Status.PROCESSING,
    )
    other_operator.add_credential(challenge="bobs-challenge")  # same public key, newer
    runtime.reset()
    invoice = runtime.intasend().ledger.create_invoice(
        public_key=INTASEND_PUBLIC_KEY,
        value=Decimal("25.00"),
        currency="KES",
        account="254712345678",
        api_ref=str(payment.pk),
        host="127.0.0.1",
    )
    try:
        runtime.prompt_approve(invoice.invoice_id, webhook_url=f"{live_server.url}/payments/webhook/")
        runtime.intasend().webhooks.wait(10)
        [sent] = runtime.intasend().webhooks.deliveries
    finally:
        runtime.reset()

    assert sent.body["challenge"] == CHALLENGE and sent.status_code == 200
    assert payment.webhook_deliveries.get().outcome == "ACCEPTED"
