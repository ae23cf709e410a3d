"""HTTP entry points: GraphQL (with the caller resolved once per request) and health."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from strawberry.django.context import StrawberryDjangoContext
from strawberry.django.views import AsyncGraphQLView

from project.auth import principal_from_credentials


class GraphQLView(AsyncGraphQLView):
    async def get_context(self, request: HttpRequest, response: HttpResponse) -> StrawberryDjangoContext:
        credentials = {
            name: request.headers[name] for name in ("Authorization", "X-Public-Key") if name in request.headers
        }
        request.principal = await sync_to_async(principal_from_credentials)(credentials) if credentials else None
        return await super().get_context(request, response)


def graphql_view():
    from project.schema import schema

    return GraphQLView.as_view(schema=schema, graphql_ide="graphiql" if settings.GRAPHIQL_ENABLED else None)
