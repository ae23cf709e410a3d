"""HTTP entry points: GraphQL (with the caller resolved once per request) and health."""

from __future__ import annotations

import dataclasses
import json

from asgiref.sync import sync_to_async
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from strawberry.django.context import StrawberryDjangoContext
from strawberry.django.views import AsyncGraphQLView
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from project import safe_json
from project.auth import principal_from_credentials
from project.client_address import client_address
from project.errors import ErrorCode
from project.media_types import GRAPHQL_RESPONSE_JSON, response_media_type
from project.persisted_queries import PersistedQueryError, document_for
from project.public_reads import NotAPublicRead, refuse_unless_public_read

# Answers differ by caller and by negotiated media type; CorsMiddleware adds Origin.
VARY = ("Authorization", "X-Public-Key", "Accept")
GRAPHQL_RESPONSE_CONTENT_TYPE = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"


class _RefusedBody(Exception):
    """JSON the server will not hand to strawberry (NaN, Infinity, absurd nesting)."""


@dataclasses.dataclass
class _Answer:
    """What one request's answer is becoming (`request.graphql_answer`)."""

    media_type: str
    executed: bool = False
    # Never ran: parse, validation or variable errors (graphql-response+json: 400, no `data`).
    request_error: bool = False
    without_errors: bool = False


class GraphQLView(AsyncGraphQLView):
    def decode_json(self, data: str | bytes) -> object:
        # Every JSON the view decodes (POST body, GET `variables`, multipart `operations`) comes
        # through here: refuse what would crash the parser or the database before strawberry sees it.
        try:
            return safe_json.loads(data)
        except safe_json.UnsafeJSON as exc:
            raise _RefusedBody(str(exc)) from None

    def parse_json(self, data: str | bytes) -> object:
        # A body (or `variables`/`extensions` parameter) that is JSON but not an object or a batch
        # list once crashed strawberry's reader (a 500): refuse it as the unreadable request it is.
        value = super().parse_json(data)
        if not isinstance(value, (dict, list)):
            raise HTTPException(400, "The request body must be a JSON object")
        return value

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Apollo's persisted-query GET has no `query`, only the hash in `extensions`, and accepts */*:
        # it asks for data, not for GraphiQL.
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)

    async def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        answer = request.graphql_answer = _Answer(media_type=response_media_type(request.headers.get("Accept")))
        try:
            response = await self.run(request=request)
        except HTTPException as exc:
            response = self._request_error(answer, exc.reason, exc.status_code)
        except RequestDataTooBig:
            response = self._errors(answer, "Request body too large", ErrorCode.INVALID_INPUT, status=413)
        except _RefusedBody as exc:
            response = self._errors(answer, f"Unusable request body: {exc}", ErrorCode.INVALID_INPUT, status=400)
        except PersistedQueryError as exc:
            response = self._errors(answer, exc.message, exc.code, status=exc.status)
        except NotAPublicRead as exc:
            response = self._errors(answer, str(exc), ErrorCode.INVALID_INPUT, status=405)
            response["Allow"] = "POST"
        if answer.executed and answer.media_type == GRAPHQL_RESPONSE_JSON:
            response["Content-Type"] = GRAPHQL_RESPONSE_CONTENT_TYPE
            if answer.request_error:
                response.status_code = 400
        return self._with_cache_headers(request, answer, response)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        request_data = await super().parse_http_body(request)
        if isinstance(request_data, list):
            return request_data  # batches are refused by the schema's config before this
        if not isinstance(request_data.operation_name, (str, type(None))):
            raise HTTPException(400, "The GraphQL operation's `operationName` must be a string or null, if provided.")
        query = document_for(request_data.query, request_data.extensions, registrant=client_address(request.request))
        if request.method == "GET":
            # After the persisted query is looked up: a hash cannot smuggle a mutation into a GET.
            refuse_unless_public_read(query, request.headers)
        return dataclasses.replace(request_data, query=query)

    async def process_result(self, request: HttpRequest, result: ExecutionResult) -> GraphQLHTTPResponse:
        response_data = await super().process_result(request, result)
        answer: _Answer = request.graphql_answer
        answer.executed = True
        answer.without_errors = not result.errors
        # Parse, validation and variable errors carry no path, and no data came of them; a field
        # error always has a path (even when it nulled the whole `data`).
        answer.request_error = (
            result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)
        )
        if answer.request_error and answer.media_type == GRAPHQL_RESPONSE_JSON:
            response_data.pop("data", None)
        return response_data

    def _errors(self, answer: _Answer, message: str, code: ErrorCode, *, status: int) -> HttpResponse:
        errors = [{"message": message, "extensions": {"code": code.value}}]
        if answer.media_type == GRAPHQL_RESPONSE_JSON:
            return HttpResponse(
                json.dumps({"errors": errors}), status=status, content_type=GRAPHQL_RESPONSE_CONTENT_TYPE
            )
        return HttpResponse(
            json.dumps({"data": None, "errors": errors}), status=status, content_type="application/json"
        )

    def _request_error(self, answer: _Answer, reason: str, status: int) -> HttpResponse:
        """Strawberry's own refusals (no query, bad parameters, wrong method): plain text as before for
        application/json clients, a GraphQL error body for graphql-response+json ones."""
        if answer.media_type == GRAPHQL_RESPONSE_JSON:
            response = self._errors(answer, reason, ErrorCode.INVALID_INPUT, status=status)
        else:
            response = HttpResponse(reason, status=status, content_type="text/plain")
        if status == 405:
            response["Allow"] = "GET, POST"
        return response

    def _with_cache_headers(
        self, request: HttpRequest, answer: _Answer, response: HttpResponseBase
    ) -> HttpResponseBase:
        patch_vary_headers(response, VARY)
        if request.method == "GET" and answer.without_errors and response.status_code == 200:
            # Only a public read got this far over GET (project.public_reads).
            response["Cache-Control"] = f"public, max-age={settings.GRAPHQL_PUBLIC_GET_MAX_AGE_SECONDS}"
        elif "Cache-Control" not in response:
            response["Cache-Control"] = "private, no-store"
        return response

    async def get_context(self, request: HttpRequest, response: HttpResponse) -> StrawberryDjangoContext:
        credentials = {
            name: request.headers[name] for name in ("Authorization", "X-Public-Key") if name in request.headers
        }
        request.principal = await sync_to_async(principal_from_credentials)(credentials) if credentials else None
        return await super().get_context(request, response)

    async def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        """GraphiQL built from this server's static files (project/static/graphiql/, refreshed by
        scripts/vendor_graphiql.sh), so it works offline and under a policy allowing nothing inline."""
        response = HttpResponse(render_to_string("graphiql/graphiql.html", request=request))
        host = request.get_host()
        response["Content-Security-Policy"] = "; ".join(
            [
                "default-src 'none'",
                "script-src 'self'",
                # The one <style> GraphiQL injects (react-remove-scroll-bar, locking the page's scroll
                # while a dialog is open): constant because graphiql-init.css hides the body's overflow.
                "style-src 'self' 'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='",
                # GraphiQL's fonts are data: URLs inside its stylesheet.
                "font-src 'self' data:",
                "img-src 'self' data:",
                # 'self' covers ws: and wss: only in recent browsers: name them.
                f"connect-src 'self' ws://{host} wss://{host}",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )
        response["Cache-Control"] = "no-store"
        return response


def graphql_view():
    from project.schema import schema

    return GraphQLView.as_view(schema=schema, graphql_ide="graphiql" if settings.GRAPHIQL_ENABLED else None)
