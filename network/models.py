"""Routers an operator owns, the WiFi packages sold on them, and the customer activations."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from project import encryption


class Router(models.Model):
    class Status(models.TextChoices):
        ONLINE = "ONLINE"  # the last probe logged in to its API
        OFFLINE = "OFFLINE"  # the last probe could not
        UNKNOWN = "UNKNOWN"  # not probed yet

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="routers")
    name = models.CharField(max_length=100)
    host = models.CharField(max_length=255, help_text="Address of the RouterOS API")
    api_port = models.PositiveIntegerField(default=8728, validators=[MaxValueValidator(65535)])
    use_ssl = models.BooleanField(default=False)
    username = models.CharField(max_length=100)
    # Write-only secret: Fernet token, never shown or logged. Use `password()` to read it.
    password_encrypted = models.TextField(editable=False)
    # The hotspot's DNS name or IP as customers' browsers see it: the only place the portal may post
    # an access code to log a device in.
    hotspot_address = models.CharField(max_length=255, blank=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    # Kept by the periodic health probe (and by every activation's contact): what operators see.
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNKNOWN)
    last_error = models.CharField(max_length=200, blank=True)
    # deleteRouter is soft: the router disappears from the API, its payments and grants stay readable.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.host})"

    def set_password(self, plaintext: str) -> None:
        self.password_encrypted = encryption.encrypt(plaintext)

    def password(self) -> str:
        return encryption.decrypt(self.password_encrypted)


# One validation for the API and the admin (network.services uses the same bounds).
MAX_DURATION_MINUTES = 366 * 24 * 60
MAX_SHARED_USERS = 100


class Package(models.Model):
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="packages")
    name = models.CharField(max_length=100)
    price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text="KES",
    )
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)]
    )
    upload_kbps = models.PositiveIntegerField(null=True, blank=True, help_text="Upload speed cap")
    download_kbps = models.PositiveIntegerField(null=True, blank=True, help_text="Download speed cap")
    data_limit_mb = models.PositiveIntegerField(null=True, blank=True, help_text="Total data cap")
    shared_users = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_SHARED_USERS)]
    )
    is_active = models.BooleanField(default=True)
    # The portal's order (lowest first; equal positions by price).
    position = models.PositiveIntegerField(default=0)
    # deletePackage is soft: hidden everywhere, its payments and grants keep pointing at it.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "price", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.price} KES, {self.duration_minutes} min)"

    @property
    def profile_name(self) -> str:
        """The hotspot user profile this package maps to on its router.

        Named by id, not by the package's name: renaming a package must not orphan the profile that
        active customers are using, and operators' names may contain characters RouterOS dislikes.
        """
        return f"cloudpilot-pkg-{self.pk}"

    @property
    def data_limit_bytes(self) -> int | None:
        # Decimal megabytes, like the operators' price lists and PHPNuxBill (1 MB = 1,000,000 bytes).
        return self.data_limit_mb * 1_000_000 if self.data_limit_mb else None


class Activation(models.Model):
    """An access grant: one customer's time on one router, however it was obtained (a paid payment, a
    redeemed voucher, an operator's manual grant), put on the router, expired, retried and revoked here.

    It stands on its own: what the router work needs (router, package, the customer's device) is copied
    in when the grant is made, and the network side never looks at what paid for it. Billing keeps the
    link from its side (``billing.Payment.activation``).
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        ACTIVE = "ACTIVE"
        FAILED = "FAILED"
        EXPIRED = "EXPIRED"
        REVOKED = "REVOKED"

    class Source(models.TextChoices):
        PAYMENT = "PAYMENT"
        VOUCHER = "VOUCHER"
        MANUAL = "MANUAL"

    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PAYMENT, db_index=True)
    # The operator the grant belongs to, the router it is on and the package it gives.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activations")
    router = models.ForeignKey(Router, on_delete=models.PROTECT, related_name="activations")
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="activations")
    # What the grant came from, for people and the router user's comment (a payment's id, a voucher's
    # code id); never looked up by network.
    reference = models.CharField(max_length=64, blank=True)
    # The customer's device as the hotspot reported it (automatic login); network.retention erases them.
    phone_number = models.CharField(max_length=12, blank=True)
    mac_address = models.CharField(max_length=17, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # When the grant was made (the payment completed, the voucher was redeemed): the late-grace rule
    # and the activation latency count from here.
    granted_at = models.DateTimeField(default=timezone.now)
    # The grant this one asked to extend (``PaymentInput.renewCode``, proven when the grant was made);
    # ``renewal_of`` is what it really extended, decided when it reached the router.
    renews = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="renewal_requests", editable=False
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    access_code = models.CharField(max_length=16, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # When the customer goes offline (wall clock). Set when the grant is made (a payment's
    # package_expiry_time); later
    # when the router was only reached late, and extended when the activation renews an earlier one.
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A renewal: this purchase extended the earlier, still ACTIVE activation (same hotspot user/code).
    renewal_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="renewals", editable=False
    )
    # What was written on the router, so a renewal can add to it.
    limit_uptime_seconds = models.PositiveIntegerField(null=True, blank=True)
    limit_bytes_total = models.PositiveBigIntegerField(null=True, blank=True)
    # Lease of the worker currently talking to the router for this activation (see activation_perform).
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Manual grants (grantAccess): why, and the key that makes a double click grant once.
    reason = models.CharField(max_length=500, blank=True)
    # NULL, not "", when absent: the unique constraint must only bind real keys.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # revokeAccess: when the grant was ended by hand (status REVOKED).
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The customer's phone, MAC and IP, and router error texts that can quote them: network.retention
    # blanks them once the grant is long over.
    personal_data_erased_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the phone, MAC, IP and the router's error text were erased (data retention)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="activation_unique_idempotency_key_per_owner",
            )
        ]
        indexes = [
            models.Index(fields=["access_code"], name="network_act_access_code"),
            models.Index(fields=["router", "access_code"], name="network_act_router_code"),
        ]

    def __str__(self) -> str:
        return f"Activation {self.pk} ({self.source}): {self.status}"
