"""The audit log in the admin: read-only, each operator sees their own entries (superusers all)."""

from __future__ import annotations

from django.contrib import admin

from project.admin_scoping import OwnedByOperatorAdmin
from project.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(OwnedByOperatorAdmin):
    owner_path = "operator"
    list_display = ["at", "actor_name", "via", "action", "object_type", "object_id"]
    list_filter = ["via", "action", "object_type"]
    search_fields = ["action", "object_type", "object_id", "actor_name"]
    readonly_fields = ["at", "operator", "actor", "actor_name", "via", "action", "object_type", "object_id", "changes"]
    actions = None  # not even delete_selected: the log is append-only

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
