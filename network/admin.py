from django.contrib import admin

from network.models import Activation, Package, Router
from project.admin_scoping import OwnedByOperatorAdmin


@admin.register(Router)
class RouterAdmin(OwnedByOperatorAdmin):
    # password_encrypted is not editable, so it is never rendered.
    list_display = ["name", "host", "api_port", "use_ssl", "owner", "last_contact_at"]
    search_fields = ["name", "host"]
    readonly_fields = ["owner", "last_contact_at"]

    def has_add_permission(self, request) -> bool:
        return False  # added through the API, where the password is encrypted on the way in


@admin.register(Package)
class PackageAdmin(OwnedByOperatorAdmin):
    owner_path = "router__owner"
    list_display = ["name", "router", "price", "duration_minutes", "data_limit_mb", "is_active"]
    list_filter = ["is_active", "router"]


@admin.register(Activation)
class ActivationAdmin(OwnedByOperatorAdmin):
    owner_path = "payment__owner"
    list_display = ["payment", "status", "attempts", "activated_at", "expires_at"]
    list_filter = ["status"]
    # Read-only: state changes go through the jobs and retryActivation, which also talk to the router.
    readonly_fields = [
        "payment",
        "status",
        "access_code",
        "attempts",
        "last_error",
        "activated_at",
        "expires_at",
        "renewal_of",
        "limit_uptime_seconds",
        "limit_bytes_total",
        "claimed_until",
    ]
