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
from contextlib import aclosing
from datetime import timedelta
from typing import Annotated, Any

import strawberry
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
from project.db_threads import ws_database_read
from project.errors import ErrorCode
from project.graphql_support import IsOperator, IsOperatorOrPortal, operator_principal
from project.ids import as_pk

logger = logging.getLogger(__name__)


def _ensure_still_valid(principal) -> None:
    """A socket outlives its access token: streams end once the token has expired."""
    if principal.has_expired:
        raise GraphQLError(
            "Access token expired: reconnect with a new one", extensions={"code": ErrorCode.UNAUTHENTICATED.value}
        )


async def _wake_ups(
    consumer, principal, groups: list[str], wanted: Callable[[dict], bool], *, ticks: bool = True
) -> AsyncGenerator[None]:
    """Yield at once, on every wanted hint, and (with `ticks`) on every resync tick, surviving layer
    outages. Without `ticks` the resync hints come from `_ResyncHub`."""
    # Ticks arrive as hints from a timer task, so no asyncio.wait_for (which on Python 3.11 can
    # swallow a cancellation) sits in the read and the stream never leaves its groups.
    ticker = asyncio.create_task(_tick(consumer, groups)) if ticks else None
    started = False
    try:
        while True:
            try:
                async with (
                    consumer.listen_to_channel(PAYMENT_CHANGED, groups=groups) as messages,
                    aclosing(messages) as hints,
                ):
                    _ensure_still_valid(principal)
                    started = True
                    yield
                    async for hint in hints:
                        if (ticks and hint.get("resync")) or wanted(hint):
                            _ensure_still_valid(principal)
                            yield
            except CHANNEL_LAYER_ERRORS as exc:
                raise_if_cancelling(exc)
                # Redis restarting: keep the subscriber, poll the database until the layer is back.
                logger.warning("Channel layer unavailable for %s (%s); polling", groups, exc)
                if started:  # the first result never waits for the layer
                    await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
                _ensure_still_valid(principal)
                started = True
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
        versions = ws_database_read(_versions)
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


def _payments_of(operator, payment_ids: list[uuid.UUID]) -> dict[uuid.UUID, models.Payment]:
    """Many of one operator's payments, one query per 500 ids (the caller's secret is checked after)."""
    found: dict[uuid.UUID, models.Payment] = {}
    queryset = selectors.payments_for(operator).select_related("router", "package", "activation")
    for start in range(0, len(payment_ids), 500):
        found.update({p.pk: p for p in queryset.filter(pk__in=payment_ids[start : start + 500])})
    return found


class _PaymentLoads:
    """The reads of the `paymentUpdates` subscriptions of one event loop, batched.

    One client setting up thousands of subscriptions, or one completion waking thousands of
    subscribers, costs one query per operator per round instead of one per subscription: per-row
    ORM work in threads starved the event loop (and with it `/healthz/` and the webhook) through
    the GIL. One round runs at a time, on the WebSocket database pool (project.db_threads); loads
    asked for meanwhile wait for the next round, so rounds grow with the load.
    """

    _loads: dict[asyncio.AbstractEventLoop, _PaymentLoads] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[Any, tuple[Any, dict[uuid.UUID, list[asyncio.Future]]]] = {}
        self.task: asyncio.Task | None = None

    @classmethod
    def here(cls) -> _PaymentLoads:
        loop = asyncio.get_running_loop()
        loads = cls._loads.get(loop)
        if loads is None:
            loads = cls._loads[loop] = cls(loop)
        return loads

    async def load(self, principal, payment_id: uuid.UUID, client_secret: str | None) -> models.Payment | None:
        """The payment as `selectors.payment_find_for_caller` gives it: own payments for operators,
        and for a public-key caller only with the payment's client secret."""
        future = self.loop.create_future()
        operator = principal.operator
        self.pending.setdefault(operator.pk, (operator, {}))[1].setdefault(payment_id, []).append(future)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())
        payment = await future
        if payment is None or not (principal.is_operator or selectors.payment_secret_matches(payment, client_secret)):
            return None
        return payment

    async def _run(self) -> None:
        read = ws_database_read(_payments_of)
        while self.pending:
            batch, self.pending = self.pending, {}
            for operator, wanted in batch.values():
                try:
                    found = await read(operator, list(wanted))
                except Exception as exc:  # each waiting subscription gets the error, as from its own read
                    found, error = {}, exc
                else:
                    error = None
                for payment_id, futures in wanted.items():
                    for future in futures:
                        if future.done():  # the subscriber went away meanwhile
                            continue
                        if error is not None:
                            future.set_exception(error)
                        else:
                            future.set_result(found.get(payment_id))
        if self._loads.get(self.loop) is self:  # nothing waits: a loop that ends leaves nothing behind
            del self._loads[self.loop]


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


