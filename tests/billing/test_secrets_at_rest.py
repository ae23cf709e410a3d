"""Secrets are encrypted at rest, write-only in the API, and survive key rotation."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from billing.models import PaymentCredential
from network.models import Router

pytestmark = pytest.mark.django_db

ADD_CREDENTIAL = """mutation($input: AddPaymentCredentialInput!) { addPaymentCredential(input: $input) {
  credential { id provider apiKey environment isActive hasWebhookChallenge createdAt } errors { code field } } }"""
CREATE_ROUTER = """mutation($input: CreateRouterInput!) { createRouter(input: $input) {
  router { id name host apiPort useSsl username } errors { code field } } }"""

PUBLIC_KEY = "ISPubKey_test_abc"
PRIVATE_KEY = "ISSecretKey_test_plaintext_must_not_leak"
CHALLENGE = "challenge-plaintext-must-not-leak"
ROUTER_PASSWORD = "router-password-must-not-leak"


def raw_rows(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
        return repr(cursor.fetchall())


@pytest.fixture(autouse=True)
def _intasend_knows_the_keys(fake_intasend):
    fake_intasend.add_account(PUBLIC_KEY, PRIVATE_KEY)


def test_secrets_are_stored_encrypted_and_never_returned(gql, operator, caplog):
    caplog.set_level(logging.DEBUG)
    credential = gql(
        ADD_CREDENTIAL,
        {
            "input": {
                "apiKey": PUBLIC_KEY,
                "privateKey": PRIVATE_KEY,
                "environment": "SANDBOX",
                "webhookChallenge": CHALLENGE,
            }
        },
        **operator.auth,
    )
    router = gql(
        CREATE_ROUTER,
        {"input": {"name": "R1", "host": "10.0.0.1", "username": "api", "password": ROUTER_PASSWORD}},
        **operator.auth,
    )
    assert credential["data"]["addPaymentCredential"]["credential"]["hasWebhookChallenge"] is True
    assert router["data"]["createRouter"]["router"]["host"] == "10.0.0.1"

    responses = repr(credential) + repr(router)
    listing = repr(gql("{ paymentCredentials { id apiKey hasWebhookChallenge } routers { id } }", **operator.auth))
    stored = raw_rows("billing_paymentcredential") + raw_rows("network_router")
    for secret in (PRIVATE_KEY, CHALLENGE, ROUTER_PASSWORD):
        assert secret not in responses + listing
        assert secret not in stored
        assert secret not in caplog.text

    saved = PaymentCredential.objects.get()
    assert saved.private_key() == PRIVATE_KEY and saved.webhook_challenge() == CHALLENGE
    assert Router.objects.get().password() == ROUTER_PASSWORD


def test_credential_input_is_validated(gql, operator):
    result = gql(ADD_CREDENTIAL, {"input": {"apiKey": " ", "privateKey": "x", "environment": "LIVE"}}, **operator.auth)[
        "data"
    ]["addPaymentCredential"]
    assert result == {"credential": None, "errors": [{"code": "INVALID_INPUT", "field": "apiKey"}]}
    assert PaymentCredential.objects.count() == 0


def test_admin_does_not_show_secrets(admin_client, operator):
    credential = operator.add_credential(api_key=PUBLIC_KEY, private_key=PRIVATE_KEY, challenge=CHALLENGE)
    router = operator.add_router(password=ROUTER_PASSWORD)
    pages = [
        admin_client.get(f"/admin/billing/paymentcredential/{credential.pk}/change/"),
        admin_client.get(f"/admin/network/router/{router.pk}/change/"),
        admin_client.get("/admin/billing/paymentcredential/"),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        for secret in (PRIVATE_KEY, CHALLENGE, ROUTER_PASSWORD):
            assert secret not in body
        assert "gAAAA" not in body  # no Fernet tokens either


def test_key_rotation_old_data_decrypts_and_reencrypt_moves_to_new_key(operator, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    credential = operator.add_credential(api_key=PUBLIC_KEY, private_key=PRIVATE_KEY, challenge=CHALLENGE)
    router = operator.add_router(password=ROUTER_PASSWORD)

    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    credential.refresh_from_db()
    assert credential.private_key() == PRIVATE_KEY  # written with the old key, still readable

    call_command("reencrypt_secrets")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # old key retired
    credential.refresh_from_db()
    router.refresh_from_db()
    assert credential.private_key() == PRIVATE_KEY
    assert credential.webhook_challenge() == CHALLENGE
    assert router.password() == ROUTER_PASSWORD


def test_environment_variable_keys_are_parsed_comma_separated(monkeypatch):
    import importlib

    import project.settings as project_settings

    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"{first}, {second}")
    try:
        reloaded = importlib.reload(project_settings)
        assert reloaded.FIELD_ENCRYPTION_KEYS == [first, second]
    finally:
        monkeypatch.delenv("FIELD_ENCRYPTION_KEY")
        importlib.reload(project_settings)
