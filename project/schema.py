"""The root schema: merges the apps' queries and mutations and adds the protective extensions."""

from __future__ import annotations

import dataclasses
import decimal
import functools
import re
import uuid
import weakref
from collections.abc import Awaitable, Sequence
from datetime import date, datetime
from typing import Any

import strawberry
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from graphql import GraphQLError, GraphQLInt, GraphQLResolveInfoHelpers, IntValueNode, StringValueNode, ValidationRule
from graphql.pyutils import gather_with_cancel
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, StrawberryGraphQLCoreExecutionContext
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, DecimalDefinition, UUIDDefinition
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.logging import StrawberryLogger
from strawberry_django.optimizer import DjangoOptimizerExtension

from billing.schema import BillingMutation, BillingQuery
from billing.subscriptions import BillingSubscription
from network.schema import NetworkMutation, NetworkQuery
from network.subscriptions import NetworkSubscription
from project import safe_json
from project.audit_schema import AuditQuery
from project.errors import ErrorCode


@strawberry.type(
    description="Reads. Each field says who may call it: an operator (`Authorization: Bearer <accessToken>`) "
    "and/or the captive portal (`X-Public-Key`); without them a top-level UNAUTHENTICATED error."
)
class Query(BillingQuery, NetworkQuery, AuditQuery):
    pass


@strawberry.type(
    description="Changes. Refusals the caller can act on come back in the payload's `errors` (empty on success); "
    "missing credentials are a top-level UNAUTHENTICATED error."
)
class Mutation(BillingMutation, NetworkMutation):
    pass


@strawberry.type(
    description="Live updates over WebSocket (graphql-transport-ws or graphql-ws), credentials in the "
    "connection_init payload"
)
class Subscription(BillingSubscription, NetworkSubscription):
    pass


# strawberry's own scalars, with the wire format a client must produce and parse spelled out.
_DESCRIBED_SCALARS = {
    uuid.UUID: dataclasses.replace(
        UUIDDefinition,
        description="A UUID as a string in its canonical form, e.g. `0b7e4f0c-5d1a-4a8e-9c2f-3e1d2c4b5a69`",
    ),
    decimal.Decimal: dataclasses.replace(
        DecimalDefinition,
        description='An exact decimal number, returned as a string (e.g. `"25.00"`) so no precision is lost; '
        "send a string (a JSON number is accepted). Amounts are in the currency given beside them (KES)",
    ),
    date: dataclasses.replace(
        DateDefinition, description="A calendar day as `YYYY-MM-DD` (ISO 8601), e.g. `2026-01-31`"
    ),
    datetime: dataclasses.replace(
        DateTimeDefinition,
        description="An ISO 8601 instant with its UTC offset, e.g. `2026-01-31T14:05:00+00:00`",
    ),
}

# Errors we mean to show (validation, permission); anything else is an unexpected exception.
_EXPECTED_ERRORS = (GraphQLError, PermissionDenied, ValidationError)


def _should_mask(error: GraphQLError) -> bool:
    return error.original_error is not None and not isinstance(error.original_error, _EXPECTED_ERRORS)


# What strawberry raises when a WebSocket frame names no runnable operation (over HTTP the view
# answers them itself): the client's mistake, INVALID_INPUT, never an INTERNAL error and a traceback.
_NOT_AN_OPERATION = (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError)


def _is_unexpected(error: GraphQLError) -> bool:
    return _should_mask(error) and not isinstance(error.original_error, _NOT_AN_OPERATION)


# The legacy graphql-ws protocol runs subscriptions only (strawberry refuses a query or mutation
# started on it deep inside, as an exception that read as an INTERNAL error).
WRONG_TRANSPORT = (
    "{operations} cannot be sent this way: the legacy graphql-ws protocol carries subscriptions only, and "
    "HTTP carries queries and mutations. Use graphql-transport-ws for all three"
)


def _not_an_operation(error: Exception) -> str:
    """What to tell the client whose frame named no operation it may run here."""
    if isinstance(error, InvalidOperationTypeError):
        operations = error.as_http_error_reason("").split(" ", 1)[0].capitalize()
        return WRONG_TRANSPORT.format(operations=operations)
    if isinstance(error, CannotGetOperationTypeError):
        return error.as_http_error_reason()
    return str(error)  # MissingQueryError: 'Request data is missing a "query" value'


