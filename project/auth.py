"""Who is calling: an operator by JWT, or a captive portal by the operator's public key.

The same rules serve HTTP (headers) and WebSockets (the `connection_init` payload).

Tokens (API.md "Authentication"): an access token carries the operator's `token_generation` (`gen`)
and stops working once it moves on (revokeTokens, a password change). Every refresh token is
recorded (`RefreshToken`) in a family that starts at sign-in; refreshing retires the token given and
issues the next one of its family, and a retired token presented again revokes the whole family: one
of the two holders is a thief, and we cannot tell which.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, F
from django.utils import timezone

from project import audit
from project.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

PUBLIC_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
JWT_ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
# Sent to `credentials_group(operator)` when a portal key is rotated or an operator signed out
# everywhere: sockets authenticated that way close (project.consumers).
CREDENTIALS_REVOKED = "credentials.revoked"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `via` tells what the credentials allow (portal keys allow less)."""

    operator: AbstractBaseUser
    via: Literal["jwt", "public_key"]
    # When the credentials stop being valid (access tokens expire; portal keys until rotated).
    expires_at: float | None = None
    generation: int | None = None  # of an access token: valid while the operator's is the same
    public_key: str | None = None  # the portal key used: valid until rotated

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


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=JWT_ALGORITHM)


def _generation_of(user: AbstractBaseUser) -> int:
    from billing.services import operator_profile

    return operator_profile(operator=user).token_generation


def issue_tokens(
    user: AbstractBaseUser, *, family: uuid.UUID | None = None, generation: int | None = None
) -> TokenPair:
    """A new access/refresh pair; the refresh token is recorded in `family` (a new one: a sign-in)."""
    from billing.models import RefreshToken

    generation = _generation_of(user) if generation is None else generation
    family = family or uuid.uuid4()
    now = int(time.time())
    refresh_jti = uuid.uuid4().hex
    refresh_expiry = now + settings.JWT_REFRESH_TOKEN_SECONDS
    # Expired rows prove nothing (an expired token is refused before any lookup): keep the table small.
    RefreshToken.objects.filter(user=user, expires_at__lt=timezone.now()).delete()
    RefreshToken.objects.create(
        jti=refresh_jti, family=family, user=user, expires_at=datetime.fromtimestamp(refresh_expiry, UTC)
    )
    # Both tokens name their family: a reused refresh token ends the family's access tokens too.
    common = {"sub": str(user.pk), "iat": now, "gen": generation, "fam": str(family)}
    return TokenPair(
        access_token=_encode(
            {**common, "typ": "access", "exp": now + settings.JWT_ACCESS_TOKEN_SECONDS, "jti": uuid.uuid4().hex}
        ),
        refresh_token=_encode({**common, "typ": "refresh", "exp": refresh_expiry, "jti": refresh_jti}),
        expires_in=settings.JWT_ACCESS_TOKEN_SECONDS,
    )


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    expires_at: int
    generation: int
    jti: str
    family: uuid.UUID


def decode_token(token: str, expected_type: TokenType) -> TokenClaims | None:
    """The claims of a valid token of the expected type, else None (a refresh token is no access token)."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "typ", "gen", "jti", "fam"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != expected_type:
        return None
    try:
        return TokenClaims(
            user_id=int(claims["sub"]),
            expires_at=int(claims["exp"]),
            generation=int(claims["gen"]),
            jti=str(claims["jti"]),
            family=uuid.UUID(claims["fam"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _without_cycle(user: AbstractBaseUser) -> AbstractBaseUser:
    """`select_related` caches a user and its OperatorProfile on each other: a reference cycle, so a
    closed socket's principal waited, frozen, for the frozen generation's walk, which runs only while
    few sockets are open (project.gc_tuning; what each closed socket still left, issue 14). The
    profile's way back to its user is the one nothing reads; the user keeps its profile."""
    profile = user._state.fields_cache.get("operator")
    if profile is not None:
        profile._state.fields_cache.pop("user", None)
    return user


def _signed_in_user(claims: TokenClaims) -> AbstractBaseUser | None:
    """The active user of a token still of the user's current generation, whose token family was not
    revoked (one query)."""
    from billing.models import RefreshToken

    family_revoked = RefreshToken.objects.filter(family=claims.family, revoked_at__isnull=False)
    user = (
        get_user_model()
        .objects.select_related("operator")
        .filter(pk=claims.user_id, is_active=True, operator__token_generation=claims.generation)
        .exclude(Exists(family_revoked))
        .first()
    )
    return _without_cycle(user) if user is not None else None


