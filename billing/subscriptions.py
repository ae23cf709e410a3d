"""Live payment updates over GraphQL subscriptions.

Channel-layer messages are hints (ids only, at-most-once): every wake-up re-reads the database.
A subscription joins its group before its first read, so no change falls in between. Every
SUBSCRIPTION_RESYNC_SECONDS the database is checked anyway, so a lost hint, a worker in another
process on the in-memory layer, or a Redis outage only delays an update. For `paymentUpdates` one
resync task per event loop (`_ResyncHub`) reads the versions of all watched payments in one query
and wakes only the subscriptions whose payment changed (or whose token expired): one ORM read per
subscription per interval kept a core busy at a few thousand idle portals (tests/benchmarks/).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import timedelta
from typing import Any

import strawberry
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from graphql import GraphQLError

from billing import models, selectors
from billing.notifications import (
    CHANNEL_LAYER_ERRORS,
    PAYMENT_CHANGED,
    operator_group,
    payment_group,
    raise_if_cancelling,
)
from billing.schema import PaymentType
from project.errors import ErrorCode
from project.graphql_support import IsOperator, IsOperatorOrPortal, operator_principal

logger = logging.getLogger(__name__)


def _ensure_still_valid(principal) -> None:
    """A socket outlives its access token: streams end once the token has expired."""
    if principal.has_expired:
        raise GraphQLError("Access token expired: reconnect with a new one", extensions={"code": "UNAUTHENTICATED"})


async def _wake_ups(
    consumer, principal, groups: list[str], wanted: Callable[[dict], bool], *, ticks: bool = True
) -> AsyncGenerator[None]:
    """Yield at once, on every wanted hint, and (with `ticks`) on every resync tick, surviving layer
    outages. Without `ticks` the resync hints come from `_ResyncHub`."""
    # Ticks arrive as hints from a timer task, so no asyncio.wait_for (which on Python 3.11 can
    # swallow a cancellation) sits in the read and the stream never leaves its groups.
    ticker = asyncio.create_task(_tick(consumer, groups)) if ticks else None
    try:
        while True:
            try:
                async with consumer.listen_to_channel(PAYMENT_CHANGED, groups=groups) as hints:
                    _ensure_still_valid(principal)
                    yield
                    async for hint in hints:
                        if (ticks and hint.get("resync")) or wanted(hint):
                            _ensure_still_valid(principal)
                            yield
            except CHANNEL_LAYER_ERRORS as exc:
                raise_if_cancelling(exc)
                # Redis restarting: keep the subscriber, poll the database until the layer is back.
                logger.warning("Channel layer unavailable for %s (%s); polling", groups, exc)
                await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
                _ensure_still_valid(principal)
                yield
    finally:
        if ticker is not None:
            ticker.cancel()


async def _tick(consumer, groups: list[str]) -> None:
    """Every SUBSCRIPTION_RESYNC_SECONDS renew the stream's group memberships (a restarted Redis
    forgot them) and hand it a resync hint."""
    while True:
        await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
        try:
            for group in groups:
                await consumer.channel_layer.group_add(group, consumer.channel_name)
        except CHANNEL_LAYER_ERRORS as exc:
            raise_if_cancelling(exc)
            logger.warning("Channel layer unavailable for %s (%s); resync continues", groups, exc)
        await consumer.dispatch({"type": PAYMENT_CHANGED, "resync": True})


def _versions(payment_ids: list[str]) -> dict[str, tuple]:
    """`_version` of many payments, one query per 1,000 ids (no access rules: it only wakes)."""
    found: dict[str, tuple] = {}
    for start in range(0, len(payment_ids), 1000):
        rows = models.Payment.objects.filter(pk__in=payment_ids[start : start + 1000]).values_list(
            "pk", "updated_at", "activation__updated_at"
        )
        found.update({str(pk): (updated_at, activation_updated_at) for pk, updated_at, activation_updated_at in rows})
    return found


class _ResyncHub:
    """The periodic safety net of the `paymentUpdates` subscriptions of one event loop.

    Each subscription registers the version of the payment it last read; every
    SUBSCRIPTION_RESYNC_SECONDS one task reads the current versions of all of them and hands a hint
    to those whose payment changed or vanished, or whose access token expired. The hint goes
    straight to the subscription's consumer (not through the channel layer, so it also works while
    Redis is down), and the subscription re-reads the row as for any hint.
    """

    _hubs: dict[asyncio.AbstractEventLoop, _ResyncHub] = {}
    _tokens = itertools.count()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watching: dict[int, tuple[Any, Any, str, tuple]] = {}  # token → (consumer, principal, id, version)
        self.task: asyncio.Task | None = None

    @classmethod
    def here(cls) -> _ResyncHub:
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls(loop)
        return hub

    def watch(self, token: int, consumer, principal, payment_id: str, version: tuple) -> None:
        self.watching[token] = (consumer, principal, payment_id, version)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())

    def unwatch(self, token: int) -> None:
        self.watching.pop(token, None)
        if not self.watching:
            if self.task is not None:
                self.task.cancel()
                self.task = None
            if self._hubs.get(self.loop) is self:
                del self._hubs[self.loop]

    async def _run(self) -> None:
        versions = sync_to_async(_versions)
        while self.watching:
            await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
            watched = list(self.watching.values())
            try:
                current = await versions(list({payment_id for _, _, payment_id, _ in watched}))
            except Exception:  # the database is down: try again next interval, never die
                logger.exception("Resync of %d subscription(s) failed", len(watched))
                current = None
            for consumer, principal, payment_id, version in watched:
                if (current is not None and current.get(payment_id) != version) or principal.has_expired:
                    await consumer.dispatch({"type": PAYMENT_CHANGED, "payment_id": payment_id})


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
        consumer = info.context["ws"]
        load = sync_to_async(_load_payment)
        last_version = None
        wake_ups = _wake_ups(
            consumer,
            principal,
            [payment_group(payment_id)],
            lambda hint: hint.get("payment_id") == str(payment_id),
            ticks=False,
        )
        hub, token = _ResyncHub.here(), next(_ResyncHub._tokens)
        try:
            async for _ in wake_ups:
                payment = await load(principal, payment_id)
                if payment is None:
                    if last_version is None:
                        raise GraphQLError(
                            "Payment not found or access denied",
                            extensions={"code": ErrorCode.PAYMENT_NOT_FOUND.value},
                        )
                    return
                version = _version(payment)
                if version != last_version:
                    last_version = version
                    yield payment  # type: ignore[misc]
                if _stream_is_over(payment):
                    return
                hub.watch(token, consumer, principal, str(payment_id), version)
                del payment  # keep nothing of the row while idle
        finally:
            hub.unwatch(token)

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
