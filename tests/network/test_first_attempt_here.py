"""The worker that confirms a payment with IntaSend makes the activation's first attempt itself
(network.activation.first_attempts_here): no queue hop and no claim transaction of its own between
the confirmation and the router. Retries stay the job's (tests/network/test_activation_retries.py)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

import billing.notifications as notifications
import network.tasks
from network.activation import activation_grant, first_attempts_here
from network.models import Activation
from tests.network.conftest import IP, MAC, pay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Activation jobs queued (none should be, for a first attempt made here)."""
    calls: list[int] = []
    original = network.tasks.enqueue_activation

    def enqueue(activation_id: int, **options) -> None:
        calls.append(activation_id)
        original(activation_id, **options)

    monkeypatch.setattr(network.tasks, "enqueue_activation", enqueue)
    return calls


def test_the_confirming_worker_puts_the_customer_online_without_a_job(gql, client, hotspot, queued):
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    activation = Activation.objects.get(payment=payment)
    assert activation.status == Activation.Status.ACTIVE and activation.attempts == 1
    assert queued == []
    assert [s["user"] for s in hotspot.fake.active] == [activation.access_code]


def test_the_completed_hint_goes_out_before_the_router_work(gql, client, hotspot, monkeypatch):
    """The portal hears "paid" at once, not after the router's round trips."""
    hints: list[float] = []
    original = notifications.publish_payment_changed

    def publish(**kwargs) -> None:
        hints.append(time.perf_counter())
        original(**kwargs)

    monkeypatch.setattr(notifications, "publish_payment_changed", publish)
    pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    [user_add] = [c for c in hotspot.fake.commands if c.path == "/ip/hotspot/user/add"]
    assert hints and hints[0] < user_add.received_at


def test_a_failed_first_attempt_leaves_the_retries_to_the_job(gql, client, hotspot, queued):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    assert activation.status == Activation.Status.PENDING and activation.attempts == 1
    assert activation.claimed_until is None  # the job's first retry is not locked out
    assert queued == [activation.pk]


def test_inside_an_open_transaction_the_job_makes_the_attempt(hotspot, queued):
    with transaction.atomic(), first_attempts_here():
        activation = activation_grant(
            source=Activation.Source.MANUAL, owner=hotspot.operator.user, router=hotspot.router, package=hotspot.package
        )
    assert queued == [activation.pk]
    activation.refresh_from_db()
    assert activation.status == Activation.Status.ACTIVE  # the (immediate-mode) job did it


def test_a_grant_made_outside_the_block_is_queued_as_before(hotspot, queued):
    with transaction.atomic():
        activation = activation_grant(
            source=Activation.Source.MANUAL, owner=hotspot.operator.user, router=hotspot.router, package=hotspot.package
        )
    assert queued == [activation.pk]
