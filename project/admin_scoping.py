"""Admin pages show an operator only their own objects; superusers see everything.

Scoped: the change lists and change pages (``get_queryset``), the choices of the foreign keys an
operator may set (``owned_choices``), and the related-object list filters (use
``admin.RelatedOnlyFieldListFilter``, which offers only values found in the scoped list, never
another operator's routers).

Every add, change, delete and action made here is recorded in the owning operator's audit log
(via ADMIN, the admin user as actor), inside the admin's own transaction.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from django.contrib import admin
from django.db import models, transaction

from project import audit
from project.models import AuditEntry

# Fields whose values never enter the log (encrypted keys, passwords, client secrets, tokens): a marker does.
_SECRET = re.compile(r"password|secret|private|challenge|encrypted|token|signature")


def _values(obj: models.Model) -> dict[str, Any]:
    # Timestamps the save itself moves (updated_at) are no change anybody made.
    fields = [field for field in obj._meta.concrete_fields if not getattr(field, "auto_now", False)]
    return {field.attname: getattr(obj, field.attname) for field in fields}


def _redacted(changes: dict[str, Any], marker: str) -> dict[str, Any]:
    return {field: marker if _SECRET.search(field) else value for field, value in changes.items()}


class OwnedByOperatorAdmin(admin.ModelAdmin):
    owner_path = "owner"  # the lookup from this model to the operator (Django user)
    # Foreign key field → the lookup from the related model to its operator: the form's choices for
    # that field are the operator's own objects only (e.g. {"router": "owner"}).
    owned_choices: dict[str, str] = {}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.owner_path: request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        lookup = self.owned_choices.get(db_field.name)
        if lookup is not None and not request.user.is_superuser:
            kwargs["queryset"] = db_field.remote_field.model._default_manager.filter(**{lookup: request.user})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- The audit log ---------------------------------------------------------------------------

    def _operator_of(self, obj: models.Model):
        """The operator whose log it goes in; None for an object of nobody's (an unmatched webhook)."""
        for name in self.owner_path.split("__"):
            obj = getattr(obj, name, None)
        return obj

    def _record(self, request, obj: models.Model, action: str, changes: dict[str, Any]) -> None:
        operator = self._operator_of(obj)
        if operator is None:
            return
        audit.record(
            operator=operator,
            actor=request.user,
            action=action,
            obj=obj,
            changes=changes,
            via=AuditEntry.Via.ADMIN,
        )

    def save_model(self, request, obj, form, change) -> None:
        with transaction.atomic():
            before = _values(type(obj)._default_manager.get(pk=obj.pk)) if change else {}
            super().save_model(request, obj, form, change)
            after = _values(obj)
            if change:
                changes = _redacted(audit.diff(before, after), "changed")
                # A form field that is no model field (a password typed in) changed: named, never shown.
                changes.update({name: "changed" for name in form.changed_data if _SECRET.search(name)})
                if changes:
                    self._record(request, obj, "admin.change", changes)
            else:
                given = {field: value for field, value in after.items() if value not in (None, "")}
                self._record(request, obj, "admin.add", _redacted(given, "set"))

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            self._record(request, obj, "admin.delete", {})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset:
                self._record(request, obj, "admin.delete", {})
            super().delete_queryset(request, queryset)

    def changeform_view(self, request, *args, **kwargs):
        # Services called from here (a voucher batch made through its service) record the admin user.
        with audit.on_behalf(request.user, AuditEntry.Via.ADMIN):
            return super().changeform_view(request, *args, **kwargs)

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {
            name: (func if name == "delete_selected" else self._recorded_action(func, name), name, description)
            for name, (func, name, description) in actions.items()
        }

    def _recorded_action(self, func, name: str):
        """An admin action: what its services record (as the admin user), else one entry per selected object.

        Deletion is recorded by delete_queryset."""

        @functools.wraps(func)
        def run(modeladmin, request, queryset):
            with transaction.atomic(), audit.on_behalf(request.user, AuditEntry.Via.ADMIN) as behalf:
                objects = list(queryset)
                result = func(modeladmin, request, queryset)
                if not behalf.recorded:  # the action's services recorded nothing themselves
                    for obj in objects:
                        self._record(request, obj, f"admin.{name}", {})
                return result

        return run
