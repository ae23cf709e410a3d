"""Who is calling: an operator by JWT, or a captive portal by the operator's public key.

The same rules serve HTTP (headers) and WebSockets (the `connection_init` payload).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

PUBLIC_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
JWT_ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `via` tells what the credentials allow (portal keys allow less)."""

    operator: AbstractBaseUser
    via: Literal["jwt", "public_key"]
    # When the credentials stop being valid (access tokens expire; portal keys until rotated).
    expires_at: float | None = None

    @property
    def has_expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at

    @property
    def is_operator(self) -> bool:
        return self.via == "jwt"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def _encode(user_id: int, token_type: TokenType, lifetime: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "typ": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=JWT_ALGORITHM)


def issue_tokens(user: AbstractBaseUser) -> TokenPair:
    return TokenPair(
        access_token=_encode(user.pk, "access", settings.JWT_ACCESS_TOKEN_SECONDS),
        refresh_token=_encode(user.pk, "refresh", settings.JWT_REFRESH_TOKEN_SECONDS),
        expires_in=settings.JWT_ACCESS_TOKEN_SECONDS,
    )


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    expires_at: int


def decode_token(token: str, expected_type: TokenType) -> TokenClaims | None:
    """The claims of a valid token of the expected type, else None (a refresh token is no access token)."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "typ"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != expected_type:
        return None
    try:
        return TokenClaims(user_id=int(claims["sub"]), expires_at=int(claims["exp"]))
    except (TypeError, ValueError):
        return None


def active_user(user_id: int) -> AbstractBaseUser | None:
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def principal_from_bearer(value: str | None) -> Principal | None:
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    claims = decode_token(token.strip(), "access")
    if claims is None:
        return None
    user = active_user(claims.user_id)
    return Principal(operator=user, via="jwt", expires_at=claims.expires_at) if user else None


def principal_from_public_key(value: str | None) -> Principal | None:
    key = (value or "").strip().lower()
    if not PUBLIC_KEY_RE.match(key):  # malformed keys never reach the database
        return None
    from billing.models import OperatorProfile

    profile = OperatorProfile.objects.select_related("user").filter(public_key=key, user__is_active=True).first()
    return Principal(operator=profile.user, via="public_key") if profile else None


def principal_from_credentials(credentials: Mapping[str, Any]) -> Principal | None:
    """Resolve `Authorization` (preferred) or `X-Public-Key`, matching names case-insensitively.

    Returns None when nothing usable was given *or* what was given is wrong; callers that must
    tell "absent" from "bad" use `has_credentials`.
    """
    lowered = {str(k).lower(): v for k, v in credentials.items() if isinstance(v, str)}
    if "authorization" in lowered:
        return principal_from_bearer(lowered["authorization"])
    if "x-public-key" in lowered:
        return principal_from_public_key(lowered["x-public-key"])
    return None


def has_credentials(credentials: Mapping[str, Any]) -> bool:
    return any(str(k).lower() in {"authorization", "x-public-key"} for k in credentials)
