"""Operators' portal keys and payment credentials, payments, and their append-only event log."""

from __future__ import annotations

import secrets
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import models

from project import encryption


def new_public_key() -> str:
    return secrets.token_hex(16)


DEFAULT_TIME_ZONE = "Africa/Nairobi"


class Language(models.TextChoices):
    EN = "EN", "English"
    SW = "SW", "Kiswahili"


class OperatorProfile(models.Model):
    """What an operator (a Django user) needs beyond the user: the captive portal's public key."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator")
    public_key = models.CharField(max_length=32, unique=True, default=new_public_key)
    public_key_rotated_at = models.DateTimeField(null=True, blank=True)
    # Bumped by revokeTokens and password changes: access tokens carry the generation they were
    # issued under and stop working once it moves on.
    token_generation = models.PositiveIntegerField(default=0)

    # What the captive portal shows customers (updateOperatorProfile, portalInfo). Checked by
    # billing.services.operator_profile_update, which the admin's form uses too.
    business_name = models.CharField(max_length=80, blank=True)
    support_phone = models.CharField(max_length=12, blank=True, help_text="A Kenyan mobile number, or blank")
    portal_message = models.CharField(max_length=280, blank=True)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, help_text="IANA name, e.g. Africa/Nairobi")

    def __str__(self) -> str:
        return f"Operator {self.user}"

    @staticmethod
    def zone_of(profile: OperatorProfile | None) -> ZoneInfo:
        """The operator's time zone; Nairobi without a profile, or for a name that no longer loads (checked
        on save, but a row edited by hand must not turn a customer page or a report into a 500)."""
        try:
            return ZoneInfo(profile.time_zone if profile else DEFAULT_TIME_ZONE)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            return ZoneInfo(DEFAULT_TIME_ZONE)


class RefreshToken(models.Model):
    """One issued refresh token. Rotation retires it; presenting a retired one revokes its family."""

    jti = models.CharField(max_length=32, unique=True)
    family = models.UUIDField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refresh_tokens")
    expires_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Refresh token {self.jti[:8]}… of {self.user}"


class PaymentProvider(models.TextChoices):
    INTASEND = "INTASEND"
    KOPOKOPO = "KOPOKOPO"


class PaymentCredential(models.Model):
    class Environment(models.TextChoices):
        SANDBOX = "SANDBOX"
        LIVE = "LIVE"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_credentials")
    provider = models.CharField(max_length=20, choices=PaymentProvider.choices, default=PaymentProvider.INTASEND)
    api_key = models.CharField(max_length=255, help_text="Public (publishable) key")
    # Write-only secrets, stored as Fernet tokens: see project.encryption.
    private_key_encrypted = models.TextField(editable=False)
    webhook_challenge_encrypted = models.TextField(blank=True, editable=False)
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.SANDBOX)
    is_active = models.BooleanField(default=True)
    # The last check of both keys with IntaSend (verifyPaymentCredential, and addPaymentCredential first).
    verified_at = models.DateTimeField(null=True, blank=True)
    last_verification_error = models.CharField(max_length=200, blank=True)
    # deletePaymentCredential: no new payment uses it from this moment; it is kept (encrypted) until its
    # payments are final, so webhooks and the reconciler still work, then retention removes it.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "provider", "is_active", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.environment} ({self.api_key[:12]}…)"

    @property
    def has_webhook_challenge(self) -> bool:
        return bool(self.webhook_challenge_encrypted)

    def private_key(self) -> str:
        return encryption.decrypt(self.private_key_encrypted)

    def webhook_challenge(self) -> str | None:
        if not self.webhook_challenge_encrypted:
            return None
        return encryption.decrypt(self.webhook_challenge_encrypted)


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        PROCESSING = "PROCESSING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED})

    class Kind(models.TextChoices):
        STK_PUSH = "STK_PUSH"
        PAYMENT_LINK = "PAYMENT_LINK"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    router = models.ForeignKey("network.Router", on_delete=models.PROTECT, related_name="payments")
    package = models.ForeignKey("network.Package", on_delete=models.PROTECT, related_name="payments")
    credential = models.ForeignKey(
        PaymentCredential, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STK_PUSH)
    phone_number = models.CharField(max_length=12, blank=True, db_index=True, help_text="2547XXXXXXXX")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="KES")
    payment_method = models.CharField(max_length=20, default="mpesa")
    payment_provider = models.CharField(
        max_length=20, choices=PaymentProvider.choices, default=PaymentProvider.INTASEND
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    intasend_payment_id = models.CharField(max_length=64, blank=True)
    intasend_invoice_id = models.CharField(max_length=64, blank=True, db_index=True)
    intasend_checkout_id = models.CharField(max_length=64, blank=True, db_index=True)
    intasend_checkout_signature = models.TextField(blank=True)
    intasend_state = models.CharField(max_length=20, blank=True)
    mpesa_reference = models.CharField(max_length=32, blank=True)
    payment_url = models.URLField(max_length=500, blank=True)
    failure_reason = models.TextField(blank=True)
    # IntaSend confirmed the money after the payment had FAILED here (our request timed out, or
    # nothing answered before the cut-off). FAILED stays final, so a person refunds the customer
    # or gives them access; this flag is how the support desk finds those payments.
    paid_after_failure = models.BooleanField(default=False, db_index=True)
    # When that money was confirmed: revenue reports count it on that day.
    paid_after_failure_at = models.DateTimeField(null=True, blank=True)
    # What IntaSend reported with the money (its fee, and what the operator receives); null when it
    # did not say. Kept apart from `amount`, which is what the customer paid.
    charges = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    net_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # The push's answer never came (timeout, reset, 5xx, garbage): the prompt may have reached the
    # phone, so the payment stays PROCESSING until IntaSend settles it (API.md "Unknown outcomes").
    outcome_unknown = models.BooleanField(default=False)
    # Proves ownership of the payment to public-key callers (Stripe's PaymentIntent client secret).
    client_secret = models.CharField(max_length=64, blank=True, editable=False)
    # PaymentInput.renewCode: the grant this payment extends (same package only), proven by its code.
    renews = models.ForeignKey(
        "network.Activation", on_delete=models.SET_NULL, null=True, blank=True, related_name="renewal_payments"
    )
    # The access grant this payment bought, made when it completed (network.services.grant_access).
    # PROTECT: a paid grant's record stays while its payment does.
    activation = models.OneToOneField(
        "network.Activation", on_delete=models.PROTECT, null=True, blank=True, related_name="payment", editable=False
    )
    mac_address = models.CharField(max_length=17, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True, help_text="Who called the API")
    # NULL, not "", when absent: the unique constraint must only bind real keys.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    package_expiry_time = models.DateTimeField(null=True, blank=True)
    # The reconciler's own bookkeeping (asking IntaSend about payments whose webhook never came).
    reconcile_attempts = models.PositiveIntegerField(default=0)
    next_reconcile_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # DATA_RETENTION_DAYS after the payment was settled, billing.retention blanks the phone, MAC and
    # IPs (and its events' and webhooks' bodies); amounts, states and receipts stay for the books.
    personal_data_erased_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the phone, MAC and IPs were erased (data retention)"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="payment_unique_idempotency_key_per_owner",
            ),
            # One IntaSend invoice pays for at most one payment, whatever a webhook claims.
            models.UniqueConstraint(
                fields=["intasend_invoice_id"],
                condition=~models.Q(intasend_invoice_id=""),
                name="payment_unique_intasend_invoice",
            ),
        ]
        indexes = [
            models.Index(fields=["router", "phone_number", "status", "-created_at"]),
            # redeemCode: a customer's M-Pesa receipt finds the payment on that router.
            models.Index(fields=["router", "mpesa_reference"], name="billing_pay_router_receipt"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} {self.status} ({self.id})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class PaymentEvent(models.Model):
    """Append-only record of every change to a payment: who brought the news, and what it said."""

    class Source(models.TextChoices):
        API = "API", "API request"
        GATEWAY = "GATEWAY", "Gateway answer to our request"
        CHECK = "CHECK", "checkPaymentStatus"
        WEBHOOK = "WEBHOOK", "IntaSend webhook"
        POLL = "POLL", "Reconciler poll"
        SYSTEM = "SYSTEM", "System"

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=10, choices=Source.choices)
    old_status = models.CharField(max_length=12, blank=True)
    new_status = models.CharField(max_length=12)
    gateway_state = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)
    raw_payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.source}: {self.old_status or '∅'} → {self.new_status}"


class WebhookDelivery(models.Model):
    """Every webhook POST as it arrived (challenge redacted), and what we made of it."""

    class Outcome(models.TextChoices):
        ACCEPTED = "ACCEPTED", "Accepted"
        IGNORED = "IGNORED", "Ignored: unknown payment"
        REJECTED = "REJECTED", "Rejected: challenge mismatch"
        INVALID = "INVALID", "Invalid body"

    payment = models.ForeignKey(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_deliveries"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    invoice_id = models.CharField(max_length=64, blank=True)
    api_ref = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=20, blank=True)
    body = models.JSONField(null=True, blank=True, help_text="Parsed body, challenge redacted")
    raw_body = models.TextField(blank=True, help_text="Only kept when the body was not valid JSON")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField()
    personal_data_erased_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the body and sender address were erased (data retention)"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.state or '?'} {self.outcome}"


class VoucherBatch(models.Model):
    """Codes printed together for cash sale: one package, its price at the time, an optional end date."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="voucher_batches")
    router = models.ForeignKey("network.Router", on_delete=models.PROTECT, related_name="voucher_batches")
    package = models.ForeignKey("network.Package", on_delete=models.PROTECT, related_name="voucher_batches")
    # The package's price when the batch was made: what the cash sale was worth, whatever the
    # package costs later (revenue counts a voucher at this price, at redemption).
    price = models.DecimalField(max_digits=10, decimal_places=2)
    count = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True)
    # After this moment unused vouchers of the batch no longer redeem (CODE_EXPIRED).
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "voucher batches"

    def __str__(self) -> str:
        return f"{self.count} × {self.package.name} ({self.created_at:%Y-%m-%d})"


