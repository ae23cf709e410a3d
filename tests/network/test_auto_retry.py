"""Issue 9, item 9: a FAILED activation is retried by itself once its router answers again.

A router outage longer than the job's retries (~5.5 minutes by default) used to leave paid customers
offline until an operator pressed retryActivation. The periodic job probes routers that have FAILED,
still-running grants (one login, backing off while the router stays silent) and starts them again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from network.activation import activations_auto_retry, activations_retry_failed_for_router
from network.models import Activation, Router
from network.tasks import auto_retry_failed_activations
from tests.network.conftest import ROUTER_PASSWORD, pay, run_due_retries, scheduled_retries

pytestmark = pytest.mark.django_db(transaction=True)


def _run_job() -> int:
    """The periodic job's body, as the consumer runs it each minute; returns how many it restarted."""
    return auto_retry_failed_activations.call_local()


def _failed_while_router_down(gql, client, hotspot, **payment) -> Activation:
    hotspot.fake.set_down()
    paid = pay(gql, client, hotspot, **payment)
    for _ in range(3):  # ACTIVATION_RETRIES in these tests
        run_due_retries()
    activation = Activation.objects.get(payment=paid)
    assert activation.status == "FAILED" and activation.attempts == 4
    assert scheduled_retries() == []
    return activation


def test_router_back_after_a_long_outage_puts_the_customer_online_without_an_operator(gql, client, hotspot, caplog):
    activation = _failed_while_router_down(gql, client, hotspot)
    assert _run_job() == 0  # still down: nothing restarted
    activation.refresh_from_db()
    assert activation.status == "FAILED"

    hotspot.fake.set_down(False)
    caplog.set_level(logging.INFO, logger="network.activation")
    # The probe schedule backs off after a silent probe; the next due run finds the router back.
    report = activations_auto_retry(now=timezone.now() + timedelta(minutes=2))
    assert (report.probed, report.answered, report.retried) == (1, 1, 1)

    activation.refresh_from_db()
    assert activation.status == "ACTIVE" and activation.attempts == 5 and activation.last_error == ""
    assert [u["name"] for u in hotspot.fake.users] == [activation.access_code]
    assert f"Activation {activation.pk}: router {hotspot.router.pk} answers again" in caplog.text
    assert Router.objects.get(pk=hotspot.router.pk).last_contact_at is not None


def test_the_periodic_job_retries_as_soon_as_the_router_answers(gql, client, hotspot):
    activation = _failed_while_router_down(gql, client, hotspot)
    hotspot.fake.set_down(False)
    assert _run_job() == 1
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"
    # Nothing FAILED is left: the next run does not even connect.
    hotspot.fake.clear_commands()
    assert _run_job() == 0
    assert hotspot.fake.commands == []


def test_a_silent_router_is_probed_with_a_growing_interval(gql, client, hotspot):
    activation = _failed_while_router_down(gql, client, hotspot)
    start = timezone.now()

    def run(after_seconds: int):
        report = activations_auto_retry(now=start + timedelta(seconds=after_seconds))
        return report.probed, report.retried

    assert run(0) == (1, 0)  # first probe at once: silent
    assert run(30) == (0, 0)  # next one after 60 s
    assert run(61) == (1, 0)  # silent again: next after 120 s
    assert run(61 + 100) == (0, 0)
    hotspot.fake.set_down(False)
    assert run(61 + 100) == (0, 0)  # back, but not asked yet
    assert run(61 + 121) == (1, 1)
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"


def test_a_grant_whose_time_is_over_is_not_retried(gql, client, hotspot):
    activation = _failed_while_router_down(gql, client, hotspot)
    Activation.objects.filter(pk=activation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    hotspot.fake.set_down(False)
    hotspot.fake.clear_commands()
    assert _run_job() == 0
    assert hotspot.fake.commands == []  # no candidate, no probe
    assert Activation.objects.get(pk=activation.pk).status == "FAILED"


def test_a_grant_tried_too_often_is_left_to_the_operator(gql, client, hotspot, settings):
    activation = _failed_while_router_down(gql, client, hotspot)
    settings.ACTIVATION_AUTO_RETRY_MAX_ATTEMPTS = activation.attempts
    hotspot.fake.set_down(False)
    assert _run_job() == 0
    assert Activation.objects.get(pk=activation.pk).status == "FAILED"


def test_credentials_fixed_by_the_operator_are_picked_up_by_the_next_probe(gql, client, hotspot):
    router = Router.objects.get(pk=hotspot.router.pk)
    router.set_password("not-the-router-password")
    router.save()
    activation = Activation.objects.get(payment=pay(gql, client, hotspot))
    assert activation.status == "FAILED" and activation.attempts == 1
    start = timezone.now()
    assert activations_auto_retry(now=start).retried == 0  # the login is still refused
    assert Activation.objects.get(pk=activation.pk).status == "FAILED"

    router.set_password(ROUTER_PASSWORD)
    router.save()
    assert activations_auto_retry(now=start + timedelta(minutes=2)).retried == 1
    assert Activation.objects.get(pk=activation.pk).status == "ACTIVE"


def test_retry_for_a_router_restarts_only_that_routers_failures(gql, client, hotspot, operator):
    activation = _failed_while_router_down(gql, client, hotspot)
    hotspot.fake.set_down(False)
    other_router = operator.add_router(name="Back Street")
    assert activations_retry_failed_for_router(other_router.pk) == []
    assert Activation.objects.get(pk=activation.pk).status == "FAILED"
    assert activations_retry_failed_for_router(hotspot.router.pk) == [activation.pk]
    assert Activation.objects.get(pk=activation.pk).status == "ACTIVE"
