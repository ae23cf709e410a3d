"""Issue 9, items 7 and 11: one sign-in throttle for tokenAuth and the admin login, per (username,
client address) with a growing delay, so a stranger elsewhere cannot lock an operator out."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from django.test import Client

from project import throttling

pytestmark = pytest.mark.django_db

TOKEN_AUTH = """mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) {
  accessToken errors { code message } } }"""
RIGHT = "correct-horse-battery"


def token_auth(client: Client, username: str, password: str, address: str = "127.0.0.1") -> str:
    """The outcome of one tokenAuth from `address`: "OK" or the error code."""
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": TOKEN_AUTH, "variables": {"u": username, "p": password}}),
        content_type="application/json",
        REMOTE_ADDR=address,
    )
    result = response.json()["data"]["tokenAuth"]
    return result["errors"][0]["code"] if result["errors"] else "OK"


def admin_login(client: Client, username: str, password: str) -> bool:
    """Whether the admin's login form let the user in."""
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


@pytest.fixture
def staff_operator(operator):
    operator.user.is_staff = True
    operator.user.save(update_fields=["is_staff"])
    return operator


def test_forty_wrong_admin_passwords_then_the_right_one_is_refused(staff_operator):
    browser = Client()
    assert not any(admin_login(browser, "alice", f"guess-{n}") for n in range(40))
    response = browser.post("/admin/login/?next=/admin/", {"username": "alice", "password": RIGHT})
    assert "_auth_user_id" not in browser.session
    assert b"Too many sign-in attempts" in response.content


def test_admin_login_and_token_auth_share_one_throttle(client, staff_operator, settings, monkeypatch):
    settings.LOGIN_FREE_FAILURES = 3
    # The clock stands still: the third failure's 1 s wait must not run out before the admin login
    # on a loaded machine (CI, six shards on two cores, once took longer than that).
    frozen = time.time()
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: frozen))
    assert [token_auth(client, "alice", "wrong") for _ in range(3)] == ["AUTHENTICATION_FAILED"] * 3
    assert not admin_login(Client(), "alice", RIGHT)  # the admin's door is the same door


def test_admin_login_still_works_for_the_right_password(staff_operator):
    assert admin_login(Client(), "alice", RIGHT)


def test_twelve_wrong_passwords_from_one_address_do_not_lock_out_another(client, operator):
    attacker = [token_auth(client, "alice", f"guess-{n}", address="198.51.100.7") for n in range(12)]
    assert attacker[:5] == ["AUTHENTICATION_FAILED"] * 5 and set(attacker[5:]) == {"RATE_LIMITED"}
    assert token_auth(client, "ALICE", RIGHT, address="198.51.100.7") == "RATE_LIMITED"  # case is no way out
    assert token_auth(client, "alice", RIGHT, address="203.0.113.20") == "OK"


def test_failures_from_one_pair_meet_a_growing_delay(client, operator, settings):
    settings.LOGIN_FREE_FAILURES = 1
    assert token_auth(client, "alice", "wrong-1") == "AUTHENTICATION_FAILED"
    assert token_auth(client, "alice", RIGHT) == "RATE_LIMITED"  # 1 s to wait, counted again from here
    time.sleep(1.1)
    assert token_auth(client, "alice", "wrong-2") == "AUTHENTICATION_FAILED"  # now 2 s
    time.sleep(1.1)
    assert token_auth(client, "alice", RIGHT) == "RATE_LIMITED"
    time.sleep(2.1)
    assert token_auth(client, "alice", RIGHT) == "OK"
    # A success starts the pair afresh.
    assert token_auth(client, "alice", "wrong-3") == "AUTHENTICATION_FAILED"


def test_only_failures_spend_an_address_budget(client, operator, other_operator, settings):
    settings.LOGIN_RATE_LIMIT_PER_IP = 3
    assert [token_auth(client, "alice", RIGHT) for _ in range(5)] == ["OK"] * 5
    outcomes = [token_auth(client, f"user{n}", "stuffed") for n in range(4)]  # credential stuffing
    assert outcomes == ["AUTHENTICATION_FAILED"] * 3 + ["RATE_LIMITED"]
    assert token_auth(client, "bob", RIGHT) == "RATE_LIMITED"
    assert token_auth(client, "bob", RIGHT, address="203.0.113.20") == "OK"


def test_forwarded_for_from_an_untrusted_peer_picks_no_budget(client, operator, settings):
    settings.LOGIN_FREE_FAILURES = 2
    for n in range(3):  # an attacker naming a fresh address each time gains nothing
        client.post(
            "/graphql/",
            data=json.dumps({"query": TOKEN_AUTH, "variables": {"u": "alice", "p": f"wrong-{n}"}}),
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    assert token_auth(client, "alice", RIGHT) == "RATE_LIMITED"


def test_unknown_usernames_are_throttled_like_real_ones(client, db):
    outcomes = [token_auth(client, "mallory", "x") for _ in range(7)]
    assert outcomes == ["AUTHENTICATION_FAILED"] * 5 + ["RATE_LIMITED"] * 2
