"""`operatorPaymentUpdates` yields only changes made after it started (API.md "Subscriptions").

It once overlapped its first read window by two seconds, so a dashboard that subscribed right after
a payment changed was handed that older change as if it were news (Apollo then merged a stale row)."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone
from strawberry.channels.testing import GraphQLWebsocketCommunicator

from billing.models import Payment
from tests.documents import INITIATE

pytestmark = pytest.mark.django_db(transaction=True)

OPERATOR_SUBSCRIBE = "subscription { operatorPaymentUpdates { id status failureReason } }"


@pytest.fixture
def application():
    from project.asgi import application

    return application


@pytest.fixture
def two_payments(gql, shop):
    ids = []
    for phone in ("0712345678", "0722345678"):
        result = gql(INITIATE, {"input": shop.payment_input(phoneNumber=phone)}, **shop.operator.auth)
        ids.append(result["data"]["initiatePayment"]["payment"]["id"])
    return ids


async def test_a_change_just_before_subscribing_is_not_replayed(application, shop, two_payments, settings):
    settings.SUBSCRIPTION_RESYNC_SECONDS = 0.3
    earlier, later = two_payments
    # Changed a moment before the dashboard subscribes: inside the old two-second overlap.
    await Payment.objects.filter(pk=earlier).aupdate(failure_reason="before", updated_at=timezone.now())
    await asyncio.sleep(0.05)
    params = {"Authorization": f"Bearer {shop.operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        stream = ws.subscribe(OPERATOR_SUBSCRIBE, {})
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(1)  # several resync ticks: the earlier change must not come out of any
        assert not first.done()
        await Payment.objects.filter(pk=later).aupdate(failure_reason="after", updated_at=timezone.now())
        seen = await asyncio.wait_for(first, 3)
        assert seen.data["operatorPaymentUpdates"]["id"] == later
        assert seen.data["operatorPaymentUpdates"]["failureReason"] == "after"
