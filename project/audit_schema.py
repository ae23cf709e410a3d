"""GraphQL for the operator's audit log (auditLog); mixed into the root Query (project/schema.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry_django.pagination import OffsetPaginationInput

from billing.schema import DescribedOffsetPaginated
from project import audit
from project.graphql_support import IsOperator, ValidPagination, operator_principal
from project.models import AuditEntry


@strawberry_django.type(AuditEntry, name="AuditEntry", description="One change the operator (or an admin) made")
class AuditEntryType:
    id: strawberry.ID = strawberry_django.field(description="Stable id")
    at: datetime = strawberry_django.field(description="When the change was made")
    actor: str = strawberry_django.field(
        field_name="actor_name",
        description="Who made it: the operator's username, or an administrator's when done on their behalf in "
        "the admin; kept when that user is gone",
    )
    via: str = strawberry_django.field(description="`API` or `ADMIN`: where the change was made")
    action: str = strawberry_django.field(
        description="The operation's name (e.g. `updateRouter`), or `admin.add`, `admin.change`, `admin.delete`, "
        "`admin.<action>` for the admin"
    )
    object_type: str = strawberry_django.field(description="The changed object's kind, e.g. `Router`; empty if none")
    object_id: str = strawberry_django.field(description="The changed object's id; empty if none")
    changes: JSON = strawberry_django.field(
        description="For updates `{field: [before, after]}` of the fields that changed; for creations what was "
        'given. Secrets never appear: a changed password reads `"changed"`'
    )


@strawberry.type
class AuditQuery:
    @strawberry_django.offset_paginated(
        DescribedOffsetPaginated[AuditEntryType],
        permission_classes=[IsOperator],
        extensions=[ValidPagination()],
        description="The operator's own audit log, newest first; offset pagination. Operator JWT only",
    )
    def audit_log(
        self,
        info: strawberry.Info,
        # Declared only to describe it: strawberry-django applies it to the returned queryset.
        pagination: Annotated[
            OffsetPaginationInput | None,
            strawberry.argument(
                description="`offset` (rows to skip, ≥ 0) and `limit` (page size: 20 when not given, at most 100)"
            ),
        ] = None,
    ) -> list[AuditEntryType]:
        return audit.audit_entries_for(operator_principal(info).operator)  # type: ignore[return-value]
