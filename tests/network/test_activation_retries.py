"""An unreachable or refusing router: Huey's retries with backoff, FAILED at the end, retryActivation."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from network.activation import Outcome, activation_perform, activations_stalled
from network.models import Activation, Router
from network.routeros import AUTH_FAILED_TEXT
from network.tasks import rescue_stalled_activations
from tests.network.conftest import (
    IP,
    MAC,
    activation_of,
    drop_scheduled_retries,
    initiate,
    pay,
    run_due_retries,
    scheduled_retries,
)

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = """
mutation($id: UUID!) { retryActivation(paymentId: $id) {
  payment { id status activation { status accessCode attempts lastError } }
  errors { field code message }
} }
"""


def _delay_seconds(task) -> float:
    now = datetime.now(UTC).replace(tzinfo=None)
    return (task.eta - now).total_seconds()


def test_router_down_is_retried_with_backoff_until_it_comes_back(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)

    activation = activation_of(gql, payment, **hotspot.operator.auth)
    assert activation["status"] == "PENDING" and activation["attempts"] == 1
    assert activation["lastError"].startswith("Could not connect to router 127.0.0.1:")
    assert activation["accessCode"]  # chosen once, before the first try
    [retry] = scheduled_retries()
    assert 3 < _delay_seconds(retry) <= 5  # ACTIVATION_RETRY_DELAY_SECONDS

    # The consumer runs it 5 s later: still down, the next delay doubles.
    assert len(run_due_retries()) == 1
    [retry] = scheduled_retries()
    assert 8 < _delay_seconds(retry) <= 10
    assert Activation.objects.get(payment=payment).attempts == 2

    # The router comes back: the customer goes online without anyone acting.
    hotspot.fake.set_down(False)
    run_due_retries()
    after = activation_of(gql, payment, **hotspot.operator.auth)
    assert after["status"] == "ACTIVE" and after["attempts"] == 3 and after["lastError"] is None
    assert after["accessCode"] == activation["accessCode"]  # kept across retries
    assert [u["name"] for u in hotspot.fake.users] == [after["accessCode"]]
    assert [s["user"] for s in hotspot.fake.active] == [after["accessCode"]]
    assert scheduled_retries() == []


def test_connection_lost_after_the_user_was_added_is_finished_by_the_retry(gql, client, hotspot):
    hotspot.fake.drop_next("/ip/hotspot/user/add", after_apply=True)
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    assert activation.status == "PENDING"
    assert "lost during /ip/hotspot/user/add" in activation.last_error
    run_due_retries()
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"
    assert len(hotspot.fake.users) == 1  # the retry found the user and set it, no duplicate


def test_retries_exhausted_fail_then_retry_activation_brings_the_customer_online(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    for _ in range(3):  # ACTIVATION_RETRIES
        assert len(run_due_retries()) == 1
    failed = activation_of(gql, payment, **hotspot.operator.auth)
    assert failed["status"] == "FAILED" and failed["attempts"] == 4
    assert "Could not connect to router" in failed["lastError"]
    assert scheduled_retries() == []
    # The portal sees the failure too (and the reason).
    assert activation_of(gql, payment, **hotspot.operator.portal)["status"] == "FAILED"

    hotspot.fake.set_down(False)
    result = gql(RETRY, {"id": str(payment.pk)}, **hotspot.operator.auth)["data"]["retryActivation"]
    assert result["errors"] == []
    activation = result["payment"]["activation"]
    assert activation["status"] == "ACTIVE" and activation["attempts"] == 5
    assert activation["accessCode"] == failed["accessCode"]
    assert [u["name"] for u in hotspot.fake.users] == [failed["accessCode"]]


def test_retry_activation_refuses_what_is_not_failed(gql, client, hotspot):
    payment = pay(gql, client, hotspot)
    result = gql(RETRY, {"id": str(payment.pk)}, **hotspot.operator.auth)["data"]["retryActivation"]
    assert result["payment"] is None
    assert result["errors"] == [
        {
            "field": "paymentId",
            "code": "ACTIVATION_NOT_RETRYABLE",
            "message": "Only a FAILED activation can be retried; this one is ACTIVE",
        }
    ]

    unpaid = initiate(gql, hotspot, phoneNumber="0722000111")
    errors = gql(RETRY, {"id": str(unpaid.pk)}, **hotspot.operator.auth)["data"]["retryActivation"]["errors"]
    assert [e["code"] for e in errors] == ["ACTIVATION_NOT_RETRYABLE"]


def test_retry_activation_of_someone_elses_payment_looks_missing(gql, client, hotspot, other_operator):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    Activation.objects.filter(payment=payment).update(status="FAILED")
    for payment_id in (str(payment.pk), "7e3f1c52-0000-4000-8000-000000000000"):
        result = gql(RETRY, {"id": payment_id}, **other_operator.auth)["data"]["retryActivation"]
        assert result == {
            "payment": None,
            "errors": [
                {"field": "paymentId", "code": "PAYMENT_NOT_FOUND", "message": "Payment not found or access denied"}
            ],
        }
    assert Activation.objects.get(payment=payment).status == "FAILED"


def test_retry_activation_needs_an_operator(gql, client, hotspot):
    response = gql(RETRY, {"id": "7e3f1c52-0000-4000-8000-000000000000"}, **hotspot.operator.portal)
    assert response["data"] is None
    assert response["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_wrong_router_credentials_fail_at_once_with_a_clear_error(gql, client, hotspot):
    router = Router.objects.get(pk=hotspot.router.pk)
    router.set_password("not-the-router-password")
    router.save()
    payment = pay(gql, client, hotspot)
    activation = activation_of(gql, payment, **hotspot.operator.auth)
    # Retrying cannot fix credentials: FAILED on the first try, for the operator to act on.
    assert activation["status"] == "FAILED" and activation["attempts"] == 1
    assert activation["lastError"] == AUTH_FAILED_TEXT == "Router rejected the API username or password"
    assert scheduled_retries() == []
    assert hotspot.fake.users == []


def test_two_workers_never_work_on_the_same_activation_at_once(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation_id = Activation.objects.get(payment=payment).pk
    hotspot.fake.set_down(False)

    first_is_at_the_router = threading.Event()
    second_is_done = threading.Event()

    def hold_first_worker() -> None:
        first_is_at_the_router.set()
        second_is_done.wait(timeout=10)

    hotspot.fake.on_next("/ip/hotspot/user/add", hold_first_worker)
    outcomes: dict[str, Outcome] = {}

    def first_worker() -> None:
        try:
            outcomes["first"] = activation_perform(activation_id, final_attempt=False)
        finally:
            connection.close()  # this thread's own connection

    first = threading.Thread(target=first_worker)
    first.start()
    assert first_is_at_the_router.wait(timeout=10)
    # The second worker, in this thread, while the first is still talking to the router.
    outcomes["second"] = activation_perform(activation_id, final_attempt=False)
    second_is_done.set()
    first.join(timeout=10)

    assert outcomes == {"first": Outcome.ACTIVE, "second": Outcome.SKIPPED}
    activation = Activation.objects.get(pk=activation_id)
    assert activation.status == "ACTIVE" and activation.attempts == 2  # the failed one + the first worker
    assert hotspot.fake.command_paths().count("/ip/hotspot/user/add") == 1


def test_a_pending_activation_whose_job_was_lost_is_rescued(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    hotspot.fake.set_down(False)
    # A worker died mid-attempt an hour ago: its lease ran out, and its queued retry went with it.
    long_ago = timezone.now() - timedelta(hours=1)
    Activation.objects.filter(pk=activation.pk).update(updated_at=long_ago, claimed_until=long_ago)
    assert len(drop_scheduled_retries()) == 1

    assert rescue_stalled_activations.call_local() == 1
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"


def test_an_activation_a_worker_holds_is_not_rescued(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    long_ago = timezone.now() - timedelta(hours=1)
    Activation.objects.filter(payment=payment).update(
        updated_at=long_ago, claimed_until=timezone.now() + timedelta(minutes=1)
    )
    assert activations_stalled() == []
    Activation.objects.filter(payment=payment).update(claimed_until=None)
    assert activations_stalled() == [payment.activation.pk]
    Activation.objects.filter(payment=payment).update(updated_at=timezone.now())
    assert activations_stalled() == []  # recently tried: its own job is still on it


def test_an_unexpected_error_is_recorded_and_retried_like_a_router_failure(gql, client, hotspot, monkeypatch):
    import network.services

    real = network.services.profile_spec
    calls = {"n": 0}

    def broken_once(package):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(package)

    monkeypatch.setattr(network.services, "profile_spec", broken_once)
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    assert activation.status == "PENDING" and activation.claimed_until is None  # the lease was released
    assert activation.last_error == "Internal error while activating (RuntimeError)"
    run_due_retries()
    activation.refresh_from_db()
    assert activation.status == "ACTIVE"


RETRY_BY_ACTIVATION = """
mutation($id: ID) { retryActivation(activationId: $id) {
  activation { id status source accessCode attempts }
  payment { id activation { id status } }
  errors { field code message }
} }
"""


def test_retry_activation_by_its_own_id_brings_the_customer_online(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    Activation.objects.filter(pk=activation.pk).update(status="FAILED")
    drop_scheduled_retries()

    hotspot.fake.set_down(False)
    result = gql(RETRY_BY_ACTIVATION, {"id": str(activation.pk)}, **hotspot.operator.auth)["data"]["retryActivation"]
    assert result["errors"] == []
    assert result["activation"]["id"] == str(activation.pk)
    assert result["activation"]["status"] == "ACTIVE" and result["activation"]["source"] == "PAYMENT"
    # The payment that bought it comes along, for clients that show payments.
    assert result["payment"] == {"id": str(payment.pk), "activation": {"id": str(activation.pk), "status": "ACTIVE"}}


def test_retry_activation_by_payment_id_still_works_and_names_the_activation(gql, client, hotspot):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    Activation.objects.filter(pk=activation.pk).update(status="FAILED")
    drop_scheduled_retries()

    hotspot.fake.set_down(False)
    document = "mutation($id: UUID!) { retryActivation(paymentId: $id) { activation { id status } errors { code } } }"
    result = gql(document, {"id": str(payment.pk)}, **hotspot.operator.auth)["data"]["retryActivation"]
    assert result == {"activation": {"id": str(activation.pk), "status": "ACTIVE"}, "errors": []}


def test_retry_activation_of_an_unknown_or_foreign_activation_id_looks_missing(gql, client, hotspot, other_operator):
    hotspot.fake.set_down()
    payment = pay(gql, client, hotspot)
    activation = Activation.objects.get(payment=payment)
    Activation.objects.filter(pk=activation.pk).update(status="FAILED")
    for activation_id in (str(activation.pk), "999999", "not-a-number"):
        result = gql(RETRY_BY_ACTIVATION, {"id": activation_id}, **other_operator.auth)["data"]["retryActivation"]
        assert result == {
            "activation": None,
            "payment": None,
            "errors": [{"field": "activationId", "code": "ACTIVATION_NOT_FOUND", "message": "Activation not found"}],
        }
    assert Activation.objects.get(pk=activation.pk).status == "FAILED"


def test_retry_activation_needs_exactly_one_id(gql, client, hotspot):
    both = (
        'mutation { retryActivation(activationId: "1", paymentId: "7e3f1c52-0000-4000-8000-000000000000")'
        " { errors { code } } }"
    )
    for document in (both, "mutation { retryActivation { errors { code } } }"):
        result = gql(document, **hotspot.operator.auth)["data"]["retryActivation"]
        assert result == {"errors": [{"code": "INVALID_INPUT"}]}
