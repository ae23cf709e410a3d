"""News of an access grant reaches its payment's subscribers through the seam network owns
(``network.signals.activation_changed``), not by network calling billing (DESIGN.md "Access grants")."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing.models import Payment
from network import activation as network_activation
from network.signals import activation_changed
from tests.documents import INITIATE
from tests.grants import grant_for

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = (
    "subscription($id: UUID!) { paymentUpdates(paymentId: $id) {"
    " id status activation { id status lastError source } } }"
)


@pytest.fixture
def application():
    from project.asgi import application

    return application


@pytest.fixture
def paid_and_pending(gql, shop):
    """A completed payment whose grant is still PENDING (its job has not run)."""
    result = gql(INITIATE, {"input": shop.payment_input()}, **shop.operator.auth)["data"]["initiatePayment"]
    payment = Payment.objects.get(pk=result["payment"]["id"])
    Payment.objects.filter(pk=payment.pk).update(status="COMPLETED", completed_at=timezone.now())
    payment.refresh_from_db()
    return payment, grant_for(payment)


async def test_an_activation_change_reaches_a_payment_updates_subscriber(application, shop, paid_and_pending, settings):
    settings.SUBSCRIPTION_RESYNC_SECONDS = 60  # only the hint can bring the change in time
    payment, activation = paid_and_pending
    params = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(SUBSCRIBE, {"id": str(payment.pk)})
        first = (await stream.__anext__()).data["paymentUpdates"]
        assert first["activation"] == {
            "id": str(activation.pk),
            "status": "PENDING",
            "lastError": None,
            "source": "PAYMENT",
        }
        # A change made by network alone (a recording error releases the lease): it publishes nothing
        # of billing's, only its own signal, which billing turns into the payment's hint.
        await sync_to_async(network_activation._release_after_record_error)(activation.pk, final_attempt=False)
        changed = (await stream.__anext__()).data["paymentUpdates"]
        assert changed["activation"]["lastError"] == network_activation.RECORD_FAILED_TEXT
        assert changed["activation"]["status"] == "PENDING"


def test_the_signal_is_sent_after_commit_with_the_activation_and_its_operator(paid_and_pending):
    payment, activation = paid_and_pending
    heard: list[dict] = []

    def listener(sender, **kwargs):
        heard.append({k: kwargs[k] for k in ("activation_id", "owner_id")})

    activation_changed.connect(listener, dispatch_uid="test.listener")
    try:
        with transaction.atomic():
            network_activation._release_after_record_error(activation.pk, final_attempt=False)
            assert heard == []  # nothing before the change is committed
        assert heard == [{"activation_id": activation.pk, "owner_id": payment.owner_id}]

        with pytest.raises(RuntimeError), transaction.atomic():
            network_activation._release_after_record_error(activation.pk, final_attempt=False)
            raise RuntimeError("rolled back")
        assert len(heard) == 1  # a rolled-back change is no news
    finally:
        activation_changed.disconnect(dispatch_uid="test.listener")


def test_a_grant_without_a_payment_publishes_nothing_of_billings(paid_and_pending, monkeypatch):
    import billing.notifications as notifications

    payment, activation = paid_and_pending
    Payment.objects.filter(pk=payment.pk).update(activation=None)
    type(activation).objects.filter(pk=activation.pk).update(source="MANUAL", reference="")
    published: list[object] = []
    monkeypatch.setattr(notifications, "publish_payment_changed", lambda **kw: published.append(kw))
    network_activation._release_after_record_error(activation.pk, final_attempt=False)
    assert published == []


def test_a_paid_grants_news_names_its_payment_without_reading_it(
    paid_and_pending, monkeypatch, django_assert_num_queries
):
    """The claim publishes on the way to the router: finding the payment must cost that path no query."""
    import billing.notifications as notifications

    payment, activation = paid_and_pending
    sent: list[str] = []
    monkeypatch.setattr(notifications, "publish_payment_changed", lambda **kw: sent.append(str(kw["payment_id"])))
    news = {"sender": type(activation), "activation_id": activation.pk, "owner_id": activation.owner_id}
    with django_assert_num_queries(0):
        activation_changed.send_robust(**news, source=activation.source, reference=activation.reference)
        activation_changed.send_robust(**news, source="VOUCHER", reference="a-voucher-code-id")
    assert sent == [str(payment.pk)]  # the voucher's grant has no payment to tell
