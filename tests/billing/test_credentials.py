"""Payment credentials over the API: checked with IntaSend before they are stored, verified again on
demand, switched off and deleted without the admin, every change in the audit log."""

from __future__ import annotations

import json

import pytest

from billing.models import Payment, PaymentCredential
from project.models import AuditEntry
from tests.conftest import INTASEND_PUBLIC_KEY, INTASEND_SECRET_KEY, OTHER_PUBLIC_KEY, OTHER_SECRET_KEY
from tests.documents import CHECK_STATUS, INITIATE, PAYMENT

pytestmark = pytest.mark.django_db

CREDENTIAL_FIELDS = "id apiKey environment isActive hasWebhookChallenge verifiedAt lastVerificationError"
ADD = (
    "mutation($input: AddPaymentCredentialInput!) { addPaymentCredential(input: $input) {"
    f" credential {{ {CREDENTIAL_FIELDS} }} errors {{ field code message }} }} }}"
)
VERIFY = (
    "mutation($id: ID!) { verifyPaymentCredential(id: $id) { ok error { field code message }"
    f" credential {{ {CREDENTIAL_FIELDS} }} errors {{ field code message }} }} }}"
)
SET_ACTIVE = (
    "mutation($id: ID!, $on: Boolean!) { setPaymentCredentialActive(id: $id, isActive: $on) {"
    f" credential {{ {CREDENTIAL_FIELDS} }} errors {{ field code message }} }} }}"
)
DELETE = (
    "mutation($id: ID!) { deletePaymentCredential(id: $id) {"
    f" credential {{ {CREDENTIAL_FIELDS} }} errors {{ field code message }} }} }}"
)
LIST = f"{{ paymentCredentials {{ {CREDENTIAL_FIELDS} }} }}"
NOT_FOUND = [{"field": "id", "code": "INVALID_INPUT", "message": "Payment credential not found"}]
# Where the keys are proven: nothing that could move money or create anything at IntaSend.
KEY_CHECK_PATHS = {"/api/v1/wallets/", "/api/v1/payment/status/"}


def add(gql, operator, **fields) -> dict:
    keys = {"apiKey": INTASEND_PUBLIC_KEY, "privateKey": INTASEND_SECRET_KEY, "environment": "SANDBOX"} | fields
    return gql(ADD, {"input": keys}, **operator.auth)["data"]["addPaymentCredential"]


def run(gql, operator, document: str, **variables) -> dict:
    body = gql(document, variables, **operator.auth)
    return next(iter(body["data"].values()))


def audit_of(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("at", "id"))


# --- addPaymentCredential ---------------------------------------------------------------------------


def test_add_checks_both_keys_with_calls_that_move_no_money(gql, operator, fake_intasend):
    result = add(gql, operator, webhookChallenge="chal-1")

    assert result["errors"] == []
    credential = result["credential"]
    assert credential["verifiedAt"] and credential["lastVerificationError"] is None
    assert {r.path for r in fake_intasend.requests} == KEY_CHECK_PATHS
    wallets, status = fake_intasend.requests_to("wallets/"), fake_intasend.requests_to("payment/status/")
    # The secret key proves itself on the wallets list; the status check carries the publishable key only.
    assert [r.method for r in wallets] == ["GET"] and wallets[0].authenticated_as == INTASEND_PUBLIC_KEY
    assert "Authorization" not in status[0].headers and status[0].json["public_key"] == INTASEND_PUBLIC_KEY
    assert fake_intasend.invoices == {}

    [entry] = audit_of("addPaymentCredential")
    assert entry.operator == operator.user and entry.object_id == credential["id"]
    assert entry.changes["privateKey"] == "set" and entry.changes["webhookChallenge"] == "set"
    assert INTASEND_SECRET_KEY not in json.dumps(entry.changes) and "chal-1" not in json.dumps(entry.changes)


def test_add_refuses_a_wrong_secret_key_and_stores_nothing(gql, operator, fake_intasend):
    result = add(gql, operator, privateKey="ISSecretKey_test_mistyped")

    assert result["credential"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("privateKey", "INVALID_CREDENTIALS")]
    assert "Invalid api token" not in result["errors"][0]["message"]  # IntaSend's own words are for logs
    assert PaymentCredential.objects.count() == 0 and audit_of("addPaymentCredential") == []


