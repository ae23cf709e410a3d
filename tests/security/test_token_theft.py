"""Issue 9, item 6: refresh tokens rotate with reuse detection; revokeTokens and password changes sign
an operator out everywhere (API.md "Authentication")."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from billing.models import RefreshToken

pytestmark = pytest.mark.django_db

TOKEN_AUTH = """mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) {
  accessToken refreshToken errors { code } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  accessToken refreshToken errors { field code message } } }"""
REVOKE = "mutation { revokeTokens { errors { code message } } }"
ME = "{ me { username } }"
RIGHT = "correct-horse-battery"


def sign_in(gql) -> dict:
    tokens = gql(TOKEN_AUTH, {"u": "alice", "p": "correct-horse-battery"})["data"]["tokenAuth"]
    assert tokens["errors"] == []
    return tokens


def refresh(gql, token: str) -> dict:
    return gql(REFRESH, {"t": token})["data"]["refreshToken"]


def can_read_me(gql, access_token: str) -> bool:
    body = gql(ME, token=access_token)
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        return False
    return body["data"]["me"]["username"] == "alice"


def test_reusing_a_rotated_refresh_token_revokes_its_family(gql, operator):
    stolen = sign_in(gql)
    thief = refresh(gql, stolen["refreshToken"])  # the thief refreshes first...
    assert thief["errors"] == [] and thief["refreshToken"] != stolen["refreshToken"]
    owner = refresh(gql, stolen["refreshToken"])  # ...then the owner presents the same token
    assert owner["accessToken"] is None
    assert owner["errors"] == [
        {"field": "refreshToken", "code": "AUTHENTICATION_FAILED", "message": "Invalid or expired refresh token"}
    ]
    # The whole family is revoked: the thief's newer token fails too, and so does its access token
    # (found from outside: it kept working for the rest of its 15 minutes).
    assert refresh(gql, thief["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"
    assert not can_read_me(gql, thief["accessToken"])
    assert not can_read_me(gql, stolen["accessToken"])
    # Only the stolen sign-in's family: the fixture's own sign-in is another one, still usable.
    assert RefreshToken.objects.filter(revoked_at__isnull=False).values("family").distinct().count() == 1
    assert refresh(gql, operator.tokens.refresh_token)["errors"] == []
    assert can_read_me(gql, operator.tokens.access_token)


def test_a_refresh_token_works_once_and_other_sign_ins_are_untouched_by_reuse(gql, operator):
    laptop, phone = sign_in(gql), sign_in(gql)
    first = refresh(gql, laptop["refreshToken"])
    second = refresh(gql, first["refreshToken"])  # the same family goes on, one token at a time
    assert second["errors"] == [] and can_read_me(gql, second["accessToken"])
    assert refresh(gql, first["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"
    # The phone's family is another sign-in: reuse on the laptop's family does not touch it.
    assert refresh(gql, phone["refreshToken"])["errors"] == []


def test_revoke_tokens_signs_out_every_device_at_their_next_request(gql, operator):
    laptop, phone = sign_in(gql), sign_in(gql)
    assert can_read_me(gql, phone["accessToken"])
    assert gql(REVOKE, token=laptop["accessToken"])["data"]["revokeTokens"] == {"errors": []}
    for device in (laptop, phone):
        assert not can_read_me(gql, device["accessToken"])
        assert refresh(gql, device["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"
    assert can_read_me(gql, sign_in(gql)["accessToken"])  # signing in again works


def test_revoke_tokens_needs_an_operator(gql, operator):
    assert gql(REVOKE)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert gql(REVOKE, public_key=operator.public_key)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_password_change_by_set_password_ends_old_access_and_refresh_tokens(gql, operator):
    before = sign_in(gql)
    user = get_user_model().objects.get(username="alice")
    user.set_password("a-brand-new-passphrase")
    user.save()
    assert not can_read_me(gql, before["accessToken"])
    assert not can_read_me(gql, operator.tokens.access_token)
    assert refresh(gql, before["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"
    after = gql(TOKEN_AUTH, {"u": "alice", "p": "a-brand-new-passphrase"})["data"]["tokenAuth"]
    assert can_read_me(gql, after["accessToken"])


def test_password_change_in_the_admin_ends_old_tokens(gql, operator):
    before = sign_in(gql)
    root = get_user_model().objects.create_superuser("root", password="root-pass-123456")
    admin = Client()
    admin.force_login(root)
    response = admin.post(
        f"/admin/auth/user/{operator.user.pk}/password/",
        {"password1": "changed-by-the-admin-1", "password2": "changed-by-the-admin-1"},
    )
    assert response.status_code == 302, response.content[:500]
    assert not can_read_me(gql, before["accessToken"])
    assert refresh(gql, before["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"


def test_saving_a_user_without_changing_the_password_signs_nobody_out(gql, operator):
    tokens = sign_in(gql)
    user = get_user_model().objects.get(username="alice")
    user.first_name = "Alice"
    user.save()
    assert can_read_me(gql, tokens["accessToken"])
    assert refresh(gql, tokens["refreshToken"])["errors"] == []


def test_password_change_by_the_changepassword_command_ends_old_tokens(gql, operator, monkeypatch):
    from django.contrib.auth.management.commands import changepassword
    from django.core.management import call_command

    before = sign_in(gql)
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "changed-on-the-console-1")
    call_command("changepassword", "alice")
    assert not can_read_me(gql, before["accessToken"])
    assert refresh(gql, before["refreshToken"])["errors"][0]["code"] == "AUTHENTICATION_FAILED"


def test_django_upgrading_a_password_hash_at_sign_in_signs_nobody_out(gql, operator, settings):
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    get_user_model().objects.filter(username="alice").update(password=make_password(RIGHT, hasher="md5"))
    other_device = operator.tokens
    sign_in(gql)  # the same password, stored again with the preferred hasher
    assert get_user_model().objects.get(username="alice").password.startswith("pbkdf2_")
    assert can_read_me(gql, other_device.access_token)
