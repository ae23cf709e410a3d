"""routerUpdates: an operator's routers' health changes, pushed over the WebSocket.

Status changes come from the periodic probe (once a minute at most) and from router contacts, so the
stream reads the operator's routers' health every SUBSCRIPTION_RESYNC_SECONDS (one small query, on the
WebSocket read pool, never on the thread HTTP requests wait for) and yields the routers whose status or
lastError changed. It needs no channel layer, so it keeps working while Redis restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from django.conf import settings
from graphql import GraphQLError

from network.models import Router
from network.schema import RouterType
from network.selectors import routers_for
from project.db_threads import ws_database_read
from project.errors import ErrorCode
from project.graphql_support import IsOperator, operator_principal
from project.ids import as_pk


def _health(operator, router_pk: int | None) -> dict[int, tuple[Router, tuple]]:
    routers = routers_for(operator)
    if router_pk is not None:
        routers = routers.filter(pk=router_pk)
    return {router.pk: (router, (router.status, router.last_error)) for router in routers}


@strawberry.type
class NetworkSubscription:
    @strawberry.subscription(
        permission_classes=[IsOperator],
        description="Operator JWT only: each change of one of the operator's routers' `status` or `lastError` "
        "(from the health probe or any contact with the router) made after the subscription started, within "
        "a few seconds. Over WebSocket, credentials in the connection_init payload",
    )
    async def router_updates(
        self,
        info: strawberry.Info,
        router_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this router; null for every router of the operator"),
        ] = None,
    ) -> AsyncGenerator[RouterType]:
        principal = operator_principal(info)
        router_pk = as_pk(router_id) if router_id is not None else None
        if router_id is not None and router_pk is None:
            return  # no such router: a stream that never says anything, as for someone else's
        read = ws_database_read(_health)
        seen = {pk: version for pk, (_, version) in (await read(principal.operator, router_pk)).items()}
        while True:
            await asyncio.sleep(settings.SUBSCRIPTION_RESYNC_SECONDS)
            if principal.has_expired:
                raise GraphQLError(
                    "Access token expired: reconnect with a new one",
                    extensions={"code": ErrorCode.UNAUTHENTICATED.value},
                )
            for pk, (router, version) in (await read(principal.operator, router_pk)).items():
                if seen.get(pk) != version:
                    seen[pk] = version
                    yield router  # type: ignore[misc]