def _changed_at(payment: models.Payment):
    """When the payment or its activation last changed."""
    return max(stamp for stamp in _version(payment) if stamp is not None)


def _changed_since(principal, router_id: int | None, since, seen: set, started) -> list[models.Payment]:
    queryset = selectors.payments_for(principal.operator).select_related("router", "package", "activation")
    if router_id is not None:
        queryset = queryset.filter(router_id=router_id)
    # Overlap the window a little: rows committed out of timestamp order are caught, `seen` dedupes.
    # The overlap must not reach behind the subscription's start: it yields only what changed after.
    changed = queryset.filter(updated_at__gte=since - timedelta(seconds=2)).order_by("updated_at")[:200]
    return [p for p in changed if (p.pk, _version(p)) not in seen and _changed_at(p) >= started]


@strawberry.type(name="Subscription", description="Live updates over WebSocket on /graphql/")
class BillingSubscription:
    @strawberry.subscription(
        permission_classes=[IsOperatorOrPortal],
        description="The payment as it is now, then every change (status, IntaSend state, activation); the "
        "stream completes once the payment is FAILED or its activation is ACTIVE or FAILED. Operator JWT or "
        "X-Public-Key with the payment's clientSecret. Over WebSocket (graphql-transport-ws or graphql-ws), "
        "credentials in the connection_init payload",
    )
    async def payment_updates(
        self,
        info: strawberry.Info,
        payment_id: Annotated[uuid.UUID, strawberry.argument(description="The payment to follow (its `id`)")],
        client_secret: Annotated[
            str | None,
            strawberry.argument(
                description="Required for public-key callers: the `clientSecret` from initiatePayment or "
                "createPaymentLink; absent or wrong reads as a missing payment (PAYMENT_NOT_FOUND)"
            ),
        ] = None,
    ) -> AsyncGenerator[PaymentType]:
        principal = operator_principal(info)
        consumer = info.context["ws"]
        last_version = None
        # Closed here, in this task, however the stream ends: a cancellation landing while the body
        # awaits would leave it suspended for the garbage collector, whose finalizer closes it and
        # the generators it holds concurrently, each `aclose()` finding the others still running.
        wake_ups = _wake_ups(
            consumer,
            principal,
            [payment_group(payment_id)],
            lambda hint: hint.get("payment_id") == str(payment_id),
            ticks=False,
        )
        hub, token = _ResyncHub.here(), next(_ResyncHub._tokens)
        try:
            async with aclosing(wake_ups):
                async for _ in wake_ups:
                    # Batched with the other subscriptions' reads, never on the thread HTTP requests wait for.
                    payment = await _PaymentLoads.here().load(principal, payment_id, client_secret)
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
        description="Operator JWT only: every change to any of the operator's payments (optionally one "
        "router's) made after the subscription started; older changes are not replayed (read `payments`)",
    )
    async def operator_payment_updates(
        self,
        info: strawberry.Info,
        router_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this router's payments; null for every router of the operator"),
        ] = None,
    ) -> AsyncGenerator[PaymentType]:
        principal = operator_principal(info)
        router_pk = as_pk(router_id) if router_id is not None else None
        if router_id is not None and router_pk is None:
            return
        changed_since = ws_database_read(_changed_since)
        started = timezone.now()
        since, seen = started, set()
        wake_ups = _wake_ups(info.context["ws"], principal, [operator_group(principal.operator.pk)], lambda _: True)
        async with aclosing(wake_ups):  # closed in this task, as for paymentUpdates
            async for _ in wake_ups:
                for payment in await changed_since(principal, router_pk, since, seen, started):
                    seen.add((payment.pk, _version(payment)))
                    since = max(since, payment.updated_at)
                    yield payment  # type: ignore[misc]
                if len(seen) > 10_000:
                    seen = {entry for entry in seen if entry[1][0] >= since - timedelta(seconds=2)}