def _with_a_code(error: GraphQLError) -> GraphQLError:
    """graphql-core's own errors carry no code. About the document (it does not parse, fails
    validation or a limit, its variables do not fit; no path): INVALID_INPUT, the client's mistake.
    During execution (a path: a null for a non-null field, say): INTERNAL, ours."""
    if (error.extensions or {}).get("code"):
        return error
    return _copy_with_code(error, ErrorCode.INVALID_INPUT if error.path is None else ErrorCode.INTERNAL)


def _copy_with_code(error: GraphQLError, code: ErrorCode) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code.value},
    )


class _MaskUnexpectedErrors(MaskErrors):
    """Hides an unexpected exception's text, and gives every top-level error a code."""

    def _process_result(self, result: object) -> None:
        # What MaskErrors does, without its isinstance check against a runtime Protocol: that
        # walked the protocol's attributes on every frame of every subscription (about 6% of a
        # 1,000-subscriber fan-out), and an errorless result, nearly every one, needs nothing.
        if errors := getattr(result, "errors", None):
            coded = [_with_a_code(error) for error in self._process_errors(errors)]
            result.errors = coded  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if isinstance(error.original_error, _NOT_AN_OPERATION):
            return GraphQLError(
                message=_not_an_operation(error.original_error),
                nodes=error.nodes,
                path=error.path,
                extensions={"code": ErrorCode.INVALID_INPUT.value},
            )
        return GraphQLError(
            message=self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": ErrorCode.INTERNAL.value},
        )


# graphql-core quotes the caller's values in variable errors ("Variable '$input' got invalid value
# {...}; ...", "Variable '$input' has invalid value: ... found: {...}", reasons quoting it again): a
# password, a private key or a phone number sent with one misspelt field. The client gets them back;
# the log keeps the variable and the names of what was wrong, never a value.
_VARIABLE_ERROR = re.compile(r"^(Variable '\$\w+') (?:got|has) invalid value")
_NAMES_IN_A_VARIABLE_ERROR = re.compile(
    r"unknown field '\w+'|Field '\w+' (?:is not defined by type|of required type) '[\w!\[\]]+'"
    r"|of type '[\w!\[\]]+'|at '[\w.\[\]$]+'"
)
LOGGED_MESSAGE_MAX = 300


def loggable_message(message: str) -> str:
    """A client error's message for the log: no value it quotes, and bounded."""
    variable = _VARIABLE_ERROR.match(message)
    if variable:
        names = "; ".join(dict.fromkeys(m[0] for m in _NAMES_IN_A_VARIABLE_ERROR.finditer(message)))
        message = f"{variable[1]} has an invalid value (not logged)" + (f": {names}" if names else "")
    return message if len(message) <= LOGGED_MESSAGE_MAX else message[:LOGGED_MESSAGE_MAX] + "…"


class _AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core keeps `async_helpers`, two bound methods of the execution context, on the
    context itself: a reference cycle that held each finished operation's context value (for a
    WebSocket: the consumer, its socket and daphne's protocol, ~40 KiB) until a full collection
    walked it, and frozen that is only while few sockets are open (project.gc_tuning, issue 14). The helpers
    reach the context through a weak reference instead, so an operation is freed when it ends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=functools.partial(_gather_async_work, context), track=functools.partial(_track_async_work, context)
        )


def _gather_async_work(context: weakref.ref[_AcyclicExecutionContext], values: Sequence[Any]) -> Awaitable[list]:
    live = context()
    return live.gather_async_work(values) if live is not None else gather_with_cancel(*values)


def _track_async_work(context: weakref.ref[_AcyclicExecutionContext], values: Sequence[Any]) -> None:
    live = context()
    if live is not None:  # once its operation is gone there is no background work left to join
        live.track_async_work(values)


class _Schema(strawberry.Schema):
    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        """`execute` runs a document once (HTTP, and queries on a WebSocket); a subscription sent
        that way ran its generator as a plain field and failed as an INTERNAL error. Refused instead
        (strawberry answers it as a 400 saying which operations the transport takes)."""
        allowed = kwargs.get("allowed_operation_types") or DEFAULT_ALLOWED_OPERATION_TYPES
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(query, *args, **kwargs)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """What a client caused (no credentials, bad input, unknown ids) is an INFO line without a
        traceback; ERROR with the traceback is kept for the unexpected (API.md "Operability")."""
        for error in errors:
            if _is_unexpected(error):
                StrawberryLogger.error(error, execution_context)
            else:
                # Syntax and validation errors (a typo in the document) carry no code of ours.
                code = (error.extensions or {}).get("code") or "invalid document"
                StrawberryLogger.logger.info("GraphQL client error (%s): %s", code, loggable_message(error.message))


