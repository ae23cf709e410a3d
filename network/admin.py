import dataclasses
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction

from network import services
from network.models import Activation, Package, Router
from network.services import PROFILE_FIELDS
from project.admin_forms import ServiceRulesForm
from project.admin_scoping import OwnedByOperatorAdmin
from project.errors import ApplicationError

# The API's field names in ApplicationError.field → the model's.
_MODEL_FIELD = {"apiPort": "api_port", "hotspotAddress": "hotspot_address"}


class RouterAdminForm(forms.ModelForm):
    """The API's rules for a router (no control characters, allowed destinations, hotspot address)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        names = ("name", "host", "username", "api_port", "hotspot_address")
        if not all(name in cleaned for name in names):
            return cleaned  # a field failed its own validation: that error is shown
        try:
            checked = services.router_clean(**{name: cleaned[name] for name in names})
        except ApplicationError as error:
            for failure in error.errors:
                self.add_error(_MODEL_FIELD.get(failure.field or "", failure.field), failure.message)
            return cleaned
        cleaned.update(dataclasses.asdict(checked))
        return cleaned


class PackageAdminForm(ServiceRulesForm):
    """The API's rules for a package (price, duration, shared users, caps): one validation for both."""

    service_rules = services.PACKAGE_RULES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As in createPackage: left empty, a package goes first (position 0).
        if "position" in self.fields:
            self.fields["position"].required = False

    def clean_position(self) -> int:
        return self.cleaned_data.get("position") or 0


@admin.register(Router)
class RouterAdmin(OwnedByOperatorAdmin):
    form = RouterAdminForm
    # password_encrypted is not editable, so it is never rendered.
    list_display = ["name", "host", "api_port", "use_ssl", "owner", "status", "last_contact_at", "deleted_at"]
    search_fields = ["name", "host"]
    # Kept by the health probe, and by deleteRouter.
    readonly_fields = ["owner", "status", "last_contact_at", "last_error", "deleted_at"]

    def has_add_permission(self, request) -> bool:
        return False  # added through the API, where the password is encrypted on the way in


@admin.register(Package)
class PackageAdmin(OwnedByOperatorAdmin):
    form = PackageAdminForm
    owner_path = "router__owner"
    owned_choices = {"router": "owner"}  # a package goes on one of the operator's own routers
    list_display = [
        "name",
        "router",
        "position",
        "price",
        "duration_minutes",
        "data_limit_mb",
        "is_active",
        "deleted_at",
    ]
    list_filter = ["is_active", ("router", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    list_select_related = ["router"]
    readonly_fields = ["deleted_at"]  # set by deletePackage

    def get_readonly_fields(self, request, obj=None):
        # Moving a package to another router would strand its profile and its customers there.
        return [*self.readonly_fields, "router"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change or set(form.changed_data).intersection(PROFILE_FIELDS):
            # Like packageCreate/packageUpdate: the router's hotspot profile follows, after commit.
            from network.tasks import enqueue_profile_sync

            transaction.on_commit(lambda: enqueue_profile_sync(obj.pk), robust=True)


# What support sees of an access grant (read-only: state changes go through the jobs and
# retryActivation, which also talk to the router).
ACTIVATION_FIELDS = [
    "source",
    "status",
    "owner",
    "router",
    "package",
    "reference",
    "access_code",
    "phone_number",
    "mac_address",
    "ip_address",
    "attempts",
    "last_error",
    "granted_at",
    "activated_at",
    "expires_at",
    "renews",
    "renewal_of",
    "limit_uptime_seconds",
    "limit_bytes_total",
    "claimed_until",
    "personal_data_erased_at",
]


@admin.register(Activation)
class ActivationAdmin(OwnedByOperatorAdmin):
    list_display = [
        "id",
        "source",
        "status",
        "access_code",
        "router",
        "package",
        "attempts",
        "activated_at",
        "expires_at",
    ]
    list_filter = ["status", "source", ("router", admin.RelatedOnlyFieldListFilter)]
    # A customer on the phone reads out their access code or phone number (an M-Pesa receipt finds the
    # payment, whose page links its grant).
    search_fields = ["access_code", "phone_number", "reference"]
    list_select_related = ["router", "package"]
    fields = ACTIVATION_FIELDS
    readonly_fields = ACTIVATION_FIELDS

    def has_add_permission(self, request) -> bool:
        return False  # grants are made by payments (and later vouchers and manual grants), not here
