"""Shared fixtures: operators, routers, packages, credentials, a loopback IntaSend, a GraphQL client."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, override_settings
from django.test.testcases import _StaticFilesHandler
from django.utils import timezone

from billing.models import OperatorProfile, Payment
from billing.services import CredentialInput, credential_add
from network.models import Package, Router
from network.services import PackageInput, RouterInput, package_create, router_create
from project.auth import issue_tokens
from tests.fakes.intasend_server import FakeIntaSend

# DEBUG (and with it the simulators) is off by default since issue 9, but `project.urls` decides
# once, at its first import, whether the /simulator/ routes exist: give the suite the routes, as
# before, whichever test imports the URLs first (tests switch SIMULATORS_ENABLED per test).
settings.SIMULATORS_ENABLED = True

INTASEND_PUBLIC_KEY = "ISPubKey_test_cloudpilot0001"
INTASEND_SECRET_KEY = "ISSecretKey_test_verysecret0001"
OTHER_PUBLIC_KEY = "ISPubKey_test_otheroperator02"
OTHER_SECRET_KEY = "ISSecretKey_test_othersecret02"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`.ci/run` runs the suite on three configurations; what does not depend on the database or
    Redis (browser walks, deployment checks) is run on one of them. Each configuration may be split
    into shards run side by side (CLOUDPILOT_SHARD=k/n)."""
    if shard := os.environ.get("CLOUDPILOT_SHARD"):
        _keep_shard(config, items, shard)
    if not os.environ.get("CLOUDPILOT_SKIP_ONCE"):
        return
    skip = pytest.mark.skip(reason="runs once per CI run, on another pass (CLOUDPILOT_SKIP_ONCE is set)")
    for item in items:
        if item.get_closest_marker("once"):
            item.add_marker(skip)


def _keep_shard(config: pytest.Config, items: list[pytest.Item], shard: str) -> None:
    """Shard k of n keeps every n-th test file, counted in path order from the k-th: a directory of
    slow files (tests/e2e) is shared out rather than landing on one shard. A test's fixtures and
    module state stay whole, since a file is never split."""
    number, count = (int(part) for part in shard.split("/"))
    if not 1 <= number <= count:
        raise pytest.UsageError(f"CLOUDPILOT_SHARD={shard!r}: expected k/n with 1 <= k <= n")
    files = sorted({item.path for item in items})
    kept_files = set(files[number - 1 :: count])
    kept = [item for item in items if item.path in kept_files]
    config.hook.pytest_deselected(items=[item for item in items if item.path not in kept_files])
    items[:] = kept


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_inline() -> Iterator[None]:
    """In-process tests run jobs at enqueue time; live-server tests run a real consumer instead."""
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = True
    yield


