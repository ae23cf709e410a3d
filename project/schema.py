"""The root schema: merges the apps' queries and mutations and adds the protective extensions."""

from __future__ import annotations

import functools

import strawberry
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger
from strawberry_django.optimizer import DjangoOptimizerExtension

from billing.schema import BillingMutation, BillingQuery
from billing.subscriptions import BillingSubscription
from network.schema import NetworkMutation, NetworkQuery

Query = merge_types("Query", (BillingQuery, NetworkQuery))
Mutation = merge_types("Mutation", (BillingMutation, NetworkMutation))

# Errors we mean to show (validation, permission); anything else is an unexpected exception.
_EXPECTED_ERRORS = (GraphQLError, PermissionDenied, ValidationError)


def _should_mask(error: GraphQLError) -> bool:
    return error.original_error is not None and not isinstance(error.original_error, _EXPECTED_ERRORS)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """What a client caused (no credentials, bad input, unknown ids) is an INFO line without a
        traceback; ERROR with the traceback is kept for the unexpected (API.md "Operability")."""
        for error in errors:
            if _should_mask(error):
                StrawberryLogger.error(error, execution_context)
            else:
                code = (error.extensions or {}).get("code", "")
                StrawberryLogger.logger.info("GraphQL client error %s: %s", code, error.message)


# Parsed and validated documents are reused for the same query text (a portal sends the same few):
# validation was most of GraphQL's own cost per request (tests/benchmarks/README.md). Bounded LRUs,
# so unique query texts cannot grow memory.
DOCUMENT_CACHE_SIZE = 256


@functools.cache
def _limit_rules(max_depth: int, max_aliases: int) -> tuple:
    """The depth and alias rules as classes made once per limit: QueryDepthLimiter and
    MaxAliasesLimiter make a new class per request, which no validation cache could ever hit."""
    return (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    )


def build_schema(*, debug: bool) -> strawberry.Schema:
    extensions: list = [
        DjangoOptimizerExtension,
        lambda: AddValidationRules(list(_limit_rules(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_ALIASES))),
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        # The token limit is a parse option, so it is part of the parser cache's key.
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        # Keyed by schema, document and rule classes: the production schema never reuses a debug verdict.
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal server error"),
    ]
    if not debug:
        extensions.append(DisableIntrospection)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=BillingSubscription,
        config=StrawberryConfig(disable_field_suggestions=not debug),
        extensions=extensions,
    )


schema = build_schema(debug=settings.DEBUG)