# Parsed and validated documents are reused for the same query text (a portal sends the same few):
# validation was most of GraphQL's own cost per request (tests/benchmarks/README.md). Bounded LRUs,
# so unique query texts cannot grow memory.
DOCUMENT_CACHE_SIZE = 256


class StorableStrings(ValidationRule):
    """String literals in the document obey what project.safe_json enforces for variables: a
    `"\\u0000"` written into the query text otherwise reached the database as NUL (a 500)."""

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if safe_json.UNSTORABLE_TEXT.search(node.value):
            self.report_error(GraphQLError(f"String values: {safe_json.UNSTORABLE_MESSAGE}", node))


_parse_int_literal = GraphQLInt.coerce_input_literal


def _parse_short_int_literal(value_node, variables=None):
    """graphql-core reads an Int literal with int() before checking its range: one of over 4,300
    digits raised a ValueError, reported as an INTERNAL error with an ERROR traceback quoting the
    whole literal (found from outside, with no credentials). Over 10 digits is out of range anyway."""
    if isinstance(value_node, IntValueNode) and len(value_node.value.lstrip("-")) > 10:
        raise GraphQLError("Int cannot represent non 32-bit signed integer value: more than 10 digits", value_node)
    return _parse_int_literal(value_node, variables)


GraphQLInt.coerce_input_literal = _parse_short_int_literal


@functools.cache
def _limit_rules(max_depth: int, max_aliases: int, *, introspection: bool) -> tuple:
    """The depth and alias rules as classes made once per limit: QueryDepthLimiter and
    MaxAliasesLimiter make a new class per request, which no validation cache could ever hit."""
    return (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        StorableStrings,
        *(() if introspection else (NoSchemaIntrospectionCustomRule,)),
    )


class DocumentLimits(SchemaExtension):
    """The token limit, the depth, alias and string rules and (unless debugging) no introspection:
    what MaxTokensLimiter, AddValidationRules and DisableIntrospection did, set in the parse and
    validation steps instead of around the whole operation. A subscription holds each operation
    hook (a generator and its context manager) for as long as it stays open; these end before it
    runs (issue 14 item 4: memory per idle subscribed socket). Listed before the caches, whose keys
    include the parse options and the rules."""

    def __init__(self, *, max_tokens: int, rules: tuple) -> None:
        self.max_tokens, self.rules = max_tokens, rules

    def on_parse(self):
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield

    def on_validate(self):
        self.execution_context.validation_rules = (*self.execution_context.validation_rules, *self.rules)
        yield


class _ParserCache(ParserCache):
    """A document that does not parse is left to strawberry's own parse, inside its error handling.
    ParserCache raised the syntax error as the parse step started, outside it: over HTTP it still
    became an error (with no code), but on a WebSocket the subscriber got a bare `complete` and the
    log an ERROR traceback for a client's typo."""

    def on_parse(self):
        parsing = super().on_parse()
        try:
            next(parsing)
        except GraphQLError:
            pass  # graphql_document stays None: strawberry parses it again and reports the error
        yield


def build_schema(*, debug: bool) -> strawberry.Schema:
    def document_limits() -> DocumentLimits:
        rules = _limit_rules(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_ALIASES, introspection=debug)
        return DocumentLimits(max_tokens=settings.GRAPHQL_MAX_TOKENS, rules=rules)

    extensions: list = [
        DjangoOptimizerExtension,
        document_limits,
        lambda: _ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        # Keyed by schema, document and rule classes: the production schema never reuses a debug verdict.
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: _MaskUnexpectedErrors(should_mask_error=_should_mask, error_message="Internal server error"),
    ]
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=not debug, scalar_map=_DESCRIBED_SCALARS),
        extensions=extensions,
        execution_context_class=_AcyclicExecutionContext,
    )


schema = build_schema(debug=settings.DEBUG)