def test_add_refuses_keys_intasend_knows_nothing_of_naming_both(gql, operator, fake_intasend):
    result = add(gql, operator, apiKey="ISPubKey_test_nobody", privateKey="ISSecretKey_test_nobody")

    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("privateKey", "INVALID_CREDENTIALS"),
        ("apiKey", "INVALID_CREDENTIALS"),
    ]
    assert PaymentCredential.objects.count() == 0


def test_add_refuses_a_publishable_key_of_another_account(gql, operator, fake_intasend):
    """The pair must be one account's: pushes send both, and IntaSend refuses a mixed pair."""
    result = add(gql, operator, apiKey=OTHER_PUBLIC_KEY)

    assert {e["code"] for e in result["errors"]} == {"INVALID_CREDENTIALS"}
    assert PaymentCredential.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("wallets/", 503, None),
        ("wallets/", 502, "<html>bad gateway</html>"),
        ("wallets/", 429, None),  # throttled: says nothing about the keys
        ("wallets/", 404, None),  # no such route: says nothing either
        ("wallets/", 200, {"unexpected": True}),
        ("payment/status/", 500, None),
        ("payment/status/", 400, {"type": "validation_error", "errors": [{"code": "x", "detail": "y", "attr": "z"}]}),
    ],
)
def test_add_stores_nothing_when_intasend_cannot_tell(gql, operator, fake_intasend, path, status, body):
    fake_intasend.fail_next(path, status=status, body=body)

    result = add(gql, operator)

    assert result == {
        "credential": None,
        "errors": [
            {
                "field": None,
                "code": "GATEWAY_UNAVAILABLE",
                "message": "IntaSend could not be reached to check the keys. Please try again in a moment.",
            }
        ],
    }
    assert PaymentCredential.objects.count() == 0
    assert add(gql, operator)["errors"] == []  # the operator tries again


def test_add_stores_nothing_when_intasend_is_unreachable(gql, operator, settings):
    settings.INTASEND_API_BASE_URL = "http://127.0.0.1:1/api/v1/"  # nothing listens there

    assert [e["code"] for e in add(gql, operator)["errors"]] == ["GATEWAY_UNAVAILABLE"]
    assert PaymentCredential.objects.count() == 0


def test_add_reports_every_invalid_field_without_asking_intasend(gql, operator, fake_intasend):
    result = add(gql, operator, apiKey="k" * 256, privateKey=" ", webhookChallenge="c" * 256, provider="KOPOKOPO")

    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("apiKey", "INVALID_INPUT"),
        ("privateKey", "INVALID_INPUT"),
        ("webhookChallenge", "INVALID_INPUT"),
        ("provider", "INVALID_INPUT"),
    ]
    assert fake_intasend.requests == [] and PaymentCredential.objects.count() == 0


def test_keys_outside_printable_ascii_are_refused_without_asking_intasend(gql, operator, fake_intasend):
    """Found by the GraphQL fuzz: keys in another script failed inside the HTTP client (they travel in a
    header) and the mutation answered INTERNAL."""
    result = add(gql, operator, apiKey="礔üꂗ", privateKey="䮣鸷")
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("apiKey", "INVALID_INPUT"),
        ("privateKey", "INVALID_INPUT"),
    ]
    assert fake_intasend.requests == [] and PaymentCredential.objects.count() == 0


