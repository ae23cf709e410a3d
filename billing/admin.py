from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing import manual_grants, services, vouchers
from billing.input_rules import normalise_phone
from billing.models import (
    OperatorProfile,
    Payment,
    PaymentCredential,
    PaymentEvent,
    Voucher,
    VoucherBatch,
    WebhookDelivery,
)
from project.admin_forms import ServiceRulesForm
from project.admin_scoping import OwnedByOperatorAdmin
from project.errors import ApplicationError
from project.models import AuditEntry


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
    list_display = [
        "api_key",
        "provider",
        "environment",
        "is_active",
        "has_webhook_challenge",
        "verified_at",
        "deleted_at",
        "owner",
        "created_at",
    ]
    list_filter = ["provider", "environment", "is_active"]
    fields = [
        "owner",
        "provider",
        "api_key",
        "environment",
        "is_active",
        "has_webhook_challenge",
        "verified_at",
        "last_verification_error",
        "deleted_at",
    ]
    readonly_fields = ["owner", "has_webhook_challenge", "verified_at", "last_verification_error", "deleted_at"]

    def has_add_permission(self, request) -> bool:
        return False  # added through the API, where the secrets are encrypted on the way in

    def has_delete_permission(self, request, obj=None) -> bool:
        # deletePaymentCredential deletes softly: its payments' webhooks and status checks still need the keys.
        return False

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
    actions = ["grant_paid_package"]

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

    @admin.action(description="Grant the paid package", permissions=["grant"])
    def grant_paid_package(self, request: HttpRequest, queryset) -> None:
        """Money that arrived after the payment failed: give the customer what they paid for, in one click
        (grantAccess with the payment linked; a second click, or a payment granted already, changes nothing)."""
        granted, refused = 0, []
        for payment in queryset.select_related("owner").order_by("pk"):
            if not payment.paid_after_failure:
                refused.append(f"{payment.pk}: not paid after failure")
                continue
            try:
                manual_grants.grant_access(
                    operator=payment.owner,
                    actor=request.user,
                    via=AuditEntry.Via.ADMIN,
                    data=manual_grants.GrantInput(
                        router_id=payment.router_id,
                        package_id=payment.package_id,
                        reason=manual_grants.PAID_AFTER_FAILURE_REASON,
                        phone_number=payment.phone_number,
                        mac_address=payment.mac_address,
                        ip_address=payment.ip_address,
                        payment_id=payment.pk,
                        idempotency_key=f"paid-after-failure:{payment.pk}",
                    ),
                )
                granted += 1
            except ApplicationError as error:
                refused.append(f"{payment.pk}: {'; '.join(e.message for e in error.errors)}")
        if granted:
            self.message_user(request, f"Access granted for {granted} payment(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not granted: {', '.join(refused)}", messages.WARNING)

    def has_grant_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("network.add_activation")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a view page: nothing here is edited by hand

    def has_delete_permission(self, request, obj=None) -> bool:
        # Money records: operators cannot delete them (superusers can, e.g. test data).
        return request.user.is_superuser and super().has_delete_permission(request, obj)


# --- Vouchers -------------------------------------------------------------------------------------

# The API's field names in ApplicationError.field → the form's.
_VOUCHER_FORM_FIELD = {"packageId": "package", "count": "count", "note": "note", "validUntil": "valid_until"}


