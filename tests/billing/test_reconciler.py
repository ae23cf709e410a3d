"""The reconciler: payments whose webhook never came still end, by asking IntaSend (or giving up)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Payment, PaymentEvent
from billing.tasks import reconcile_payments
from tests.documents import CREATE_LINK, INITIATE

pytestmark = pytest.mark.django_db(transaction=True)


def make_payment(gql, shop, *, minutes_old: float, document=INITIATE, field="initiatePayment", **overrides):
    result = gql(document, {"input": shop.payment_input(**overrides)}, **shop.operator.auth)["data"][field]
    assert result["errors"] == []
    payment = Payment.objects.get(pk=result["payment"]["id"])
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_old))
    payment.refresh_from_db()
    return payment


def status_calls(shop) -> int:
    return len(shop.intasend.requests_to("payment/status/"))


def test_webhook_never_delivered_payment_still_completes(gql, shop):
    payment = make_payment(gql, shop, minutes_old=3)
    shop.intasend.settle(payment.intasend_invoice_id, "COMPLETE", webhook=False)
    assert reconcile_payments.call_local() == 1
    payment.refresh_from_db()
    assert payment.status == "COMPLETED"
    assert PaymentEvent.objects.get(payment=payment, new_status="COMPLETED").source == "POLL"
    assert payment.activation.status == "PENDING"


def test_young_payments_are_left_to_their_webhook(gql, shop):
    payment = make_payment(gql, shop, minutes_old=0.5)
    calls = status_calls(shop)
    assert reconcile_payments.call_local() == 0
    assert status_calls(shop) == calls
    payment.refresh_from_db()
    assert payment.status == "PROCESSING"


def test_unanswered_payment_is_asked_again_with_backoff(gql, shop):
    payment = make_payment(gql, shop, minutes_old=3)
    calls = status_calls(shop)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert status_calls(shop) == calls + 1
    assert payment.status == "PROCESSING" and payment.reconcile_attempts == 1
    assert payment.next_reconcile_at > timezone.now()
    reconcile_payments.call_local()  # not due yet: IntaSend is not asked again
    assert status_calls(shop) == calls + 1
    Payment.objects.filter(pk=payment.pk).update(next_reconcile_at=timezone.now() - timedelta(seconds=1))
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert status_calls(shop) == calls + 2 and payment.reconcile_attempts == 2


def test_payment_unanswered_past_the_cutoff_times_out(gql, shop):
    payment = make_payment(gql, shop, minutes_old=31)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert payment.status == "FAILED"
    assert payment.failure_reason == "No final answer from IntaSend within 30 minutes; the payment was abandoned"
    assert PaymentEvent.objects.get(payment=payment, new_status="FAILED").source == "POLL"


def test_intasend_down_past_the_cutoff_keeps_asking_then_gives_up(gql, shop):
    # Failing while IntaSend cannot be asked could fail a paid payment: it is asked again (bounded).
    payment = make_payment(gql, shop, minutes_old=45)
    shop.intasend.fail_next("payment/status/", status=503)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert payment.status == "PROCESSING" and payment.next_reconcile_at is not None

    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - timedelta(hours=25), next_reconcile_at=None
    )
    shop.intasend.fail_next("payment/status/", status=503)
    reconcile_payments.call_local()
    payment.refresh_from_db()
    assert payment.status == "FAILED"


def test_unpaid_checkout_link_waits_for_its_own_cutoff(gql, shop):
    link = make_payment(gql, shop, minutes_old=40, document=CREATE_LINK, field="createPaymentLink")
    reconcile_payments.call_local()
    link.refresh_from_db()
    assert link.status == "PENDING"  # a link lives as long as its checkout (an hour)
    Payment.objects.filter(pk=link.pk).update(created_at=timezone.now() - timedelta(minutes=61), next_reconcile_at=None)
    reconcile_payments.call_local()
    link.refresh_from_db()
    assert link.status == "FAILED"


def test_paid_checkout_link_is_found_by_the_reconciler(gql, shop):
    link = make_payment(gql, shop, minutes_old=5, document=CREATE_LINK, field="createPaymentLink")
    shop.intasend.pay_checkout(link.intasend_checkout_id, "COMPLETE", webhook=False)
    reconcile_payments.call_local()
    link.refresh_from_db()
    assert link.status == "COMPLETED" and link.intasend_invoice_id
