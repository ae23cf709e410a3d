"""Fixtures for router activation: Alice's shop wired to a fake MikroTik, and paying like a customer.

Jobs run in Huey's immediate mode (see tests/conftest.py): the activation job runs when the payment's
transaction commits. A failed attempt is put on Huey's schedule with its backoff delay, exactly as
with a real consumer; `run_due_retries` plays the consumer's scheduler once those delays have passed.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from huey.api import Task
from huey.contrib.djhuey import HUEY

from billing.models import Payment
from network.models import Router
from network.tasks import activate_customer
from tests.documents import INITIATE, PAYMENT
from tests.fakes.routeros_server import PROFILE, FakeRouterOS

ROUTER_USER = "cloudpilot"  # what Operator.add_router registers
ROUTER_PASSWORD = "router-pass-123"
CHALLENGE = "webhook-challenge-1"  # the shop fixture's credential
MAC = "AA:BB:CC:DD:EE:01"
IP = "10.5.50.23"


@pytest.fixture(autouse=True)
def _activation_knobs(settings) -> None:
    settings.ROUTER_API_TIMEOUT_SECONDS = 2
    settings.ACTIVATION_RETRIES = 3
    settings.ACTIVATION_RETRY_DELAY_SECONDS = 5
    settings.ACTIVATION_RETRY_BACKOFF = 2


@pytest.fixture(autouse=True)
def _no_leftover_retries() -> Iterator[None]:
    """Activation retries other tests left on the in-memory schedule must not run in this one."""
    drop_scheduled_retries()
    yield
    drop_scheduled_retries()


def _is_activation(task: Task) -> bool:
    return isinstance(task, activate_customer.task_class)


def drop_scheduled_retries() -> list[Task]:
    """Pop every scheduled activation job (whatever its eta), leaving other jobs in place."""
    everything = HUEY.read_schedule(_far_future())
    for task in everything:
        if not _is_activation(task):
            HUEY.add_schedule(task)
    return [task for task in everything if _is_activation(task)]


def _far_future() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(days=3650)


def scheduled_retries() -> list[Task]:
    """The activation retries waiting on Huey's schedule (left in place)."""
    return [task for task in HUEY.scheduled() if _is_activation(task)]


def run_due_retries() -> list[Task]:
    """Run the scheduled activation retries as the consumer would once their eta has come.

    Returns the tasks that ran (with the eta Huey had given them). A retry that fails again goes
    back on the schedule with the next, longer delay.
    """
    tasks = drop_scheduled_retries()
    for task in tasks:
        HUEY.execute(task, timestamp=_far_future())
    return tasks


@pytest.fixture
def fake_router() -> Iterator[FakeRouterOS]:
    with FakeRouterOS(username=ROUTER_USER, password=ROUTER_PASSWORD, identity="main-street-hap") as fake:
        yield fake


@pytest.fixture
def hotspot(shop, fake_router):
    """Alice's shop (router, 25 KES/1 h package at 1024k up/2048k down, credentials), the router's
    API pointing at the fake MikroTik, which has the package's profile."""
    Router.objects.filter(pk=shop.router.pk).update(host=fake_router.host, api_port=fake_router.port)
    shop.router.refresh_from_db()
    # The package's profile as its sync job (after createPackage's commit) puts it on the router.
    fake_router.seed_row(PROFILE, name=shop.package.profile_name, rate_limit="1024k/2048k", shared_users="1")
    shop.fake = fake_router
    return shop


def deliver_webhook(client, shop, payment: Payment) -> Any:
    body = shop.intasend.webhook_body(payment.intasend_invoice_id, challenge=CHALLENGE)
    response = client.post("/payments/webhook/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response


def initiate(gql, shop, *, public_key: str | None = None, **overrides: Any) -> Payment:
    """An STK push through GraphQL, by the portal (public key) unless told otherwise."""
    key = public_key or shop.operator.public_key
    result = gql(INITIATE, {"input": shop.payment_input(**overrides)}, public_key=key)["data"]["initiatePayment"]
    assert result["errors"] == [], result["errors"]
    return Payment.objects.get(pk=result["payment"]["id"])


def pay(gql, client, shop, **overrides: Any) -> Payment:
    """A customer pays: STK push, the money arrives at IntaSend, its COMPLETE webhook reaches us."""
    payment = initiate(gql, shop, **overrides)
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    deliver_webhook(client, shop, payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.COMPLETED
    return payment


def activation_of(gql, payment: Payment, **auth: str) -> dict[str, Any]:
    """Payment.activation as a GraphQL client sees it (a portal as the payer: with the client secret)."""
    data = gql(PAYMENT, {"id": str(payment.pk), "secret": payment.client_secret}, **auth)["data"]["payment"]
    assert data is not None
    return data["activation"]
