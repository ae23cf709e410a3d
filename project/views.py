"""HTTP entry points: GraphQL (with the caller resolved once per request) and health."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from strawberry.django.context import StrawberryDjangoContext
from strawberry.django.views import AsyncGraphQLView

from project import safe_json
from project.auth import principal_from_credentials
from project.errors import ErrorCode


class _RefusedBody(Exception):
    """JSON the server will not hand to strawberry (NaN, Infinity, absurd nesting)."""


class GraphQLView(AsyncGraphQLView):
    def decode_json(self, data: str | bytes) -> object:
        # Every JSON the view decodes (POST body, GET `variables`, multipart `operations`) comes
        # through here: refuse what would crash the parser or the database before strawberry sees it.
        try:
            return safe_json.loads(data)
        except safe_json.UnsafeJSON as exc:
            raise _RefusedBody(str(exc)) from None

    async def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return await super().dispatch(request, *args, **kwargs)
        except _RefusedBody as exc:
            error = {"message": f"Unusable request body: {exc}", "extensions": {"code": ErrorCode.INVALID_INPUT.value}}
            return JsonResponse({"data": None, "errors": [error]}, status=400)

    async def get_context(self, request: HttpRequest, response: HttpResponse) -> StrawberryDjangoContext:
        credentials = {
            name: request.headers[name] for name in ("Authorization", "X-Public-Key") if name in request.headers
        }
        request.principal = await sync_to_async(principal_from_credentials)(credentials) if credentials else None
        return await super().get_context(request, response)


def graphql_view():
    from project.schema import schema

    return GraphQLView.as_view(schema=schema, graphql_ide="graphiql" if settings.GRAPHIQL_ENABLED else None)
