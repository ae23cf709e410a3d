from django import forms
from django.contrib import admin

from billing import services
from billing.input_rules import normalise_phone
from billing.models import OperatorProfile, Payment, PaymentCredential, PaymentEvent, WebhookDelivery
from project.admin_forms import ServiceRulesForm
from project.admin_scoping import OwnedByOperatorAdmin
from project.errors import ApplicationError


class OperatorProfileAdminForm(ServiceRulesForm):
    """The API's rules for what the portal shows (updateOperatorProfile): one validation for both."""

    class Meta:
        model = OperatorProfile
        fields = ["business_name", "support_phone", "portal_message", "language", "time_zone"]
        widgets = {"portal_message": forms.Textarea(attrs={"rows": 3, "maxlength": 280})}

    service_rules = services.OPERATOR_PROFILE_RULES


@admin.register(OperatorProfile)
class OperatorProfileAdmin(OwnedByOperatorAdmin):
    form = OperatorProfileAdminForm
    owner_path = "user"
    list_display = ["user", "business_name", "support_phone", "language", "time_zone", "public_key"]
    fields = [
        "user",
        "business_name",
        "support_phone",
        "portal_message",
        "language",
        "time_zone",
        "public_key",
        "public_key_rotated_at",
    ]
    readonly_fields = ["user", "public_key", "public_key_rotated_at"]


@admin.register(PaymentCredential)
class PaymentCredentialAdmin(OwnedByOperatorAdmin):
    # The encrypted fields are not editable, so the admin never renders them (nor their tokens).
    list_display = ["api_key", "provider", "environment", "is_active", "has_webhook_challenge", "owner", "created_at"]
    list_filter = ["provider", "environment", "is_active"]
    fields = ["owner", "provider", "api_key", "environment", "is_active", "has_webhook_challenge"]
    readonly_fields = ["owner", "has_webhook_challenge"]

    def has_add_permission(self, request) -> bool:
        return False  # added through the API, where the secrets are encrypted on the way in

    @admin.display(boolean=True)
    def has_webhook_challenge(self, obj: PaymentCredential) -> bool:
        return obj.has_webhook_challenge


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "source", "old_status", "new_status", "gateway_state", "note", "raw_payload"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ["received_at", "state", "outcome", "http_status", "remote_addr", "body"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OwnedByOperatorAdmin):
    """What IntaSend sent, as it arrived (challenge redacted), and what we made of it."""

    owner_path = "payment__owner"
    list_display = ["received_at", "state", "outcome", "http_status", "invoice_id", "payment"]
    list_filter = ["outcome", "state"]
    search_fields = ["invoice_id", "api_ref"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(OwnedByOperatorAdmin):
    """The support desk's view: find a customer's payment by phone, status, router or date."""

    list_display = [
        "id",
        "status",
        "phone_number",
        "amount",
        "router",
        "package",
        "activation_status",
        "access_code",
        "paid_after_failure",
        "created_at",
        "completed_at",
    ]
    list_filter = [
        "status",
        "paid_after_failure",
        "kind",
        "payment_provider",
        ("router", admin.RelatedOnlyFieldListFilter),  # only the operator's own routers
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["id", "phone_number", "intasend_invoice_id", "mpesa_reference", "activation__access_code"]
    search_help_text = "Phone (any usual form: 0712 345 678, +254…), M-Pesa receipt, invoice, access code or id"
    date_hierarchy = "created_at"
    list_select_related = ["router", "package", "activation"]
    inlines = [PaymentEventInline, WebhookDeliveryInline]
    # What proves a payment is the customer's (its client secret, and the idempotency key that returns
    # it): operators see neither (API.md), so the support desk cannot leak them either.
    exclude = ["intasend_checkout_signature", "request_fingerprint", "client_secret", "idempotency_key"]

    def get_readonly_fields(self, request, obj=None):
        # State changes only through the state machine (services), never by hand in the admin.
        # `activation` links to its grant's page (access code, attempts, last router error).
        return [f.name for f in Payment._meta.fields if f.name not in self.exclude] + ["access_code"]

    def get_search_results(self, request, queryset, search_term):
        """A phone number as the customer says it (0712…, +254 712…) finds the stored 2547… form."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = normalise_phone(search_term)
        except ApplicationError:
            return found, may_have_duplicates
        return found | queryset.filter(phone_number=phone), may_have_duplicates

    @admin.display(description="activation", ordering="activation__status")
    def activation_status(self, obj: Payment) -> str:
        activation = getattr(obj, "activation", None)
        return activation.status if activation is not None else "—"

    @admin.display(description="access code", ordering="activation__access_code")
    def access_code(self, obj: Payment) -> str:
        activation = getattr(obj, "activation", None)
        return (activation.access_code or "—") if activation is not None else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a view page: nothing here is edited by hand

    def has_delete_permission(self, request, obj=None) -> bool:
        # Money records: operators cannot delete them (superusers can, e.g. test data).
        return request.user.is_superuser and super().has_delete_permission(request, obj)