class VoucherBatchAddForm(forms.ModelForm):
    """Adding a batch in the admin applies createVoucherBatch's rules (the service makes the codes)."""

    count = forms.IntegerField(min_value=1, max_value=vouchers.MAX_BATCH_SIZE)

    class Meta:
        model = VoucherBatch
        fields = ["package", "count", "note", "valid_until"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        package = cleaned.get("package")
        if self.errors or package is None:
            return cleaned
        try:
            vouchers.voucher_batch_validate(operator=package.router.owner, data=self.batch_input())
        except ApplicationError as error:
            for failure in error.errors:
                self.add_error(_VOUCHER_FORM_FIELD.get(failure.field or ""), failure.message)
        return cleaned

    def batch_input(self) -> vouchers.VoucherBatchInput:
        cleaned = self.cleaned_data
        return vouchers.VoucherBatchInput(
            package_id=cleaned["package"].pk,
            count=cleaned["count"],
            note=cleaned.get("note"),
            valid_until=cleaned.get("valid_until"),
        )


class VoucherInline(admin.TabularInline):
    model = Voucher
    extra = 0
    can_delete = False
    fields = ["code", "status", "redeemed_at", "revoked_at", "activation"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VoucherBatch)
class VoucherBatchAdmin(OwnedByOperatorAdmin):
    """Stock per batch (unused / redeemed / revoked / expired, counted in the list's one query) and its sheet."""

    owned_choices = {"package": "router__owner"}
    list_display = [
        "created_at",
        "package",
        "price",
        "count",
        "unused",
        "redeemed",
        "revoked",
        "expired",
        "note",
        "print_link",
    ]
    list_filter = [("router", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter)]
    search_fields = ["note", "package__name"]
    list_select_related = ["package"]
    inlines = [VoucherInline]
    readonly_fields = [
        "owner",
        "router",
        "package",
        "price",
        "count",
        "note",
        "valid_until",
        "created_at",
        "print_link",
    ]

    def get_queryset(self, request):
        return vouchers.with_stock(super().get_queryset(request))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = VoucherBatchAddForm
            kwargs["fields"] = VoucherBatchAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": VoucherBatchAddForm.Meta.fields})]
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        # Through the service: the package's owner and router, its price now, fresh codes.
        batch = vouchers.voucher_batch_create(operator=obj.package.router.owner, data=form.batch_input())
        for field in VoucherBatch._meta.concrete_fields:
            setattr(obj, field.attname, getattr(batch, field.attname))
        obj._state.adding = False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a batch is made, printed and revoked voucher by voucher, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # sold codes are money: revoke unused vouchers instead

    @admin.display(description="unused", ordering="unused_count")
    def unused(self, batch: VoucherBatch) -> int:
        return batch.unused_count

    @admin.display(description="redeemed", ordering="redeemed_count")
    def redeemed(self, batch: VoucherBatch) -> int:
        return batch.redeemed_count

    @admin.display(description="revoked", ordering="revoked_count")
    def revoked(self, batch: VoucherBatch) -> int:
        return batch.revoked_count

    @admin.display(description="expired", ordering="expired_count")
    def expired(self, batch: VoucherBatch) -> int:
        return batch.expired_count

    @admin.display(description="sheet")
    def print_link(self, batch: VoucherBatch) -> str:
        # A link to our own view, which signs a fresh 10-minute sheet URL when clicked.
        url = reverse("admin:billing_voucherbatch_print", args=[batch.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">Print</a>', url)

    def get_urls(self):
        own = [
            path(
                "<int:batch_id>/print/", self.admin_site.admin_view(self.print_view), name="billing_voucherbatch_print"
            )
        ]
        return own + super().get_urls()

    def print_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        batch = self.get_queryset(request).filter(pk=batch_id).first()
        if batch is None or not self.has_view_permission(request, batch):
            raise Http404("No such voucher batch")
        # admin_view marks it never_cache (no-store): the signed link is kept by no cache.
        return HttpResponseRedirect(vouchers.sheet_path(batch))


@admin.register(Voucher)
class VoucherAdmin(OwnedByOperatorAdmin):
    """Every code, read-only; unused ones can be revoked (the same rule as revokeVoucher)."""

    owner_path = "batch__owner"
    list_display = ["code", "shown_status", "batch", "redeemed_at", "revoked_at", "activation"]
    list_filter = ["status", ("router", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code"]
    search_help_text = "The code, as printed (ABCD-EFGH-JKLM) or typed"
    list_select_related = ["batch__package", "activation"]
    readonly_fields = ["batch", "router", "code", "status", "redeemed_at", "revoked_at", "activation"]
    actions = ["revoke"]

    def get_search_results(self, request, queryset, search_term):
        """Codes are stored without the dashes and spaces they are printed and typed with."""
        code = search_term.replace("-", "").replace(" ", "").upper()
        return super().get_search_results(request, queryset, code)

    @admin.display(description="status", ordering="status")
    def shown_status(self, voucher: Voucher) -> str:
        return voucher.status_at(timezone.now())

    @admin.action(description="Revoke the selected unused vouchers", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        revoked, refused = 0, 0
        for voucher_id in queryset.values_list("pk", flat=True):
            try:
                vouchers.voucher_revoke(operator=self._owner_of(request, voucher_id), voucher_id=voucher_id)
                revoked += 1
            except ApplicationError:
                refused += 1
        self.message_user(request, f"Revoked {revoked} voucher(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} redeemed voucher(s) left as they are.", messages.WARNING)

    def _owner_of(self, request: HttpRequest, voucher_id: int):
        # A superuser acts for the voucher's owner; an operator only ever reaches their own (get_queryset).
        if request.user.is_superuser:
            return Voucher.objects.select_related("batch__owner").get(pk=voucher_id).batch.owner
        return request.user

    def has_add_permission(self, request) -> bool:
        return False  # made in batches (VoucherBatch)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields  # the change permission is for the revoke action only