def principal_from_bearer(value: str | None) -> Principal | None:
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    claims = decode_token(token.strip(), "access")
    if claims is None:
        return None
    user = _signed_in_user(claims)
    if user is None:
        return None
    return Principal(operator=user, via="jwt", expires_at=claims.expires_at, generation=claims.generation)


def well_formed_public_key(value: str | None) -> str | None:
    """The key in its stored form, or None when it cannot be one (malformed keys never reach the database)."""
    key = (value or "").strip().lower()
    return key if PUBLIC_KEY_RE.match(key) else None


def portal_principals(keys: Collection[str]) -> dict[str, Principal]:
    """The principals of well-formed portal keys that belong to an active operator, by key (one query
    for them all: a reconnect storm's handshakes are read in batches, project.socket_credentials)."""
    from billing.models import OperatorProfile

    profiles = OperatorProfile.objects.select_related("user").filter(public_key__in=keys, user__is_active=True)
    return {
        p.public_key: Principal(operator=_without_cycle(p.user), via="public_key", public_key=p.public_key)
        for p in profiles
    }


def principal_from_public_key(value: str | None) -> Principal | None:
    key = well_formed_public_key(value)
    return portal_principals([key]).get(key) if key else None


def credentials_still_valid(principals: Sequence[Principal]) -> list[bool]:
    """Whether long-lived connections' credentials still hold, in order: token not expired nor
    revoked, key not rotated, operator still active (one query for them all)."""
    from billing.models import OperatorProfile

    live = [p for p in principals if not p.has_expired]
    rows = OperatorProfile.objects.filter(user_id__in={p.operator.pk for p in live}, user__is_active=True)
    current = {
        user_id: (key, gen) for user_id, key, gen in rows.values_list("user_id", "public_key", "token_generation")
    }

    def holds(principal: Principal) -> bool:
        if principal.has_expired or principal.operator.pk not in current:
            return False
        public_key, generation = current[principal.operator.pk]
        if principal.via == "jwt":
            return principal.generation == generation
        return hmac.compare_digest(principal.public_key or "", public_key)

    return [holds(principal) for principal in principals]


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


# --- Refresh, revocation ----------------------------------------------------------------------


def credentials_group(operator_id: object) -> str:
    return f"credentials.{operator_id}"


def publish_credentials_revoked(*, operator_id: object, via: Literal["jwt", "public_key"]) -> None:
    """After commit, close the operator's sockets that were authenticated `via` those credentials."""
    from billing.notifications import publish_after_commit

    publish_after_commit([credentials_group(operator_id)], {"type": CREDENTIALS_REVOKED, "via": via})


def _refresh_refused() -> ApplicationError:
    return ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid or expired refresh token", field="refreshToken")


def refresh_tokens(refresh_token: str) -> TokenPair:
    """Trade a refresh token for the next pair of its family, retiring it.

    A retired or revoked token presented again revokes its whole family (the thief's newer token
    too); a token of an older generation (signed out everywhere since) is refused."""
    from billing.models import RefreshToken

    claims = decode_token(refresh_token, "refresh")
    if claims is None:
        raise _refresh_refused()
    now = timezone.now()
    with transaction.atomic():
        # The conditional update is the lock: of two concurrent refreshes with one token, one wins.
        retired = RefreshToken.objects.filter(
            jti=claims.jti,
            family=claims.family,
            user_id=claims.user_id,
            retired_at__isnull=True,
            revoked_at__isnull=True,
        ).update(retired_at=now)
        user = _signed_in_user(claims) if retired else None
        if user is not None:
            return issue_tokens(user, family=claims.family, generation=claims.generation)
    if not retired and RefreshToken.objects.filter(jti=claims.jti, family=claims.family).exists():
        revoked = RefreshToken.objects.filter(family=claims.family, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            logger.warning("Refresh token reused for user %s: token family %s revoked", claims.user_id, claims.family)
    raise _refresh_refused()


def sign_out_everywhere(user: AbstractBaseUser) -> None:
    """Revoke every refresh-token family of `user` and end their access tokens at their next check
    (revokeTokens, a password change)."""
    from billing.models import OperatorProfile, RefreshToken

    with transaction.atomic():
        OperatorProfile.objects.filter(user=user).update(token_generation=F("token_generation") + 1)
        RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        publish_credentials_revoked(operator_id=user.pk, via="jwt")


def tokens_revoke(*, operator: AbstractBaseUser) -> None:
    """revokeTokens: sign out everywhere, recorded in the operator's log."""
    with transaction.atomic():
        sign_out_everywhere(operator)
        audit.record(operator=operator, actor=operator, action="revokeTokens", obj=operator)
