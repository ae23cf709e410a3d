"""Issue 9, item 19 (the throttle's part): with Redis unreachable, throttled operations answer
SERVICE_UNAVAILABLE, not "Internal server error", and let nothing through unthrottled."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests.documents import INITIATE
from tests.live import free_port

pytestmark = pytest.mark.django_db

TOKEN_AUTH = """mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) {
  accessToken errors { code message } } }"""


@pytest.fixture
def redis_down() -> Iterator[None]:
    """The cache is a Redis at a loopback port nothing listens on."""
    location = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}}
    ):
        yield


def test_token_auth_answers_service_unavailable_when_redis_is_down(gql, operator, redis_down, caplog):
    caplog.set_level(logging.WARNING)
    body = gql(TOKEN_AUTH, {"u": "alice", "p": "correct-horse-battery"})
    assert "errors" not in body
    result = body["data"]["tokenAuth"]
    assert result["accessToken"] is None
    assert [error["code"] for error in result["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert "try again in a moment" in result["errors"][0]["message"]
    warnings = [record for record in caplog.records if record.name == "project.throttling"]
    assert warnings and all(r.levelno == logging.WARNING and r.exc_info is None for r in warnings)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_portal_payment_answers_service_unavailable_when_redis_is_down(gql, shop, redis_down):
    body = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.portal)
    assert "errors" not in body
    result = body["data"]["initiatePayment"]
    assert [error["code"] for error in result["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert shop.intasend.requests_to("mpesa-stk-push/") == []  # nothing sent unthrottled
