"""Any sequence of news, from any path, keeps the payment state machine's invariants.

Final states stay final; completion (and its activation) happens at most once; every status
change leaves an event; a completion needs IntaSend's own invoice, reference and amount.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Payment, PaymentEvent
from billing.services import INTASEND_STATE_TO_STATUS, payment_apply_gateway_state, payment_fail
from network.models import Activation

pytestmark = pytest.mark.django_db

SOURCES = [PaymentEvent.Source.WEBHOOK, PaymentEvent.Source.CHECK, PaymentEvent.Source.POLL]
STATES = ["PENDING", "PROCESSING", "COMPLETE", "COMPLETED", "FAILED", "CANCELLED", "RETRY", "", "complete"]

news = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("state"),
            "source": st.sampled_from(SOURCES),
            "state": st.sampled_from(STATES),
            "amount": st.sampled_from([None, Decimal("25"), Decimal("25.00"), Decimal("24.99"), Decimal("250")]),
            "invoice": st.sampled_from(["OURS", "OTHER", None]),
            "api_ref": st.sampled_from(["OURS", "someone-else", None]),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("fail"), "source": st.sampled_from(SOURCES)}),
)


@pytest.fixture
def make_payment(shop):
    # Hypothesis's examples share one test database and one invoice pays one payment: number them.
    invoices = itertools.count(1)

    def make() -> Payment:
        return Payment.objects.create(
            owner=shop.operator.user,
            router=shop.router,
            package=shop.package,
            credential=shop.credential,
            phone_number="254712345678",
            amount=Decimal("25.00"),
            status=Payment.Status.PROCESSING,
            intasend_invoice_id=f"INV{next(invoices):04d}",
            intasend_state="PENDING",
        )

    return make


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(news, min_size=1, max_size=12))
def test_any_sequence_of_news_keeps_the_invariants(make_payment, sequence):
    payment = make_payment()
    history: list[str] = [payment.status]
    for item in sequence:
        before = Payment.objects.get(pk=payment.pk)
        if item["kind"] == "fail":
            after = payment_fail(payment_id=payment.pk, source=item["source"], reason="given up")
        else:
            after = payment_apply_gateway_state(
                payment_id=payment.pk,
                source=item["source"],
                state=item["state"],
                raw={"n": 1},
                amount=item["amount"],
                invoice_id={"OURS": payment.intasend_invoice_id, "OTHER": "OTHER-INV", None: None}[item["invoice"]],
                api_ref={"OURS": str(payment.pk), None: None}.get(item["api_ref"], item["api_ref"]),
            )
        after.refresh_from_db()
        history.append(after.status)

        if before.is_final:
            assert after.status == before.status, "a final payment moved"
        if item["kind"] == "state" and after.status == "COMPLETED" and before.status != "COMPLETED":
            assert INTASEND_STATE_TO_STATUS.get(item["state"].upper()) == "COMPLETED"
            assert item["amount"] in (None, Decimal("25"))
            assert item["invoice"] != "OTHER" and item["api_ref"] in ("OURS", None)

    events = list(PaymentEvent.objects.filter(payment=payment).order_by("id"))
    transitions = [(e.old_status, e.new_status) for e in events if e.old_status != e.new_status]
    # Every status change is recorded, in order, and the record chains up.
    statuses = [s for i, s in enumerate(history) if i == 0 or s != history[i - 1]]
    assert [new for _, new in transitions] == statuses[1:]
    assert all(old == prev for (old, _), prev in zip(transitions, statuses, strict=False))
    assert sum(1 for _, new in transitions if new == "COMPLETED") <= 1
    final = Payment.objects.get(pk=payment.pk)
    assert Activation.objects.filter(payment=final).count() == (1 if final.status == "COMPLETED" else 0)
    assert (final.completed_at is not None) == (final.status == "COMPLETED")
    if final.status == "COMPLETED":
        assert final.package_expiry_time - final.completed_at == timedelta(minutes=final.package.duration_minutes)
    if final.status == "FAILED":
        assert final.failure_reason
