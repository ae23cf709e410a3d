"""What every app's GraphQL layer shares: who is calling, permissions, and `UserError`."""

from __future__ import annotations

from typing import Any

import strawberry
from django.http import HttpRequest
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry_django.pagination import OffsetPaginationInfo, OffsetPaginationInput
from strawberry_django.settings import strawberry_django_settings

from project.auth import Principal
from project.client_address import client_address
from project.errors import ApplicationError, ErrorCode

ErrorCodeEnum = strawberry.enum(
    ErrorCode,
    name="ErrorCode",
    description="Every error code the server emits, in a payload's `errors[].code` or a top-level error's "
    "`extensions.code`. Stable: branch on the code, show the message.",
)


def _describe_error_codes() -> None:
    """The plain enum stays free of GraphQL: each value's description comes from ErrorCode.description."""
    for value in ErrorCodeEnum.__strawberry_definition__.values:
        value.description = ErrorCode(value.value).description


_describe_error_codes()


@strawberry.type(
    description="One thing a mutation refused, in its payload's `errors` (empty on success). A mutation reports "
    "every invalid input field at once, one UserError each."
)
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault, camelCase as sent (e.g. `phoneNumber`); null when the problem "
        "is not one field's"
    )
    code: ErrorCodeEnum = strawberry.field(description="What went wrong, machine-readable: branch on this")
    message: str = strawberry.field(description="What went wrong in words, fit to show the user")

    @classmethod
    def of(cls, error: ApplicationError) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message)

    @classmethod
    def list_of(cls, error: ApplicationError) -> list[UserError]:
        """One `UserError` per failure: several when a mutation found several invalid fields."""
        return [cls.of(failure) for failure in error.errors]


def _request(info: strawberry.Info) -> Any:
    context = info.context
    return context.request if hasattr(context, "request") else context.get("request")


def principal_of(info: strawberry.Info) -> Principal | None:
    """The caller, resolved once per HTTP request or WebSocket connection (see project.views/consumers)."""
    request = _request(info)
    if isinstance(request, HttpRequest):
        return getattr(request, "principal", None)
    return request.scope.get("principal")


def client_ip_of(info: strawberry.Info) -> str | None:
    return client_address(_request(info))


def request_of(info: strawberry.Info) -> HttpRequest | None:
    request = _request(info)
    return request if isinstance(request, HttpRequest) else None


def operator_principal(info: strawberry.Info) -> Principal:
    """Only call behind `IsOperator`/`IsOperatorOrPortal`: the permission has already checked."""
    principal = principal_of(info)
    assert principal is not None
    return principal


def without_database(resolver):
    """Mark a field resolver that only reads what is already loaded (no query, no blocking call).

    strawberry-django runs every sync resolver through `sync_to_async` under async execution: a
    thread hop per field and per row, which was most of a 100-row `payments` page's time
    (tests/benchmarks/). Resolvers marked with its `is_async_safe` flag are called directly.
    """
    resolver.is_async_safe = True
    return resolver


class _Authenticated(BasePermission):
    error_extensions = {"code": ErrorCode.UNAUTHENTICATED.value}


class IsOperator(_Authenticated):
    """Operator JWT (`Authorization: Bearer <accessToken>`)."""

    message = "Authentication required: send an operator access token (Authorization: Bearer <token>)"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        principal = principal_of(info)
        return principal is not None and principal.is_operator


class IsOperatorOrPortal(_Authenticated):
    """Operator JWT, or the captive portal's `X-Public-Key`."""

    message = "Authentication required: send an operator access token or the portal's X-Public-Key"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return principal_of(info) is not None


def _describe_offset_pagination() -> None:
    """strawberry-django's pagination types, shared by every paginated list, come without descriptions."""
    settings = strawberry_django_settings()
    default, most = settings["PAGINATION_DEFAULT_LIMIT"], settings["PAGINATION_MAX_LIMIT"]
    described = {
        OffsetPaginationInput: (
            "Which page of a list to read: skip `offset` rows, then read at most `limit`",
            {
                "offset": "Rows to skip from the start of the list; 0 or more (a negative offset is a top-level "
                "INVALID_INPUT error)",
                "limit": f"Page size: {default} when null or left out; above {most}, or negative, reads {most}",
            },
        ),
        OffsetPaginationInfo: (
            "The page that was read",
            {"offset": "Rows skipped from the start of the list", "limit": "Page size actually applied"},
        ),
    }
    for pagination_type, (description, fields) in described.items():
        definition = pagination_type.__strawberry_definition__
        definition.description = description
        for field in definition.fields:
            field.description = fields[field.name]


_describe_offset_pagination()


class ValidPagination(FieldExtension):
    """strawberry-django slices querysets with the raw offset (Django refuses negative indexing) and
    reads a negative limit as "no limit" (capped): both are a client's mistake, said so."""

    def _check(self, kwargs: dict[str, Any]) -> None:
        pagination = kwargs.get("pagination")
        for name in ("offset", "limit"):
            value = getattr(pagination, name, None) if pagination else None
            if isinstance(value, int) and value < 0:
                raise GraphQLError(
                    f"pagination.{name} must not be negative", extensions={"code": ErrorCode.INVALID_INPUT.value}
                )

    def resolve(self, next_: Any, source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        self._check(kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        self._check(kwargs)
        return await next_(source, info, **kwargs)
