"""Operators sign in with JWTs; portals use a rotatable public key."""

from __future__ import annotations

import re
import time

import jwt
import pytest
from django.contrib.auth import get_user_model

from billing.models import OperatorProfile

pytestmark = pytest.mark.django_db

TOKEN_AUTH = """mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) {
  accessToken refreshToken expiresIn errors { code message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  accessToken refreshToken expiresIn errors { field code message } } }"""
ME = "{ me { id username publicKey } }"


def test_every_user_gets_a_public_key_however_created(db):
    created = [
        get_user_model().objects.create_user("u1", password="pw-123456789"),
        get_user_model().objects.create_superuser("admin1", password="pw-123456789"),
    ]
    from django.core.management import call_command

    call_command("createsuperuser", "--noinput", username="admin2", email="admin2@example.com")
    created.append(get_user_model().objects.get(username="admin2"))
    keys = [OperatorProfile.objects.get(user=user).public_key for user in created]
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys)
    assert len(set(keys)) == 3


def test_token_auth_then_me(gql, operator):
    tokens = gql(TOKEN_AUTH, {"u": "alice", "p": "correct-horse-battery"})["data"]["tokenAuth"]
    assert tokens["errors"] == [] and tokens["expiresIn"] == 900
    me = gql(ME, token=tokens["accessToken"])["data"]["me"]
    assert me == {"id": str(operator.user.pk), "username": "alice", "publicKey": operator.public_key}


def test_token_auth_wrong_password(gql, operator):
    result = gql(TOKEN_AUTH, {"u": "alice", "p": "wrong"})["data"]["tokenAuth"]
    assert result["accessToken"] is None
    assert result["errors"] == [{"code": "AUTHENTICATION_FAILED", "message": "Invalid username or password"}]


def test_token_auth_is_throttled_per_username_and_address(gql, operator, settings):
    settings.LOGIN_FREE_FAILURES = 3
    for _ in range(3):
        assert gql(TOKEN_AUTH, {"u": "alice", "p": "wrong"})["data"]["tokenAuth"]["errors"][0]["code"] == (
            "AUTHENTICATION_FAILED"
        )
    locked = gql(TOKEN_AUTH, {"u": "alice", "p": "correct-horse-battery"})["data"]["tokenAuth"]
    assert locked["errors"][0]["code"] == "RATE_LIMITED" and locked["accessToken"] is None


def test_refresh_token_issues_a_new_pair(gql, operator):
    result = gql(REFRESH, {"t": operator.tokens.refresh_token})["data"]["refreshToken"]
    assert result["errors"] == []
    assert gql(ME, token=result["accessToken"])["data"]["me"]["username"] == "alice"


def test_refresh_token_is_not_an_access_token(gql, operator):
    body = gql(ME, token=operator.tokens.refresh_token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_access_token_cannot_refresh(gql, operator):
    result = gql(REFRESH, {"t": operator.tokens.access_token})["data"]["refreshToken"]
    assert result["errors"][0]["code"] == "AUTHENTICATION_FAILED"


def test_expired_and_forged_tokens_are_refused(gql, operator, settings):
    now = int(time.time())
    expired = jwt.encode(
        {
            "sub": str(operator.user.pk),
            "typ": "access",
            "iat": now - 100,
            "exp": now - 10,
            "gen": 0,
            "jti": "e",
            "fam": "00000000-0000-0000-0000-000000000000",
        },
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {
            "sub": str(operator.user.pk),
            "typ": "access",
            "iat": now,
            "exp": now + 100,
            "gen": 0,
            "jti": "f",
            "fam": "00000000-0000-0000-0000-000000000000",
        },
        "some-other-key-that-is-long-enough-000",
        algorithm="HS256",
    )
    for token in (expired, forged):
        assert gql(ME, token=token)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_deactivated_operator_loses_access(gql, operator):
    operator.user.is_active = False
    operator.user.save()
    assert gql(ME, **operator.auth)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_rotate_public_key_stops_the_old_key_at_once(gql, operator):
    router = operator.add_router()
    old_key = operator.public_key
    query = "query($r: ID!) { packages(routerId: $r) { id } }"
    assert "errors" not in gql(query, {"r": str(router.pk)}, public_key=old_key)
    new_key = gql("mutation { rotatePublicKey { publicKey } }", **operator.auth)["data"]["rotatePublicKey"]["publicKey"]
    assert new_key != old_key and re.fullmatch(r"[0-9a-f]{32}", new_key)
    assert gql(query, {"r": str(router.pk)}, public_key=old_key)["errors"][0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )
    assert "errors" not in gql(query, {"r": str(router.pk)}, public_key=new_key)
