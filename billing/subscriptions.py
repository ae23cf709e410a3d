"""Live payment updates over GraphQL subscriptions.

Channel-layer messages are hints (ids only, at-most-once): every wake-up re-reads the database.
A subscription joins its group before its first read, so no change falls in between. Every
SUBSCRIPTION_RESYNC_SECONDS the database is checked anyway, so a lost hint, a worker in another
process on the in-memory layer, or a Redis outage only delays an update.

The subscriptions of one event loop share the work (`_LiveUpdates`, project.live_hub): the process
joins each followed payment's or operator's group once, reads the row once per hint for all of
its local subscribers, and one resync task reads the versions of every followed payment in one
query. A completion reaching 1,000 subscribers of one payment used to be 1,000 channel messages and
reads (issue 14); each subscriber now waits on a future of its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import strawberry
from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from graphql import GraphQLError

from billing import models, selectors
from billing.notifications import PAYMENT_CHANGED, operator_group, payment_group
from billing.schema import PaymentType
from project import metrics
from project.db_threads import ws_database_read
from project.errors import ErrorCode
from project.graphql_support import IsOperator, IsOperatorOrPortal, operator_principal
from project.ids import as_pk
from project.live_hub import LiveHub

logger = logging.getLogger(__name__)


def _ensure_still_valid(principal) -> None:
    """A socket outlives its access token: streams end once the token has expired."""
    if principal.has_expired:
        raise GraphQLError(
            "Access token expired: reconnect with a new one", extensions={"code": ErrorCode.UNAUTHENTICATED.value}
        )


class _Watch:
    """One subscription waiting for news (a hint, a resync that found a change, its token to
    check). A flag and, only while it waits, a future: an asyncio.Event costs a deque (~0.7 KiB)
    per idle subscription. Operator streams also note how far they have read (`since`)."""

    __slots__ = ("principal", "since", "news", "waiter")

    def __init__(self, principal, since=None) -> None:
        self.principal = principal
        self.since = since
        self.news = False
        self.waiter: asyncio.Future | None = None

    def wake(self) -> None:
        self.news = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> None:
        """Until woken since the last `news = False` (at once if that already happened)."""
        if not self.news:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class _Followed:
    """A payment (or an operator's payments) followed by this process's subscriptions: its group is
    joined once, each hint bumps `generation` and wakes every watch, and the row is read once per
    generation for all of them (`_LiveUpdates.payment` / `.changes`)."""

    __slots__ = ("key", "group", "watches", "generation", "read", "read_generation", "version", "newest")

    def __init__(self, key, group: str) -> None:
        self.key, self.group = key, group
        self.watches: set[_Watch] = set()
        self.generation = 0
        self.read: asyncio.Future | None = None  # of `read_generation`, dropped once handed out
        self.read_generation = -1
        self.version: tuple | None = None  # of the payment as last read (the resync compares it)
        self.newest = None  # operators: the latest `updated_at` their streams have read up to

    def hint(self, message: dict) -> None:
        if message.get("type") == PAYMENT_CHANGED:
            self.wake()

    def wake(self) -> None:
        self.generation += 1
        for watch in self.watches:
            watch.wake()


def _versions(payment_ids: list[str]) -> dict[str, tuple]:
    """`_version` of many payments, one query per 1,000 ids (no access rules: it only wakes)."""
    found: dict[str, tuple] = {}
    for start in range(0, len(payment_ids), 1000):
        rows = models.Payment.objects.filter(pk__in=payment_ids[start : start + 1000]).values_list(
            "pk", "updated_at", "activation__updated_at"
        )
        found.update({str(pk): (updated_at, activation_updated_at) for pk, updated_at, activation_updated_at in rows})
    return found


def _payments(payment_ids: list[str]) -> dict[str, models.Payment]:
    """Many payments, one query per 500 ids; who may see each is checked per subscription after."""
    found: dict[str, models.Payment] = {}
    queryset = models.Payment.objects.select_related("router", "package", "activation")
    for start in range(0, len(payment_ids), 500):
        found.update({str(p.pk): p for p in queryset.filter(pk__in=payment_ids[start : start + 500])})
    return found


def _newest_changes(operator_ids: list[int]) -> dict[int, Any]:
    """The latest `updated_at` of each operator's payments (one query; the resync compares it)."""
    rows = (
        models.Payment.objects.filter(owner_id__in=operator_ids).values("owner_id").annotate(latest=Max("updated_at"))
    )
    return {row["owner_id"]: row["latest"] for row in rows.order_by()}


def _changes(operator_id: int, since) -> list[models.Payment]:
    """An operator's payments changed from `since` on (a little before: rows committed out of
    timestamp order are caught, each stream's `seen` dedupes), oldest first, at most 200."""
    queryset = models.Payment.objects.filter(owner_id=operator_id).select_related("router", "package", "activation")
    return list(queryset.filter(updated_at__gte=since - timedelta(seconds=2)).order_by("updated_at")[:200])


class _LiveUpdates:
    """The live subscriptions of one event loop (issue 14): one group membership per followed
    payment or operator (project.live_hub), one read per hint shared by all of its subscribers,
    and one resync task. Each subscription still runs its own GraphQL execution and access check on
    the shared row: what a caller may see differs (masking, client secret).

    Every SUBSCRIPTION_RESYNC_SECONDS the resync reads the versions of all followed payments in one
    query and wakes the followers of those that changed, wakes every operator stream (one shared
    read per operator), and wakes subscriptions whose token expired: a lost hint, a worker on
    another process's in-memory layer or a Redis outage only delays an update. Reads of many
    payments asked for together (thousands of portals subscribing at once) go in batches, on the
    WebSocket database pool (project.db_threads), one round at a time.
    """

    _here: dict[asyncio.AbstractEventLoop, _LiveUpdates] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.payments: dict[str, _Followed] = {}
        self.operators: dict[int, _Followed] = {}
        self.resync: asyncio.Task | None = None
        self.wanted: dict[str, list[asyncio.Future]] = {}  # payment reads waiting for the next round
        self.rounds: asyncio.Task | None = None

    @classmethod
    def here(cls) -> _LiveUpdates:
        loop = asyncio.get_running_loop()
        live = cls._here.get(loop)
        if live is None:
            live = cls._here[loop] = cls(loop)
        return live

    def follow(self, table: dict, key, group: str, watch: _Watch) -> _Followed:
        """`watch` follows `key` from now on; `join` before the first read."""
        followed = table.get(key)
        if followed is None:
            followed = table[key] = _Followed(key, group)
        followed.watches.add(watch)
        if self.resync is None or self.resync.done():
            self.resync = self.loop.create_task(self._resync())
        return followed

    @staticmethod
    async def join(followed: _Followed) -> None:
        """Once this returns no change falls between a read and the hints (or the layer is down)."""
        await LiveHub.here().join(followed.group, followed.hint)

    async def unfollow(self, table: dict, followed: _Followed, watch: _Watch) -> None:
        followed.watches.discard(watch)
        if followed.watches:
            return
        if table.get(followed.key) is followed:
            del table[followed.key]
        if not (self.payments or self.operators):  # a loop that ends leaves nothing behind
            if self.resync is not None:
                self.resync.cancel()
            if self._here.get(self.loop) is self:
                del self._here[self.loop]
        await LiveHub.here().leave(followed.group, followed.hint)

    def _shared(self, followed: _Followed, read: Callable[[], Awaitable]) -> asyncio.Future:
        """The read of the current generation for every subscription that asks before it is handed out."""
        current = followed.read
        failed = current is not None and current.done() and (current.cancelled() or current.exception() is not None)
        if current is None or followed.read_generation != followed.generation or failed:
            current = followed.read = asyncio.ensure_future(read())
            followed.read_generation = followed.generation
            # Handed to those waiting, then dropped: nothing of the row is kept while idle.
            current.add_done_callback(lambda done: self.loop.call_soon(self._forget, followed, done))
        return current

    @staticmethod
    def _forget(followed: _Followed, done: asyncio.Future) -> None:
        if followed.read is done:
            followed.read = None

    async def payment(self, followed: _Followed) -> models.Payment | None:
        """The followed payment as it is since the latest hint: one read for all its subscribers."""

        async def read() -> models.Payment | None:
            payment = await self._batched(followed.key)
            followed.version = _version(payment) if payment is not None else None
            return payment

        return await asyncio.shield(self._shared(followed, read))

    async def changes(self, followed: _Followed) -> list[models.Payment]:
        """The operator's payments changed since the earliest of its streams' `since`: one read
        per hint for all of them (each stream filters its router, `seen` and start).

        The earliest `since` is taken when the read starts, not by each stream that asks: that
        was 1,000 × 1,000 comparisons per hint to 1,000 streams (a third of the fan-out). A
        stream's `since` only grows and a new one starts at now, so it covers every later asker."""

        async def read() -> list[models.Payment]:
            since = min((watch.since for watch in followed.watches), default=timezone.now())
            changed = await ws_database_read(_changes)(followed.key, since)
            followed.newest = max([followed.newest or since, *(p.updated_at for p in changed)])
            return changed

        return await asyncio.shield(self._shared(followed, read))

    async def _batched(self, payment_id: str) -> models.Payment | None:
        future = self.loop.create_future()
        self.wanted.setdefault(payment_id, []).append(future)
        if self.rounds is None or self.rounds.done():
            self.rounds = self.loop.create_task(self._rounds())
        return await future

    async def _rounds(self) -> None:
        read = ws_database_read(_payments)
        while self.wanted:
            batch, self.wanted = self.wanted, {}
            try:
                found, error = await read(list(batch)), None
            except Exception as exc:  # each waiting subscription gets the error, as from its own read
                found, error = {}, exc
            for payment_id, futures in batch.items():
                for future in futures:
                    if future.done():  # the subscriber went away meanwhile
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(found.get(payment_id))

    async def _resync(self) -> None:
        versions, newest = ws_database_read(_versions), ws_database_read(_newest_changes)
        while self.payments or self.operators:
            await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
            payments, operators = list(self.payments.values()), list(self.operators.values())
            try:
                current = await versions([followed.key for followed in payments]) if payments else {}
                latest = await newest([followed.key for followed in operators]) if operators else {}
            except Exception:  # the database is down: try again next interval, never die
                logger.exception("Resync of %d payment(s), %d operator(s) failed", len(payments), len(operators))
                current = latest = None
            for followed in payments:
                if current is not None and current.get(followed.key) != followed.version:
                    followed.wake()
            # Only operators with a change their streams have not read: waking every stream each
            # interval made a tenant's thousands of streams a permanent load (red team, issue 14).
            for followed in operators:
                changed_at = latest.get(followed.key) if latest is not None else None
                if changed_at is not None and (followed.newest is None or changed_at > followed.newest):
                    followed.wake()
            for followed in [*self.payments.values(), *self.operators.values()]:
                for watch in followed.watches:
                    if watch.principal.has_expired:
                        watch.wake()


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
        live, watch = _LiveUpdates.here(), _Watch(principal)
        followed = live.follow(live.payments, str(payment_id), payment_group(payment_id), watch)
        last_version = None
        metrics.SUBSCRIPTIONS_ACTIVE.inc()  # no context manager: one less object per idle stream
        try:
            await live.join(followed)
            while True:
                _ensure_still_valid(principal)
                watch.news = False  # before the read: a hint arriving during it wakes us again
                payment = await live.payment(followed)
                # Shared by every local subscriber of the payment: who may see it is checked here.
                if payment is None or not (
                    payment.owner_id == principal.operator.pk
                    and (principal.is_operator or selectors.payment_secret_matches(payment, client_secret))
                ):
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
                del payment  # keep nothing of the row while idle
                await watch.wait()
        finally:
            metrics.SUBSCRIPTIONS_ACTIVE.dec()
            await live.unfollow(live.payments, followed, watch)

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
        started = timezone.now()
        seen: set = set()
        live, watch = _LiveUpdates.here(), _Watch(principal, since=started)
        operator_id = principal.operator.pk
        followed = live.follow(live.operators, operator_id, operator_group(operator_id), watch)
        metrics.SUBSCRIPTIONS_ACTIVE.inc()  # no context manager: one less object per idle stream
        try:
            await live.join(followed)
            while True:
                _ensure_still_valid(principal)
                watch.news = False
                changed = await live.changes(followed)
                fresh = [
                    p
                    for p in changed
                    if p.updated_at >= watch.since - timedelta(seconds=2)
                    and (router_pk is None or p.router_id == router_pk)
                    and (p.pk, _version(p)) not in seen
                    and _changed_at(p) >= started
                ]
                # Past everything read, not only what this stream yields: the shared read of
                # the operator's streams starts at the earliest of them.
                watch.since = max([watch.since, *(p.updated_at for p in changed)])
                del changed
                for payment in fresh:
                    seen.add((payment.pk, _version(payment)))
                    yield payment  # type: ignore[misc]
                del fresh
                if len(seen) > 10_000:
                    seen = {entry for entry in seen if entry[1][0] >= watch.since - timedelta(seconds=2)}
                await watch.wait()
        finally:
            metrics.SUBSCRIPTIONS_ACTIVE.dec()
            await live.unfollow(live.operators, followed, watch)