def test_key_checks_are_throttled_per_operator(gql, operator, other_operator, fake_intasend, settings):
    settings.CREDENTIAL_CHECK_RATE_LIMIT = 2
    assert add(gql, operator, privateKey="ISSecretKey_test_wrong1")["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert add(gql, operator)["errors"] == []
    sent = len(fake_intasend.requests)

    assert [e["code"] for e in add(gql, operator)["errors"]] == ["RATE_LIMITED"]
    [credential] = PaymentCredential.objects.filter(owner=operator.user)
    assert run(gql, operator, VERIFY, id=credential.pk)["errors"][0]["code"] == "RATE_LIMITED"
    assert len(fake_intasend.requests) == sent  # refused before IntaSend was asked
    assert add(gql, other_operator, apiKey=OTHER_PUBLIC_KEY, privateKey=OTHER_SECRET_KEY)["errors"] == []


# --- verifyPaymentCredential ------------------------------------------------------------------------


def test_verify_stamps_verified_at_when_intasend_accepts_the_keys(gql, shop):
    before = PaymentCredential.objects.get(pk=shop.credential.pk).verified_at

    result = run(gql, shop.operator, VERIFY, id=shop.credential.pk)

    assert result["ok"] is True and result["error"] is None and result["errors"] == []
    stored = PaymentCredential.objects.get(pk=shop.credential.pk)
    assert stored.verified_at > before and stored.last_verification_error == ""
    assert {r.path for r in shop.intasend.requests} == KEY_CHECK_PATHS
    [entry] = audit_of("verifyPaymentCredential")
    assert entry.changes["result"] == "ok" and "verifiedAt" in entry.changes


def test_verify_keeps_a_generic_error_when_intasend_now_refuses_the_key(gql, shop):
    verified_at = PaymentCredential.objects.get(pk=shop.credential.pk).verified_at
    raw = {"type": "client_error", "errors": [{"code": "authentication_failed", "detail": "KEY-REVOKED-BY-ADMIN-7"}]}
    shop.intasend.fail_next("wallets/", status=401, body=raw)

    result = run(gql, shop.operator, VERIFY, id=shop.credential.pk)

    assert result["ok"] is False and result["errors"] == []
    assert result["error"]["code"] == "INVALID_CREDENTIALS" and result["error"]["field"] == "privateKey"
    assert result["credential"]["lastVerificationError"] == "IntaSend rejected the secret key"
    assert "KEY-REVOKED" not in json.dumps(result)
    stored = PaymentCredential.objects.get(pk=shop.credential.pk)
    assert stored.verified_at == verified_at and stored.is_active  # the operator decides what to do
    [entry] = audit_of("verifyPaymentCredential")
    assert entry.changes["result"] == "INVALID_CREDENTIALS"

    assert run(gql, shop.operator, VERIFY, id=shop.credential.pk)["ok"] is True  # a later pass clears it
    assert PaymentCredential.objects.get(pk=shop.credential.pk).last_verification_error == ""


def test_verify_reports_an_unreachable_intasend_without_blaming_the_keys(gql, shop):
    shop.intasend.fail_next("payment/status/", status=503)

    result = run(gql, shop.operator, VERIFY, id=shop.credential.pk)

    assert result["ok"] is False and result["error"]["code"] == "GATEWAY_UNAVAILABLE"
    assert result["credential"]["lastVerificationError"].startswith("IntaSend could not be reached")


def test_verify_of_unreadable_keys_says_so(gql, shop, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    result = run(gql, shop.operator, VERIFY, id=shop.credential.pk)

    assert result["ok"] is False and result["error"]["code"] == "DECRYPTION_FAILED"
    assert shop.intasend.requests == []


@pytest.mark.parametrize("document", [VERIFY, DELETE])
def test_unknown_foreign_deleted_and_malformed_ids_read_the_same(gql, shop, other_operator, document):
    bobs = other_operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)
    gone = shop.operator.add_credential()
    run(gql, shop.operator, DELETE, id=gone.pk)
    shop.intasend.reset()
    snapshot = list(PaymentCredential.objects.order_by("pk").values())

    for wrong in (bobs.pk, gone.pk, 10**6, "abc", "-1", "9" * 30, ""):
        result = run(gql, shop.operator, document, id=wrong)
        assert result["errors"] == NOT_FOUND and result["credential"] is None, wrong
    assert run(gql, shop.operator, SET_ACTIVE, id=bobs.pk, on=False)["errors"] == NOT_FOUND

    assert list(PaymentCredential.objects.order_by("pk").values()) == snapshot
    assert shop.intasend.requests == []


# --- setPaymentCredentialActive ---------------------------------------------------------------------


def test_switching_the_newest_credential_off_hands_new_payments_to_the_older(gql, shop):
    newest = shop.operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)

    result = run(gql, shop.operator, SET_ACTIVE, id=newest.pk, on=False)

    assert result["errors"] == [] and result["credential"]["isActive"] is False
    paid = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert Payment.objects.get(pk=paid["payment"]["id"]).credential_id == shop.credential.pk
    [entry] = audit_of("setPaymentCredentialActive")
    assert entry.changes == {"isActive": [True, False]} and entry.object_id == str(newest.pk)

    assert run(gql, shop.operator, SET_ACTIVE, id=newest.pk, on=False)["errors"] == []  # no change, no entry
    assert len(audit_of("setPaymentCredentialActive")) == 1
    assert run(gql, shop.operator, SET_ACTIVE, id=newest.pk, on=True)["credential"]["isActive"] is True