class Voucher(models.Model):
    """One printed code. Redeemed once: its code becomes the access code of the grant it makes."""

    class Status(models.TextChoices):
        UNUSED = "UNUSED"
        REDEEMED = "REDEEMED"
        REVOKED = "REVOKED"
        # Never stored: an UNUSED voucher whose batch's valid_until has passed reads as EXPIRED.
        EXPIRED = "EXPIRED"

    batch = models.ForeignKey(VoucherBatch, on_delete=models.PROTECT, related_name="vouchers")
    # The batch's router, repeated so the database itself keeps codes unique per router.
    router = models.ForeignKey("network.Router", on_delete=models.PROTECT, related_name="vouchers")
    code = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNUSED, db_index=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    activation = models.OneToOneField(
        "network.Activation", on_delete=models.PROTECT, null=True, blank=True, related_name="voucher", editable=False
    )

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["router", "code"], name="voucher_unique_code_per_router")]

    def __str__(self) -> str:
        return f"Voucher {self.pk} ({self.status})"

    def status_at(self, now) -> str:
        """The status a person sees: UNUSED turns EXPIRED once the batch's ``valid_until`` has passed."""
        valid_until = self.batch.valid_until
        if self.status == self.Status.UNUSED and valid_until is not None and valid_until <= now:
            return self.Status.EXPIRED
        return self.status
