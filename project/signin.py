"""Password sign-in, one throttle for every door (`tokenAuth` and the admin login).

Only failures count, and they count where they come from, so a stranger elsewhere can never lock an
operator out (API.md "Authentication"):
- per (username, client address): `LOGIN_FREE_FAILURES` failures cost nothing, then each attempt
  must wait 1, 2, 4, 8 ... seconds (capped at `LOGIN_MAX_DELAY_SECONDS`) after the last failure
  (an attempt made too early starts the wait again); a success starts the pair afresh; failures are
  forgotten a day after the last one;
- per client address, across usernames (credential stuffing): at most `LOGIN_RATE_LIMIT_PER_IP`
  failures in `LOGIN_RATE_LIMIT_WINDOW_SECONDS`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from project import throttling
from project.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

FAILURE_MEMORY_SECONDS = 24 * 3600
RATE_LIMITED_MESSAGE = "Too many sign-in attempts. Please wait a moment and try again."
FAILED_MESSAGE = "Invalid username or password"


def sign_in(
    *, username: str, password: str, client_address: str | None, request: HttpRequest | None = None
) -> AbstractBaseUser:
    """The user these credentials belong to, or ApplicationError RATE_LIMITED / AUTHENTICATION_FAILED
    (SERVICE_UNAVAILABLE when the throttle's cache is down)."""
    address = client_address or "unknown"
    pair = f"{username.strip().lower()}\n{address}"  # usernames in any case share one budget
    window = settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS
    delays = {"free": settings.LOGIN_FREE_FAILURES, "cap_seconds": settings.LOGIN_MAX_DELAY_SECONDS}
    if not throttling.within(
        "login:address", address, limit=settings.LOGIN_RATE_LIMIT_PER_IP, window_seconds=window
    ) or not throttling.backoff_allows("login:pair", pair, **delays):
        logger.info("Sign-in throttled for a username from %s", address)
        raise ApplicationError(ErrorCode.RATE_LIMITED, RATE_LIMITED_MESSAGE)
    user = authenticate(request, username=username, password=password)
    if user is None:
        throttling.record("login:address", address, window_seconds=window)
        throttling.backoff_failed("login:pair", pair, memory_seconds=FAILURE_MEMORY_SECONDS, **delays)
        logger.info("Failed sign-in from %s", address)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, FAILED_MESSAGE)
    throttling.backoff_clear("login:pair", pair)
    return user