def test_with_every_credential_off_payments_say_no_credentials(gql, shop):
    run(gql, shop.operator, SET_ACTIVE, id=shop.credential.pk, on=False)

    paid = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]

    assert [e["code"] for e in paid["errors"]] == ["NO_CREDENTIALS"]


# --- deletePaymentCredential ------------------------------------------------------------------------


def test_delete_stops_new_use_at_once_and_leaves_the_list(gql, shop):
    newest = shop.operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)

    result = run(gql, shop.operator, DELETE, id=newest.pk)

    assert result["errors"] == [] and result["credential"]["id"] == str(newest.pk)
    listed = gql(LIST, **shop.operator.auth)["data"]["paymentCredentials"]
    assert [c["id"] for c in listed] == [str(shop.credential.pk)]
    paid = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert Payment.objects.get(pk=paid["payment"]["id"]).credential_id == shop.credential.pk
    stored = PaymentCredential.objects.get(pk=newest.pk)
    assert stored.deleted_at is not None and stored.private_key() == OTHER_SECRET_KEY  # kept, encrypted
    [entry] = audit_of("deletePaymentCredential")
    assert entry.object_id == str(newest.pk) and entry.changes["deletedAt"][0] is None

    run(gql, shop.operator, DELETE, id=shop.credential.pk)
    again = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    assert [e["code"] for e in again["errors"]] == ["NO_CREDENTIALS"]


def test_payments_of_a_deleted_credential_stay_readable_and_checkable(gql, shop):
    paid = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=paid["payment"]["id"])
    run(gql, shop.operator, DELETE, id=shop.credential.pk)
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE")

    checked = gql(CHECK_STATUS, {"id": str(payment.pk)}, **shop.operator.auth)["data"]["checkPaymentStatus"]

    assert checked["errors"] == [] and checked["payment"]["status"] == "COMPLETED"
    status = shop.intasend.requests_to("payment/status/")[-1]
    assert status.json["public_key"] == INTASEND_PUBLIC_KEY  # asked with the deleted credential's key
    read = gql(PAYMENT, {"id": str(payment.pk)}, **shop.operator.auth)["data"]["payment"]
    assert read["status"] == "COMPLETED"


def test_the_type_never_returns_the_private_key_or_challenge():
    from project.schema import schema

    fields = set(schema.get_type_by_name("PaymentCredential").fields)
    assert {"verified_at", "last_verification_error"} <= {f.python_name for f in fields}
    assert not {"private_key", "private_key_encrypted", "webhook_challenge", "webhook_challenge_encrypted"} & {
        f.python_name for f in fields
    }


@pytest.mark.django_db(transaction=True)  # the webhook's status check is enqueued after its commit
def test_webhooks_for_a_deleted_credentials_payment_still_complete_it(gql, client, shop):
    paid = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=paid["payment"]["id"])
    run(gql, shop.operator, DELETE, id=shop.credential.pk)
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    body = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge="webhook-challenge-1")

    assert client.post("/payments/webhook/", data=body, content_type="application/json").status_code == 200
    assert (
        client.post(
            "/payments/webhook/", data={**body, "challenge": "forged"}, content_type="application/json"
        ).status_code
        == 403
    )  # its challenge is still known, so still checked

    payment.refresh_from_db()
    assert payment.status == Payment.Status.COMPLETED