@pytest.fixture(autouse=True, scope="session")
def _static_files_as_in_production(tmp_path_factory) -> Iterator[None]:
    """Hashed, compressed static files from a collected STATIC_ROOT, as in production: one per run,
    inherited by the live servers it starts. pytest-django's live_server would look /static/ up in
    the apps' folders, where hashed names do not exist: it serves STATIC_ROOT instead."""
    root = tmp_path_factory.mktemp("static")
    os.environ["STATIC_ROOT"] = str(root)
    with (
        override_settings(STATIC_ROOT=root),
        mock.patch("django.contrib.staticfiles.handlers.StaticFilesHandler", _StaticFilesHandler),
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield


class QuickPasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 at a thousand rounds instead of a million: each operator a test makes, and each
    sign-in, cost half a second of CPU, most of the suite's set-up time. The stored hash is standard
    `pbkdf2_sha256$1000$...`, so the servers a test starts (default hashers) still check it."""

    iterations = 1000


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=[f"{__name__}.QuickPasswordHasher", *settings.PASSWORD_HASHERS]):
        yield


@pytest.fixture(autouse=True, scope="session")
def _no_router_simulator_in_the_test_process() -> None:
    """Importing project.asgi in a test must not start the demo's RouterOS simulator on its fixed port."""
    from django.conf import settings

    settings.ROUTEROS_SIMULATOR_AUTOSTART = False


@pytest.fixture(autouse=True, scope="session")
def _loopback_routers_allowed() -> None:
    """The suite's fake routers listen on loopback, which a real installation refuses (network.destinations).

    tests/security/test_router_destinations.py takes this away again to show that refusal."""
    from django.conf import settings

    settings.ROUTER_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> Iterator[None]:
    # Throttled attempts stay counted for the whole test, however slow the machine.
    settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 10**9
    settings.PAYMENT_RATE_LIMIT_WINDOW_SECONDS = 10**9
    cache.clear()  # throttling counters must not leak between tests
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_pooled_router_connections_between_tests() -> Iterator[None]:
    """Each test starts with no live router connection (router ids and ports are reused across tests)."""
    from network.routeros_pool import pool

    pool.close_all()
    yield
    pool.close_all()


# The key pairs every loopback IntaSend of the suite knows: what its credentials are made of.
INTASEND_TEST_ACCOUNTS = {INTASEND_PUBLIC_KEY: INTASEND_SECRET_KEY, OTHER_PUBLIC_KEY: OTHER_SECRET_KEY}


@pytest.fixture(scope="session")
def _background_intasend() -> Iterator[FakeIntaSend]:
    with FakeIntaSend(accounts=INTASEND_TEST_ACCOUNTS) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _intasend_never_real(settings, _background_intasend: FakeIntaSend) -> None:
    """No test reaches the real IntaSend: adding a credential checks its keys there, so by default a loopback
    IntaSend that knows the suite's keys answers; `fake_intasend` (or the app's simulator) takes over where
    a test needs to see or steer it."""
    settings.INTASEND_API_BASE_URL = _background_intasend.base_url


@pytest.fixture
def fake_intasend(settings) -> Iterator[FakeIntaSend]:
    """A loopback server speaking IntaSend's HTTP API; the real SDK is pointed at it."""
    with FakeIntaSend(accounts=INTASEND_TEST_ACCOUNTS) as fake:
        settings.INTASEND_API_BASE_URL = fake.base_url
        settings.INTASEND_CONNECT_TIMEOUT = 2
        settings.INTASEND_READ_TIMEOUT = 2
        yield fake


class Operator:
    """A test operator: the user, their tokens and portal key, and what they own."""

    def __init__(self, username: str) -> None:
        self.user = get_user_model().objects.create_user(username=username, password="correct-horse-battery")
        self.tokens = issue_tokens(self.user)

    @property
    def public_key(self) -> str:
        return OperatorProfile.objects.get(user=self.user).public_key

    @property
    def auth(self) -> dict[str, str]:
        return {"token": self.tokens.access_token}

    @property
    def portal(self) -> dict[str, str]:
        return {"public_key": self.public_key}

    def add_router(
        self,
        name: str = "Main Street",
        host: str = "127.0.0.1",
        port: int = 1,  # nothing listens there: activation fails fast unless a test brings a router
        password: str = "router-pass-123",
    ) -> Router:
        return router_create(
            operator=self.user,
            data=RouterInput(name=name, host=host, username="cloudpilot", password=password, api_port=port),
        )

    def add_package(
        self,
        router: Router,
        *,
        price: str = "25.00",
        minutes: int = 60,
        name: str = "1 Hour",
        active: bool = True,
        data_limit_mb: int | None = None,
    ) -> Package:
        return package_create(
            operator=self.user,
            data=PackageInput(
                router_id=router.pk,
                name=name,
                price=Decimal(price),
                duration_minutes=minutes,
                upload_kbps=1024,
                download_kbps=2048,
                data_limit_mb=data_limit_mb,
                is_active=active,
            ),
        )

    def add_paid_payment(self, router: Router, package: Package, **fields: Any) -> Payment:
        """A payment IntaSend has completed (recorded directly: no gateway, no activation job)."""
        now = timezone.now()
        return Payment.objects.create(
            owner=self.user,
            router=router,
            package=package,
            phone_number="254712345678",
            amount=package.price,
            status=Payment.Status.COMPLETED,
            completed_at=now,
            package_expiry_time=now + timedelta(minutes=package.duration_minutes),
            **fields,
        )

    def add_credential(
        self,
        api_key: str = INTASEND_PUBLIC_KEY,
        private_key: str = INTASEND_SECRET_KEY,
        challenge: str | None = "webhook-challenge-1",
    ):
        return credential_add(
            operator=self.user,
            data=CredentialInput(api_key=api_key, private_key=private_key, webhook_challenge=challenge),
        )


@pytest.fixture
def operator(db) -> Operator:
    return Operator("alice")


@pytest.fixture
def other_operator(db) -> Operator:
    return Operator("bob")


@pytest.fixture
def shop(operator: Operator, fake_intasend: FakeIntaSend):
    """Alice's ready-to-sell hotspot: a router, a 25 KES package and IntaSend credentials."""
    router = operator.add_router()
    package = operator.add_package(router)
    credential = operator.add_credential()
    fake_intasend.reset()  # the credential's key check is not the test's traffic: start with an empty log
    return _Shop(operator=operator, router=router, package=package, credential=credential, intasend=fake_intasend)


class _Shop:
    def __init__(self, **parts: Any) -> None:
        self.__dict__.update(parts)

    def payment_input(self, **overrides: Any) -> dict[str, Any]:
        data = {
            "routerId": str(self.router.pk),
            "packageId": str(self.package.pk),
            "phoneNumber": "0712345678",
            "amount": "25.00",
        }
        data.update(overrides)
        return data


GraphQL = Callable[..., dict[str, Any]]


@pytest.fixture
def gql(client: Client) -> GraphQL:
    """POST a GraphQL operation to /graphql/ like a real client; returns the decoded JSON body."""

    def run(
        query: str,
        variables: dict | None = None,
        *,
        token: str | None = None,
        public_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        extra: dict[str, str] = dict(headers or {})
        if token is not None:
            extra["Authorization"] = f"Bearer {token}"
        if public_key is not None:
            extra["X-Public-Key"] = public_key
        response = client.post(
            "/graphql/",
            data=json.dumps({"query": query, "variables": variables or {}}),
            content_type="application/json",
            headers=extra,
        )
        assert response.status_code in (200, 400), response.content[:500]
        return response.json()

    return run
