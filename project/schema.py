"""The root schema: merges the apps' queries and mutations and adds the protective extensions."""

from __future__ import annotations

import strawberry
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
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


def build_schema(*, debug: bool) -> strawberry.Schema:
    extensions: list = [
        DjangoOptimizerExtension,
        lambda: QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=settings.GRAPHQL_MAX_ALIASES),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal server error"),
    ]
    if not debug:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=BillingSubscription,
        config=StrawberryConfig(disable_field_suggestions=not debug),
        extensions=extensions,
    )


schema = build_schema(debug=settings.DEBUG)
