"""Found by attacking the production surface from outside (issue 13): secrets in logs, an open webhook
that stored whatever it was sent, the support desk shown what proves a payment is the customer's, a NUL
in an admin filter, and payment state changes that left no log line. (The Host header choosing
IntaSend's callback URL is refused at startup: tests/production/test_check_deploy.py.)"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import override_settings

from billing.models import Payment, WebhookDelivery
from project.logging_config import redact_query
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db

ADD_CREDENTIAL = (
    "mutation($input: AddPaymentCredentialInput!) { addPaymentCredential(input: $input) { errors { code } } }"
)


def test_the_access_log_never_carries_a_client_secret_or_a_signature():
    line = "GET /payment/success/0b7e/?client_secret=s3cr3t-value&signature=eyJ.body.sig HTTP/1.1"
    redacted = redact_query(line)
    assert "s3cr3t-value" not in redacted and "eyJ.body.sig" not in redacted
    assert redacted == "GET /payment/success/0b7e/?client_secret=[redacted]&signature=[redacted] HTTP/1.1"


def test_a_misspelt_field_does_not_write_the_private_key_to_the_log(client, operator, caplog):
    variables = {
        "input": {"apiKey": "ISPubKey_x", "privateKey": "PRIVATE-do-not-log", "environment": "SANDBOX", "typo": 1}
    }
    with caplog.at_level(logging.INFO):
        answer = client.post(
            "/graphql/",
            data=json.dumps({"query": ADD_CREDENTIAL, "variables": variables}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {operator.tokens.access_token}"},
        )
    assert "PRIVATE-do-not-log" in answer.content.decode()  # the caller gets its own input back
    assert "PRIVATE-do-not-log" not in caplog.text
    assert "Variable '$input' has an invalid value (not logged)" in caplog.text
    assert "unknown field 'typo'" in caplog.text


def test_a_huge_client_error_is_one_bounded_log_line(client, caplog):
    with caplog.at_level(logging.INFO):
        client.post(
            "/graphql/", data=json.dumps({"query": "{ " + "x" * 50_000 + " }"}), content_type="application/json"
        )
    assert all(len(record.getMessage()) < 1000 for record in caplog.records)


# Webhooks are recorded on threads of their own (project.db_threads): transactional tests see what they commit.
@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_UNUSED_KEPT_PER_HOUR=3)
def test_deliveries_that_change_nothing_are_stored_only_up_to_a_budget_per_sender(client):
    for _ in range(5):
        answer = client.post(
            "/payments/webhook/",
            data=json.dumps({"api_ref": str(uuid.uuid4()), "state": "COMPLETE", "pad": "x" * 50_000}),
            content_type="application/json",
        )
        assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
    for _ in range(3):
        assert client.post("/payments/webhook/", data="not json", content_type="text/plain").status_code == 400
    assert WebhookDelivery.objects.count() == 3  # the budget is per sender, whatever the outcome


def test_the_support_desk_sees_neither_the_client_secret_nor_the_idempotency_key(client, gql, shop):
    key = "k" * 40
    created = gql(INITIATE, {"input": shop.payment_input(idempotencyKey=key)}, **shop.operator.portal)
    payment = Payment.objects.get(pk=created["data"]["initiatePayment"]["payment"]["id"])
    shop.operator.user.is_superuser = shop.operator.user.is_staff = True
    shop.operator.user.save()
    client.force_login(shop.operator.user)
    page = client.get(f"/admin/billing/payment/{payment.pk}/change/").content.decode()
    assert payment.client_secret not in page and key not in page


def test_a_nul_in_an_admin_filter_is_a_400_not_a_500(client, operator):
    operator.user.is_superuser = operator.user.is_staff = True
    operator.user.save()
    client.force_login(operator.user)
    assert client.get("/admin/billing/payment/?status__exact=%00").status_code == 400
    assert client.get("/admin/billing/payment/?status__exact=PENDING").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_every_payment_state_change_is_one_log_line(client, gql, shop, caplog):
    created = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=created["payment"]["id"])
    body = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge="webhook-challenge-1")
    body.update(state="FAILED", failed_reason="Request cancelled by user")
    with caplog.at_level(logging.INFO, logger="billing.services"):
        assert (
            client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json").status_code == 200
        )
    assert f"Payment {payment.pk} PROCESSING -> FAILED (WEBHOOK, IntaSend FAILED)" in caplog.text
