"""Live payment updates over GraphQL subscriptions.

Channel-layer messages are hints (ids only, at-most-once): every wake-up re-reads the database.
A subscription joins its group before its first read, so no change falls in between, and also
wakes up every SUBSCRIPTION_RESYNC_SECONDS, so a lost hint, a worker in another process on the
in-memory layer, or a Redis outage only delays an update.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import timedelta

import strawberry
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from graphql import GraphQLError

from billing import models, selectors
from billing.notifications import CHANNEL_LAYER_ERRORS, PAYMENT_CHANGED, operator_group, payment_group
from billing.schema import PaymentType
from project.errors import ErrorCode
from project.graphql_support import IsOperator, IsOperatorOrPortal, operator_principal

logger = logging.getLogger(__name__)


def _ensure_still_valid(principal) -> None:
    """A socket outlives its access token: streams end once the token has expired."""
    if principal.has_expired:
        raise GraphQLError("Access token expired: reconnect with a new one", extensions={"code": "UNAUTHENTICATED"})


async def _wake_ups(consumer, principal, groups: list[str], wanted: Callable[[dict], bool]) -> AsyncGenerator[None]:
    """Yield at once, on every wanted hint, and on every resync tick, surviving layer outages."""
    while True:
        try:
            async with consumer.listen_to_channel(
                PAYMENT_CHANGED, groups=groups, timeout=settings.SUBSCRIPTION_RESYNC_SECONDS
            ) as hints:
                _ensure_still_valid(principal)
                yield
                async for hint in hints:
                    if wanted(hint):
                        _ensure_still_valid(principal)
                        yield
        except CHANNEL_LAYER_ERRORS as exc:
            # Redis restarting: keep the subscriber, poll the database until the layer is back.
            logger.warning("Channel layer unavailable for %s (%s); polling", groups, exc)
            await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
            _ensure_still_valid(principal)
            yield


def _load_payment(principal, payment_id: uuid.UUID) -> models.Payment | None:
    return (
        selectors.payments_for(principal.operator)
        .select_related("router", "package", "activation")
        .filter(pk=payment_id)
        .first()
    )


def _activation(payment: models.Payment):
    try:
        return payment.activation  # loaded by select_related
    except models.Payment.activation.RelatedObjectDoesNotExist:
        return None


def _version(payment: models.Payment) -> tuple:
    activation = _activation(payment)
    return (payment.updated_at, activation.updated_at if activation else None)


def _stream_is_over(payment: models.Payment) -> bool:
    """A portal stops caring once the payment failed or the router answered for it."""
    if payment.status == models.Payment.Status.FAILED:
        return True
    activation = _activation(payment)
    return activation is not None and activation.status != "PENDING"


def _changed_since(principal, router_id: int | None, since, seen: set) -> list[models.Payment]:
    queryset = selectors.payments_for(principal.operator).select_related("router", "package", "activation")
    if router_id is not None:
        queryset = queryset.filter(router_id=router_id)
    # Overlap the window a little: rows committed out of timestamp order are caught, `seen` dedupes.
    changed = queryset.filter(updated_at__gte=since - timedelta(seconds=2)).order_by("updated_at")[:200]
    return [p for p in changed if (p.pk, _version(p)) not in seen]


@strawberry.type(name="Subscription")
class BillingSubscription:
    @strawberry.subscription(
        permission_classes=[IsOperatorOrPortal],
        description="The payment as it is now, then every change, until it fails or the router answers",
    )
    async def payment_updates(self, info: strawberry.Info, payment_id: uuid.UUID) -> AsyncGenerator[PaymentType]:
        principal = operator_principal(info)
        load = sync_to_async(_load_payment)
        last_version = None
        wake_ups = _wake_ups(
            info.context["ws"],
            principal,
            [payment_group(payment_id)],
            lambda hint: hint.get("payment_id") == str(payment_id),
        )
        async for _ in wake_ups:
            payment = await load(principal, payment_id)
            if payment is None:
                if last_version is None:
                    raise GraphQLError(
                        "Payment not found or access denied", extensions={"code": ErrorCode.PAYMENT_NOT_FOUND.value}
                    )
                return
            if _version(payment) != last_version:
                last_version = _version(payment)
                yield payment  # type: ignore[misc]
            if _stream_is_over(payment):
                return

    @strawberry.subscription(
        permission_classes=[IsOperator],
        description="Every change to any of the operator's payments (optionally one router's), from now on",
    )
    async def operator_payment_updates(
        self, info: strawberry.Info, router_id: strawberry.ID | None = None
    ) -> AsyncGenerator[PaymentType]:
        principal = operator_principal(info)
        router_pk = int(router_id) if router_id is not None and str(router_id).isdigit() else None
        if router_id is not None and router_pk is None:
            return
        changed_since = sync_to_async(_changed_since)
        since, seen = timezone.now(), set()
        async for _ in _wake_ups(
            info.context["ws"], principal, [operator_group(principal.operator.pk)], lambda _: True
        ):
            for payment in await changed_since(principal, router_pk, since, seen):
                seen.add((payment.pk, _version(payment)))
                since = max(since, payment.updated_at)
                yield payment  # type: ignore[misc]
            if len(seen) > 10_000:
                seen = {entry for entry in seen if entry[1][0] >= since - timedelta(seconds=2)}
