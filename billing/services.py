"""Every write to billing: operators' keys and credentials, payments and the one state machine."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import secrets
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing import access
from billing.gateways.base import (
    CheckoutResult,
    CredentialsRejected,
    GatewayCredentials,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    PaymentGateway,
    StatusResult,
)
from billing.gateways.intasend import IntaSendGateway
from billing.input_rules import normalise_ip, normalise_phone, parse_amount
from billing.models import Language, OperatorProfile, Payment, PaymentCredential, PaymentEvent, PaymentProvider
from billing.notifications import publish_payment_changed
from billing.selectors import (
    credential_newest_active,
    credentials_for,
    payment_get_for,
    payment_get_for_caller,
    payments_for,
)
from network.activation import activation_grant, activation_retry
from network.devices import normalise_mac
from network.models import Activation, Package, Router
from network.selectors import activation_for_renewal, package_get_active, router_get_for
from project import audit, encryption, log_context, metrics, throttling
from project.auth import Principal, publish_credentials_revoked
from project.errors import ApplicationError, ErrorCode, FieldChecks, InvalidFields
from project.ids import as_pk
from project.text_rules import displayable
from project.unset import UNSET

logger = logging.getLogger(__name__)

Source = PaymentEvent.Source
Status = Payment.Status

# IntaSend's invoice states → ours. Anything else is recorded and changes nothing.
INTASEND_STATE_TO_STATUS: dict[str, str] = {
    "PENDING": Status.PROCESSING,
    "PROCESSING": Status.PROCESSING,
    "COMPLETE": Status.COMPLETED,
    "COMPLETED": Status.COMPLETED,
    "FAILED": Status.FAILED,
    "CANCELLED": Status.FAILED,
}

GATEWAY_REJECTED_MESSAGE = "The payment provider rejected the request. Please try again later."
GATEWAY_UNAVAILABLE_MESSAGE = "The payment provider is not responding. Please try again in a moment."
MIN_PUBLIC_IDEMPOTENCY_KEY_LENGTH = 32


# --- Operators and credentials ----------------------------------------------------------------


def operator_profile(*, operator: AbstractBaseUser) -> OperatorProfile:
    """The operator's profile, created on first use for users made without signals (bulk, fixtures)."""
    profile, _ = OperatorProfile.objects.get_or_create(user=operator)
    return profile


def operator_rotate_public_key(*, operator: AbstractBaseUser) -> OperatorProfile:
    """Issue a new portal key; the old one stops working at once, its open sockets included."""
    profile = operator_profile(operator=operator)
    profile.public_key = uuid.uuid4().hex
    profile.public_key_rotated_at = timezone.now()
    with transaction.atomic():
        profile.save(update_fields=["public_key", "public_key_rotated_at"])
        # The key is public (every portal page carries it), but a log has no use for it: a marker.
        audit.record(
            operator=operator, actor=operator, action="rotatePublicKey", obj=profile, changes={"publicKey": "changed"}
        )
    publish_credentials_revoked(operator_id=operator.pk, via="public_key")
    return profile


# --- What the portal shows customers (updateOperatorProfile, portalInfo) --------------------------


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def checked_text(value: str | None, field: str, max_length: int, *, newlines: bool = False) -> str:
    """Trimmed text, blank allowed; no control or bidirectional characters (a message may keep its line breaks)."""
    raw = (value or "").replace("\r\n", "\n")  # what a browser's textarea sends for a line break
    if not displayable(raw, newlines=newlines):
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must not contain control characters", field=field)
    text = raw.strip()
    if len(text) > max_length:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be at most {max_length} characters", field=field)
    return text


def _support_phone(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        return ""
    try:
        return normalise_phone(text)
    except ApplicationError:
        raise ApplicationError(ErrorCode.INVALID_PHONE, "Invalid phone number format", field="supportPhone") from None


def _language(value: str | None) -> str:
    if value not in Language.values:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "language must be EN or SW", field="language")
    return value


def _time_zone(value: str | None) -> str:
    text = (value or "").strip()
    if text not in _time_zones():
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, "timeZone must be an IANA time zone name, e.g. Africa/Nairobi", field="timeZone"
        )
    return text


# One set of rules for updateOperatorProfile and the admin's form: model field -> check and
# normalisation (raising ApplicationError named after the API field).
OPERATOR_PROFILE_RULES: dict[str, Callable[[Any], Any]] = {
    "business_name": lambda value: checked_text(value, "businessName", 80),
    "support_phone": _support_phone,
    "portal_message": lambda value: checked_text(value, "portalMessage", 280, newlines=True),
    "language": _language,
    "time_zone": _time_zone,
}


@dataclass(frozen=True)
class OperatorProfileUpdate:
    """Fields left as UNSET are not changed; blank (or None) clears the text fields."""

    business_name: str | None = UNSET
    support_phone: str | None = UNSET
    portal_message: str | None = UNSET
    language: str = UNSET
    time_zone: str = UNSET


def operator_profile_update(*, operator: AbstractBaseUser, data: OperatorProfileUpdate) -> OperatorProfile:
    """Change what the portal shows customers; only the fields given change, every invalid one is reported."""
    checks = FieldChecks()
    changes: dict[str, Any] = {}
    for field, rule in OPERATOR_PROFILE_RULES.items():
        value = getattr(data, field)
        if value is not UNSET:
            with checks:
                changes[field] = rule(value)
    checks.raise_if_any()
    with transaction.atomic():
        operator_profile(operator=operator)  # made on first use
        profile = OperatorProfile.objects.select_for_update().get(user=operator)
        changed = sorted(field for field, value in changes.items() if getattr(profile, field) != value)
        before = {field: getattr(profile, field) for field in changed}
        for field in changed:
            setattr(profile, field, changes[field])
        if changed:
            profile.save(update_fields=changed)
            audit.record(
                operator=operator,
                actor=operator,
                action="updateOperatorProfile",
                obj=profile,
                changes=audit.diff(before, {field: changes[field] for field in changed}),
            )
    return profile


@dataclass(frozen=True)
class PortalInfo:
    """What a portal's header and help line show: the operator's identity, and the router if it is theirs."""

    profile: OperatorProfile
    router: Router | None


def portal_info(*, operator: AbstractBaseUser, router_id: object | None) -> PortalInfo:
    """The caller's own operator identity; `router` only when `router_id` is one of theirs (else None,
    exactly as for an unknown id: no existence leak)."""
    router = None
    if router_id is not None:
        try:
            router = router_get_for(operator=operator, router_id=router_id)
        except ApplicationError:
            router = None
    return PortalInfo(profile=operator_profile(operator=operator), router=router)


@dataclass(frozen=True)
class CredentialInput:
    api_key: str
    private_key: str
    environment: str = PaymentCredential.Environment.SANDBOX
    webhook_challenge: str | None = None
    provider: str = PaymentProvider.INTASEND


def credential_add(*, operator: AbstractBaseUser, data: CredentialInput) -> PaymentCredential:
    """Store gateway keys once IntaSend has accepted both; the private key and webhook challenge are
    encrypted and never returned.

    INVALID_CREDENTIALS (per refused key: apiKey, privateKey) or GATEWAY_UNAVAILABLE store nothing:
    a mistyped LIVE key would otherwise become the one every customer's payment uses."""
    checks = FieldChecks()
    with checks:
        api_key = _credential_key(data.api_key, "apiKey", 255)
    with checks:
        private_key = _credential_key(data.private_key, "privateKey", 1024)
    with checks:
        challenge = _credential_key(data.webhook_challenge, "webhookChallenge", 255, required=False)
    with checks:
        if data.provider != PaymentProvider.INTASEND:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT, "Only IntaSend credentials are supported for now", field="provider"
            )
    with checks:
        if data.environment not in PaymentCredential.Environment.values:
            raise ApplicationError(ErrorCode.INVALID_INPUT, "environment must be SANDBOX or LIVE", field="environment")
    checks.raise_if_any()
    _credential_check_allowed(operator)
    keys = GatewayCredentials(api_key=api_key, private_key=private_key, environment=data.environment)
    _keys_verify(keys)
    with transaction.atomic():
        credential = PaymentCredential.objects.create(
            owner=operator,
            provider=data.provider,
            api_key=api_key,
            private_key_encrypted=encryption.encrypt(private_key),
            webhook_challenge_encrypted=encryption.encrypt(challenge) if challenge else "",
            environment=data.environment,
            verified_at=timezone.now(),
        )
        audit.record(
            operator=operator,
            actor=operator,
            action="addPaymentCredential",
            obj=credential,
            # Write-only values are marked, never recorded.
            changes={
                "provider": credential.provider,
                "apiKey": credential.api_key,
                "environment": credential.environment,
                "privateKey": "set",
                "webhookChallenge": "set" if challenge else "none",
            },
        )
    return credential


# What an operator reads about a check: never IntaSend's own text (it is logged).
KEY_REFUSED_MESSAGES = {
    "publishable": (
        "apiKey",
        "IntaSend rejected this publishable key. Copy it again from IntaSend's dashboard, for the right "
        "environment (SANDBOX or LIVE).",
    ),
    "secret": (
        "privateKey",
        "IntaSend rejected this secret key. Copy it again from IntaSend's dashboard, for the right "
        "environment (SANDBOX or LIVE).",
    ),
}
KEYS_UNCHECKED_MESSAGE = "IntaSend could not be reached to check the keys. Please try again in a moment."
CREDENTIAL_NOT_FOUND_MESSAGE = "Payment credential not found"


def _credential_check_allowed(operator: AbstractBaseUser) -> None:
    """Every check calls IntaSend: bounded per operator, so nobody drives our keys' traffic there."""
    if not throttling.hit(
        "credential-check",
        str(operator.pk),
        limit=settings.CREDENTIAL_CHECK_RATE_LIMIT,
        window_seconds=settings.CREDENTIAL_CHECK_RATE_LIMIT_WINDOW_SECONDS,
    ):
        raise ApplicationError(
            ErrorCode.RATE_LIMITED, "Too many key checks just now. Please wait a minute and try again."
        )


def _keys_verify(keys: GatewayCredentials) -> None:
    """Ask IntaSend whether both keys work (calls that move no money).

    INVALID_CREDENTIALS, one error per refused key (apiKey, privateKey); GATEWAY_UNAVAILABLE when
    IntaSend could not tell."""
    try:
        with IntaSendGateway(
            keys,
            base_url=settings.INTASEND_API_BASE_URL,
            timeout=(settings.INTASEND_CONNECT_TIMEOUT, settings.INTASEND_READ_TIMEOUT),
        ) as gateway:
            gateway.verify_keys()
    except CredentialsRejected as exc:
        logger.info("IntaSend refused %s key(s): %s", "/".join(exc.keys), exc.detail)
        failures = [
            ApplicationError(ErrorCode.INVALID_CREDENTIALS, message, field=field)
            for field, message in (KEY_REFUSED_MESSAGES[key] for key in exc.keys)
        ]
        raise (failures[0] if len(failures) == 1 else InvalidFields(failures)) from None
    except GatewayError as exc:
        logger.warning("IntaSend key check inconclusive: %s (%s)", exc, exc.detail)
        raise ApplicationError(ErrorCode.GATEWAY_UNAVAILABLE, KEYS_UNCHECKED_MESSAGE) from None


def _own_credential(operator: AbstractBaseUser, credential_id: object, *, locked: bool) -> PaymentCredential:
    """One of the operator's credentials, not deleted (``locked``: for this transaction). Someone
    else's, a deleted one and a malformed id all read the same."""
    pk = as_pk(credential_id)
    found = credentials_for(operator).filter(pk=pk) if pk is not None else PaymentCredential.objects.none()
    credential = (found.select_for_update() if locked else found).first()
    if credential is None:
        raise ApplicationError(ErrorCode.INVALID_INPUT, CREDENTIAL_NOT_FOUND_MESSAGE, field="id")
    return credential


@dataclass(frozen=True)
class CredentialCheck:
    """verifyPaymentCredential's answer: the credential as now stored, and the check's failure if any."""

    credential: PaymentCredential
    error: ApplicationError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def credential_verify(*, operator: AbstractBaseUser, credential_id: object) -> CredentialCheck:
    """Check a stored credential's keys with IntaSend: stamps ``verified_at`` when both work, else
    ``last_verification_error`` (our wording, never IntaSend's). A failed check changes nothing
    else: the operator decides whether to deactivate or delete it."""
    credential = _own_credential(operator, credential_id, locked=False)
    _credential_check_allowed(operator)
    error: ApplicationError | None = None
    try:
        _keys_verify(
            GatewayCredentials(
                api_key=credential.api_key, private_key=credential.private_key(), environment=credential.environment
            )
        )
    except ApplicationError as failure:  # INVALID_CREDENTIALS, GATEWAY_UNAVAILABLE, DECRYPTION_FAILED
        error = failure
    with transaction.atomic():
        credential = _own_credential(operator, credential.pk, locked=True)
        before = {"verifiedAt": credential.verified_at, "lastVerificationError": credential.last_verification_error}
        if error is None:
            credential.verified_at = timezone.now()
            credential.last_verification_error = ""
        else:
            field_of = {"apiKey": "publishable key", "privateKey": "secret key"}
            refused = [field_of[e.field] for e in error.errors if e.field in field_of]
            credential.last_verification_error = (
                f"IntaSend rejected the {' and the '.join(refused)}" if refused else error.message
            )[:200]
        credential.save(update_fields=["verified_at", "last_verification_error"])
        after = {"verifiedAt": credential.verified_at, "lastVerificationError": credential.last_verification_error}
        audit.record(
            operator=operator,
            actor=operator,
            action="verifyPaymentCredential",
            obj=credential,
            changes={"result": "ok" if error is None else error.code.value, **audit.diff(before, after)},
        )
    return CredentialCheck(credential=credential, error=error)


def credential_set_active(*, operator: AbstractBaseUser, credential_id: object, is_active: bool) -> PaymentCredential:
    """Switch a credential on or off; the newest active one is what new payments use. Payments made
    with it keep their credential either way (webhooks, status checks)."""
    with transaction.atomic():
        credential = _own_credential(operator, credential_id, locked=True)
        if credential.is_active != is_active:
            before = {"isActive": credential.is_active}
            credential.is_active = is_active
            credential.save(update_fields=["is_active"])
            audit.record(
                operator=operator,
                actor=operator,
                action="setPaymentCredentialActive",
                obj=credential,
                changes=audit.diff(before, {"isActive": is_active}),
            )
    return credential


def credential_delete(*, operator: AbstractBaseUser, credential_id: object) -> PaymentCredential:
    """Soft-delete: from now on no new payment uses it and the operator's lists leave it out, but it
    stays stored (encrypted) for the payments made with it, so their webhooks, status checks and the
    reconciler keep working and they stay readable."""
    with transaction.atomic():
        credential = _own_credential(operator, credential_id, locked=True)
        credential.deleted_at = timezone.now()
        credential.save(update_fields=["deleted_at"])
        audit.record(
            operator=operator,
            actor=operator,
            action="deletePaymentCredential",
            obj=credential,
            changes=audit.diff({"deletedAt": None}, {"deletedAt": credential.deleted_at}),
        )
    return credential


def _credential_key(value: str | None, field: str, max_length: int, *, required: bool = True) -> str:
    key = (value or "").strip()
    if required and not key:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} is required", field=field)
    if len(key) > max_length:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} must be at most {max_length} characters", field=field)
    # Keys travel in HTTP headers to IntaSend: printable ASCII only (found by the GraphQL fuzz: a key in
    # another script failed inside the HTTP client as an INTERNAL error).
    if not all(" " < ch < "\x7f" for ch in key):
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{field} may hold printable ASCII only", field=field)
    return key


def secrets_reencrypt() -> int:
    """Re-encrypt every stored secret with the newest FIELD_ENCRYPTION_KEY; returns rows rewritten."""
    rewritten = 0
    with transaction.atomic():
        for credential in PaymentCredential.objects.select_for_update():
            credential.private_key_encrypted = encryption.reencrypt(credential.private_key_encrypted)
            if credential.webhook_challenge_encrypted:
                credential.webhook_challenge_encrypted = encryption.reencrypt(credential.webhook_challenge_encrypted)
            credential.save(update_fields=["private_key_encrypted", "webhook_challenge_encrypted"])
            rewritten += 1
        for router in Router.objects.select_for_update():
            router.password_encrypted = encryption.reencrypt(router.password_encrypted)
            router.save(update_fields=["password_encrypted"])
            rewritten += 1
    return rewritten


def gateway_for(credential: PaymentCredential) -> IntaSendGateway:
    """The IntaSend gateway for a credential (raises DECRYPTION_FAILED when its key is unreadable)."""
    return IntaSendGateway(
        GatewayCredentials(
            api_key=credential.api_key,
            private_key=credential.private_key(),
            environment=credential.environment,
        ),
        base_url=settings.INTASEND_API_BASE_URL,
        timeout=(settings.INTASEND_CONNECT_TIMEOUT, settings.INTASEND_READ_TIMEOUT),
    )


# --- Starting a payment -----------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRequest:
    router_id: object
    package_id: object
    phone_number: str | None
    amount: Decimal | str
    payment_method: str = "mpesa"
    mac_address: str | None = None
    ip_address: str | None = None
    idempotency_key: str | None = None
    # An access code the caller holds: extend that grant (same package only) instead of a new one.
    renew_code: str | None = None


@dataclass(frozen=True)
class RedirectUrls:
    """Where IntaSend sends its webhook and the payer's browser; from settings, else the request's host."""

    callback_url: str
    success_url_base: str
    fail_url_base: str


@dataclass(frozen=True)
class _ValidatedRequest:
    router: Router
    package: Package
    phone_number: str
    amount: Decimal
    payment_method: str
    mac_address: str
    ip_address: str | None
    credential: PaymentCredential
    gateway: PaymentGateway
    renews: Activation | None = None


def _validate(principal: Principal, request: PaymentRequest, kind: str) -> _ValidatedRequest:
    """API.md's validation order, nothing written when any step fails: the router, then the package
    (each stops here: the amount is checked against the package), then every field at once, then the
    renewal code and the credential."""
    operator = principal.operator
    router = router_get_for(operator=operator, router_id=request.router_id)
    package = package_get_active(router=router, package_id=request.package_id)
    checks = FieldChecks()
    with checks:
        phone = _payer_phone(request.phone_number, kind)
    with checks:
        amount = _package_amount(request.amount, package)
    with checks:
        mac = normalise_mac(request.mac_address)
    with checks:
        ip = normalise_ip(request.ip_address)
    with checks:
        _idempotency_key(principal, request.idempotency_key)
    with checks:
        method = _payment_method(request.payment_method, kind)
    checks.raise_if_any()
    renew_code = (request.renew_code or "").strip()
    # Renewal only on proof (the code itself) and only of the same package; never by MAC or phone.
    # Looked up for a well-formed request only, so no malformed one learns whether a code exists.
    renews = _renewal_target(principal, router, package, renew_code, mac) if renew_code else None
    credential = credential_newest_active(operator=operator)
    gateway = gateway_for(credential)
    return _ValidatedRequest(router, package, phone, amount, method, mac, ip, credential, gateway, renews=renews)


def _renewal_target(principal: Principal, router: Router, package: Package, code: str, mac: str) -> Activation:
    """The grant a renewCode extends. From portals it is a code guess: it counts in the code box's
    budget (billing.access), so guessing renewal codes slows redeemCode on that router like wrong codes do."""
    if principal.is_operator:
        return activation_for_renewal(router=router, code=code, package=package)
    access.renewal_code_check(router=router, mac_address=mac)
    try:
        return activation_for_renewal(router=router, code=code, package=package)
    except ApplicationError:
        access.code_failure_record(router=router, mac_address=mac)
        raise


def _payer_phone(raw: str | None, kind: str) -> str:
    """The payer's number, normalised; a checkout link may go without one."""
    phone = (raw or "").strip()
    if phone or kind == Payment.Kind.STK_PUSH:
        return normalise_phone(phone)
    return phone


def _package_amount(raw: Decimal | str, package: Package) -> Decimal:
    amount = parse_amount(raw)
    if amount != package.price:
        raise ApplicationError(
            ErrorCode.AMOUNT_MISMATCH, f"Amount must match package price: {package.price} KES", field="amount"
        )
    return amount


def _idempotency_key(principal: Principal, raw: str | None) -> str | None:
    key = (raw or "").strip() or None
    if key and len(key) > 128:
        raise ApplicationError(ErrorCode.INVALID_INPUT, "idempotencyKey is too long", field="idempotencyKey")
    if key and len(key) < MIN_PUBLIC_IDEMPOTENCY_KEY_LENGTH and not principal.is_operator:
        # A replay returns the payment with its client secret: the key must be as unguessable.
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"idempotencyKey must be at least {MIN_PUBLIC_IDEMPOTENCY_KEY_LENGTH} random characters",
            field="idempotencyKey",
        )
    return key


def _payment_method(raw: str | None, kind: str) -> str:
    method = (raw or "mpesa").strip().lower()
    allowed_methods = {"mpesa"} if kind == Payment.Kind.STK_PUSH else {"mpesa", "card"}
    if method not in allowed_methods:
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"paymentMethod must be one of: {', '.join(sorted(allowed_methods))}",
            field="paymentMethod",
        )
    return method


def _canonical_amount(raw: Decimal | str) -> str:
    """`10`, `10.0` and `10.00` are one amount; `10.001` stays itself (and fails validation)."""
    amount = parse_amount(raw)
    try:
        quantized = amount.quantize(Decimal("0.01"))
    except InvalidOperation:  # too many digits to quantize: nothing to confuse it with
        return str(amount)
    return str(quantized if quantized == amount else amount)


def _fingerprint(request: PaymentRequest, kind: str) -> str:
    """What makes two requests "the same" for an idempotency key: the normalised input."""

    def safe(parse, value):
        try:
            return parse(value)
        except ApplicationError:
            return (value or "").strip() if isinstance(value, str) else value

    canonical = {
        "kind": kind,
        "router": str(request.router_id),
        "package": str(request.package_id),
        "phone": safe(normalise_phone, request.phone_number) if request.phone_number else "",
        "amount": safe(_canonical_amount, request.amount),
        "method": (request.payment_method or "mpesa").strip().lower(),
        "mac": safe(normalise_mac, request.mac_address),
        "ip": safe(normalise_ip, request.ip_address),
    }
    renew_code = (request.renew_code or "").strip().upper()
    if renew_code:  # only when given, so fingerprints stored before renewCode existed still match
        canonical["renew"] = renew_code
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def _idempotent_replay(principal: Principal, key: str | None, fingerprint: str) -> Payment | None:
    if not key:
        return None
    existing = Payment.objects.filter(owner=principal.operator, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_MISMATCH,
            "This idempotencyKey was already used with different payment details",
            field="idempotencyKey",
        )
    return existing


def _throttle_portal(principal: Principal, valid: _ValidatedRequest, client_ip: str | None) -> None:
    """Budgets per operator (phone) and per router (address): behind one hotspot's NAT, or one
    carrier's, every customer shares an address, and pushes to a phone at one operator's hotspot
    must not lock that phone out of every other operator's."""
    if principal.is_operator:
        return
    window = settings.PAYMENT_RATE_LIMIT_WINDOW_SECONDS
    checks = []
    if valid.phone_number:
        checks.append(("phone", f"{principal.operator.pk}:{valid.phone_number}", settings.PAYMENT_RATE_LIMIT_PER_PHONE))
    if client_ip:
        checks.append(("ip", f"{valid.router.pk}:{client_ip}", settings.PAYMENT_RATE_LIMIT_PER_IP))
    for scope, key, limit in checks:
        if not throttling.hit(f"payment:{scope}", key, limit=limit, window_seconds=window):
            raise ApplicationError(
                ErrorCode.RATE_LIMITED, "Too many payment requests. Please wait a few minutes and try again."
            )


def _create_payment(
    principal: Principal,
    request: PaymentRequest,
    valid: _ValidatedRequest,
    *,
    kind: str,
    fingerprint: str,
    client_ip: str | None,
) -> tuple[Payment, bool]:
    """The payment record, written and committed before any gateway call; `True` when new."""
    key = (request.idempotency_key or "").strip() or None
    try:
        with transaction.atomic():
            # Serialise concurrent pushes for one router so the already-pending rule holds under races.
            Router.objects.select_for_update().filter(pk=valid.router.pk).first()
            # A request with the same key committed while we waited: it is this caller's payment.
            replay = _idempotent_replay(principal, key, fingerprint)
            if replay is not None:
                return replay, False
            if kind == Payment.Kind.STK_PUSH:
                # A PENDING push is one whose gateway call is still in flight: just as busy. A push
                # whose answer never came may still be on the phone: busy a little longer.
                now = timezone.now()
                pending = (
                    Payment.objects.filter(
                        router=valid.router,
                        phone_number=valid.phone_number,
                        kind=Payment.Kind.STK_PUSH,
                        status__in=[Status.PENDING, Status.PROCESSING],
                    )
                    .filter(
                        Q(created_at__gte=now - timedelta(seconds=settings.PAYMENT_PENDING_WINDOW_SECONDS))
                        | Q(
                            outcome_unknown=True,
                            created_at__gte=now - timedelta(seconds=settings.PAYMENT_UNKNOWN_OUTCOME_WINDOW_SECONDS),
                        )
                    )
                    .order_by("-created_at")
                    .first()
                )
                if pending is not None:
                    raise ApplicationError(
                        ErrorCode.PAYMENT_ALREADY_PENDING,
                        "A payment for this phone number is already in progress. "
                        "Please complete or cancel the M-Pesa prompt on your phone.",
                    )  # no payment: it belongs to whoever started it (API.md "initiatePayment")
            payment = Payment.objects.create(
                owner=principal.operator,
                router=valid.router,
                package=valid.package,
                credential=valid.credential,
                kind=kind,
                phone_number=valid.phone_number,
                amount=valid.amount,
                payment_method=valid.payment_method,
                payment_provider=PaymentProvider.INTASEND,
                status=Status.PENDING,
                mac_address=valid.mac_address,
                ip_address=valid.ip_address,
                renews=valid.renews,
                client_ip=client_ip,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                client_secret=secrets.token_urlsafe(32),
            )
            PaymentEvent.objects.create(
                payment=payment,
                source=Source.API,
                old_status="",
                new_status=Status.PENDING,
                note=f"Created by {principal.via} caller",
            )
            publish_payment_changed(payment_id=payment.pk, operator_id=payment.owner_id)
            return payment, True
    except IntegrityError:
        # Two requests with the same idempotency key raced; the loser answers like a replay.
        replay = _idempotent_replay(principal, key, fingerprint)
        if replay is None:
            raise
        return replay, False


def _begin(
    principal: Principal, request: PaymentRequest, *, kind: str, client_ip: str | None
) -> tuple[Payment, _ValidatedRequest | None]:
    fingerprint = _fingerprint(request, kind)
    try:
        key = _idempotency_key(principal, request.idempotency_key)
    except ApplicationError:
        key = None  # a malformed key replays nothing; _validate reports it with the other fields
    replay = _idempotent_replay(principal, key, fingerprint)
    if replay is not None:
        return replay, None
    valid = _validate(principal, request, kind)
    _throttle_portal(principal, valid, client_ip)
    payment, created = _create_payment(
        principal, request, valid, kind=kind, fingerprint=fingerprint, client_ip=client_ip
    )
    return payment, (valid if created else None)


def _fail_after_gateway_error(payment: Payment, exc: GatewayError, *, source: str) -> ApplicationError:
    rejected = isinstance(exc, GatewayRejected)
    logger.warning(
        "IntaSend call for payment %s failed (%s, status %s): %s",
        payment.pk,
        type(exc).__name__,
        exc.status_code,
        exc.detail,
    )
    reason = (
        f"IntaSend rejected the request (HTTP {exc.status_code})"
        if rejected
        else "IntaSend did not answer (timeout, connection error or invalid response)"
    )
    failed = payment_fail(payment_id=payment.pk, source=source, reason=reason, raw={"error": type(exc).__name__})
    return ApplicationError(
        ErrorCode.GATEWAY_ERROR if rejected else ErrorCode.GATEWAY_UNAVAILABLE,
        GATEWAY_REJECTED_MESSAGE if rejected else GATEWAY_UNAVAILABLE_MESSAGE,
        payment=failed,
    )


def _outcome_unknown(payment: Payment, exc: GatewayUnavailable) -> ApplicationError:
    """The push's answer never came, yet the prompt may be on the phone (API.md "Unknown outcomes"):
    the payment stays PROCESSING, flagged, until the reconciler settles it with IntaSend."""
    logger.warning(
        "IntaSend STK push for payment %s: outcome unknown (%s, status %s): %s",
        payment.pk,
        type(exc).__name__,
        exc.status_code,
        exc.detail,
    )
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if not locked.is_final:
            _record_change(
                locked,
                new_status=Status.PROCESSING,
                source=Source.GATEWAY,
                raw={"error": type(exc).__name__},
                note="IntaSend did not answer the push; the reconciler will ask it by api_ref",
                updates={"outcome_unknown": True},
            )
    return ApplicationError(ErrorCode.GATEWAY_UNAVAILABLE, GATEWAY_UNAVAILABLE_MESSAGE, payment=locked)


@log_context.scoped
def payment_initiate(*, principal: Principal, request: PaymentRequest, client_ip: str | None = None) -> Payment:
    """Validate, record the payment, then send the M-Pesa STK push (status becomes PROCESSING)."""
    payment, valid = _begin(principal, request, kind=Payment.Kind.STK_PUSH, client_ip=client_ip)
    log_context.bind(payment_id=payment.pk)
    if valid is None:
        return payment
    try:
        with valid.gateway as gateway:
            result = gateway.stk_push(
                phone_number=payment.phone_number,
                amount=payment.amount,
                api_ref=str(payment.pk),
                narrative=f"{valid.package.name} WiFi",
            )
    except GatewayUnavailable as exc:
        raise _outcome_unknown(payment, exc) from exc
    except GatewayError as exc:
        raise _fail_after_gateway_error(payment, exc, source=Source.GATEWAY) from exc
    return payment_apply_gateway_state(
        payment_id=payment.pk,
        source=Source.GATEWAY,
        state=result.state,
        raw=result.raw,
        invoice_id=result.invoice_id,
        extra_updates={"intasend_payment_id": result.payment_id},
    )


@log_context.scoped
def payment_link_create(
    *, principal: Principal, request: PaymentRequest, urls: RedirectUrls, client_ip: str | None = None
) -> Payment:
    """Validate, record the payment, then create an IntaSend checkout (status stays PENDING)."""
    payment, valid = _begin(principal, request, kind=Payment.Kind.PAYMENT_LINK, client_ip=client_ip)
    log_context.bind(payment_id=payment.pk)
    if valid is None:
        return payment
    # The return page shows the access code only to a URL carrying the secret (as Stripe's
    # return_url carries payment_intent_client_secret): the payer's browser, nobody else.
    secret_query = urlencode({"client_secret": payment.client_secret})
    try:
        with valid.gateway as gateway:
            checkout: CheckoutResult = gateway.checkout(
                amount=payment.amount,
                api_ref=str(payment.pk),
                phone_number=payment.phone_number or None,
                redirect_url=f"{urls.success_url_base}{payment.pk}/?{secret_query}",
                callback_url=urls.callback_url,
            )
    except GatewayError as exc:
        raise _fail_after_gateway_error(payment, exc, source=Source.GATEWAY) from exc
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        _record_change(
            locked,
            new_status=locked.status,
            source=Source.GATEWAY,
            gateway_state=checkout.state,
            raw=checkout.raw,
            note="Checkout link created",
            updates={
                "intasend_checkout_id": checkout.checkout_id,
                "intasend_checkout_signature": checkout.signature,
                "intasend_state": checkout.state,
                "payment_url": checkout.url,
            },
        )
    return locked


# --- Status checks and the one state machine --------------------------------------------------


@dataclass(frozen=True)
class StatusCheck:
    payment: Payment
    gateway_status: StatusResult | None  # None when answered from the database


def payment_fetch_gateway_status(payment: Payment) -> StatusResult | None:
    """Ask IntaSend about a payment, with the credential it was made with: by invoice, by checkout,
    else (a push whose answer never came) by our api_ref; None when IntaSend has no invoice for it."""
    credential = payment.credential
    if credential is None:
        raise ApplicationError(
            ErrorCode.NO_CREDENTIALS,
            "No active IntaSend credentials found. Please add your IntaSend API credentials first.",
        )
    with gateway_for(credential) as gateway:
        if payment.intasend_invoice_id:
            return gateway.status(invoice_id=payment.intasend_invoice_id)
        if payment.intasend_checkout_id:
            return gateway.status(
                checkout_id=payment.intasend_checkout_id, signature=payment.intasend_checkout_signature
            )
        return gateway.find_by_api_ref(str(payment.pk))


def payment_apply_status_result(*, payment_id: object, result: StatusResult, source: str) -> Payment:
    return payment_apply_gateway_state(
        payment_id=payment_id,
        source=source,
        state=result.state,
        raw=result.raw,
        invoice_id=result.invoice_id,
        amount=result.amount,
        mpesa_reference=result.mpesa_reference,
        failed_reason=result.failed_reason,
        api_ref=result.api_ref,
    )


@log_context.scoped
def payment_check_status(
    *, principal: Principal, payment_id: object, client_secret: str | None = None, client_ip: str | None = None
) -> StatusCheck:
    """Answer final payments from the database; otherwise ask IntaSend and apply what it says.

    Public-key calls need the payment's client secret, are throttled per payment and client, and
    share one IntaSend call per payment every PAYMENT_STATUS_CACHE_SECONDS (within it they get the
    last answer): a portal in a loop must not turn into IntaSend traffic on the operator's keys.
    Operators always ask, and their answer refreshes what portals are given.
    """
    payment = payment_get_for_caller(principal=principal, payment_id=payment_id, client_secret=client_secret)
    log_context.bind(payment_id=payment.pk)
    if not principal.is_operator and not throttling.hit(
        "payment:check",
        f"{payment.pk}:{client_ip or ''}",
        limit=settings.PAYMENT_STATUS_CHECKS_PER_MINUTE,
        window_seconds=60,
    ):
        raise ApplicationError(ErrorCode.RATE_LIMITED, "Too many status checks. Please wait a moment and try again.")
    if payment.payment_provider != PaymentProvider.INTASEND:
        raise ApplicationError(ErrorCode.NOT_INTASEND_PAYMENT, "This payment was not initiated through IntaSend")
    if payment.is_final or not (payment.intasend_invoice_id or payment.intasend_checkout_id):
        return StatusCheck(payment=payment, gateway_status=None)
    asked_recently = f"payment-status:{payment.pk}"
    freshness = settings.PAYMENT_STATUS_CACHE_SECONDS
    if principal.is_operator:
        cache.set(asked_recently, True, timeout=freshness)
    elif not cache.add(asked_recently, True, timeout=freshness):  # atomic: one caller asks, the rest read
        return StatusCheck(payment=payment, gateway_status=cache.get(f"{asked_recently}:answer"))
    try:
        result = payment_fetch_gateway_status(payment)
    except GatewayRejected as exc:
        if exc.status_code == 404 and not payment.intasend_invoice_id:
            return StatusCheck(payment=payment, gateway_status=None)  # checkout link not paid yet
        logger.warning("IntaSend status for payment %s rejected (%s): %s", payment.pk, exc.status_code, exc.detail)
        raise ApplicationError(ErrorCode.GATEWAY_ERROR, GATEWAY_REJECTED_MESSAGE, payment=payment) from exc
    except GatewayError as exc:
        logger.warning("IntaSend status for payment %s unavailable: %s", payment.pk, exc.detail)
        raise ApplicationError(ErrorCode.GATEWAY_UNAVAILABLE, GATEWAY_UNAVAILABLE_MESSAGE, payment=payment) from exc
    payment = payment_apply_status_result(payment_id=payment.pk, result=result, source=Source.CHECK)
    cache.set(f"{asked_recently}:answer", dataclasses.replace(result, raw={}), timeout=freshness)
    return StatusCheck(payment=payment, gateway_status=result)


def payment_fail(*, payment_id: object, source: str, reason: str, raw: dict | None = None) -> Payment:
    """Fail a payment that is not final yet (gateway refused it, or it was never answered)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if not payment.is_final:
            _record_change(
                payment,
                new_status=Status.FAILED,
                source=source,
                raw=raw,
                note=reason,
                updates={"failure_reason": reason},
            )
        return payment


@log_context.scoped
def payment_apply_gateway_state(
    *,
    payment_id: object,
    source: str,
    state: str,
    raw: dict | None,
    invoice_id: str | None = None,
    amount: Decimal | None = None,
    mpesa_reference: str | None = None,
    failed_reason: str | None = None,
    api_ref: str | None = None,
    extra_updates: dict | None = None,
) -> Payment:
    """Apply IntaSend's news about a payment, whichever path brought it (API.md "State rules").

    Locks the row; final states stay final; the same news twice changes nothing; an unknown state
    or a claim about another invoice, reference or amount is recorded and changes nothing.
    """
    log_context.bind(payment_id=payment_id)
    state = (state or "").strip().upper()
    target = INTASEND_STATE_TO_STATUS.get(state)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)

        def ignore(note: str) -> Payment:
            PaymentEvent.objects.create(
                payment=payment,
                source=source,
                old_status=payment.status,
                new_status=payment.status,
                gateway_state=state[:20],
                raw_payload=raw,
                note=note,
            )
            logger.info("Payment %s: %s", payment.pk, note)
            return payment

        if payment.intasend_invoice_id and invoice_id and invoice_id != payment.intasend_invoice_id:
            return ignore(f"Ignored: news about invoice {invoice_id}, ours is {payment.intasend_invoice_id}")
        if api_ref and api_ref != str(payment.pk):
            return ignore(f"Ignored: news for api_ref {api_ref!r}")
        if target is None:
            return ignore(f"Ignored: unknown IntaSend state {state!r}")
        if invoice_id and not payment.intasend_invoice_id and _invoice_taken(invoice_id, payment):
            return ignore(f"Ignored: invoice {invoice_id} belongs to another payment")
        # Money counts only when IntaSend's answer names this payment and its exact amount: an
        # invoice without our api_ref, or without a value, may have paid for anything.
        money_for_us = target == Status.COMPLETED and api_ref == str(payment.pk) and amount == payment.amount
        if payment.is_final:
            if target == payment.status:
                return payment  # a replay: nothing to record
            if payment.status == Status.FAILED and money_for_us:
                return _record_paid_after_failure(payment, source, state, raw, invoice_id, mpesa_reference)
            return ignore(f"Ignored: payment is already {payment.status}, IntaSend now says {state}")
        if target == Status.COMPLETED and not money_for_us:
            return ignore(
                f"Not completed: IntaSend reports {amount} for api_ref {api_ref!r}, "
                f"the payment is {payment.pk} for {payment.amount}"
            )

        updates = dict(extra_updates or {})
        if invoice_id and not payment.intasend_invoice_id:
            updates["intasend_invoice_id"] = invoice_id
        if mpesa_reference:
            updates["mpesa_reference"] = mpesa_reference
        if target == Status.FAILED:
            updates["failure_reason"] = failed_reason or "Payment failed at IntaSend"
        changed = (
            target != payment.status
            or state != payment.intasend_state
            or any(getattr(payment, field) != value for field, value in updates.items())
        )
        if not changed:
            return payment
        updates["intasend_state"] = state
        if target != Status.PROCESSING:
            updates["outcome_unknown"] = False  # IntaSend has settled it
        try:
            with transaction.atomic():  # a savepoint: the invoice's unique constraint may refuse it
                _record_change(payment, new_status=target, source=source, gateway_state=state, raw=raw, updates=updates)
        except IntegrityError:
            # Another payment claimed this invoice between our check and the save.
            payment.refresh_from_db()
            return ignore(f"Ignored: invoice {invoice_id} belongs to another payment")
        return payment


def _invoice_taken(invoice_id: str, payment: Payment) -> bool:
    """One IntaSend invoice pays for at most one payment (the database enforces it too)."""
    return Payment.objects.filter(intasend_invoice_id=invoice_id).exclude(pk=payment.pk).exists()


def _record_paid_after_failure(
    payment: Payment,
    source: str,
    state: str,
    raw: dict | None,
    invoice_id: str | None,
    mpesa_reference: str | None,
) -> Payment:
    """IntaSend's status API confirms money for a payment we had already FAILED: flag it, once."""
    if payment.paid_after_failure:
        return payment
    updates = {"paid_after_failure": True, "paid_after_failure_at": timezone.now(), "intasend_state": state}
    updates.update(_reported_fees(raw))
    if invoice_id and not payment.intasend_invoice_id:
        updates["intasend_invoice_id"] = invoice_id
    if mpesa_reference:
        updates["mpesa_reference"] = mpesa_reference
    note = "Paid after it had failed: IntaSend confirms the money. Refund the customer or give them access by hand."
    logger.error("Payment %s (%s %s) %s", payment.pk, payment.amount, payment.currency, note)
    _record_change(
        payment, new_status=payment.status, source=source, gateway_state=state, raw=raw, note=note, updates=updates
    )
    return payment


def _grant_for(payment: Payment) -> Activation:
    """The access grant a completing payment buys: network's one entry point for it, given everything
    the grant needs (network never reads the payment). The caller links it to the payment."""
    return activation_grant(
        source=Activation.Source.PAYMENT,
        owner=payment.owner,
        router=payment.router,
        package=payment.package,
        expires_at=payment.package_expiry_time,
        granted_at=payment.completed_at,
        phone_number=payment.phone_number,
        mac_address=payment.mac_address,
        ip_address=payment.ip_address,
        renews=payment.renews,
        reference=str(payment.pk),
    )


def _reported_fees(raw: dict | None) -> dict[str, Decimal]:
    """IntaSend's `charges` and `net_amount` from the news that brought the money (a status answer
    nests the invoice, a webhook is flat; numbers or strings by endpoint), when it reported them."""
    invoice = raw.get("invoice") if isinstance(raw, dict) and isinstance(raw.get("invoice"), dict) else raw
    if not isinstance(invoice, dict):
        return {}
    fees = {}
    for field, key in (("charges", "charges"), ("net_amount", "net_amount")):
        try:
            value = Decimal(str(invoice[key]))
        except (KeyError, ArithmeticError, ValueError):
            continue
        if value.is_finite() and 0 <= value < Decimal("1e8"):
            fees[field] = value.quantize(Decimal("0.01"))
    return fees


def _record_change(
    payment: Payment,
    *,
    new_status: str,
    source: str,
    gateway_state: str = "",
    raw: dict | None = None,
    note: str = "",
    updates: dict | None = None,
) -> PaymentEvent:
    """The only place a payment's state is written: save, log the event, notify after commit.

    Callers hold the row lock (select_for_update inside an atomic block).
    """
    old_status = payment.status
    if payment.is_final and new_status != old_status:
        raise RuntimeError(f"Payment {payment.pk} is final ({old_status}); refusing {new_status}")
    for field, value in (updates or {}).items():
        setattr(payment, field, value)
    payment.status = new_status
    completing = new_status == Status.COMPLETED and old_status != Status.COMPLETED
    if completing:
        payment.completed_at = timezone.now()
        for field, value in _reported_fees(raw).items():
            setattr(payment, field, value)
        payment.package_expiry_time = payment.completed_at + timedelta(minutes=payment.package.duration_minutes)
        if payment.activation_id is None:
            payment.activation = _grant_for(payment)
    payment.save()
    event = PaymentEvent.objects.create(
        payment=payment,
        source=source,
        old_status=old_status,
        new_status=new_status,
        gateway_state=(gateway_state or "")[:20],
        raw_payload=raw,
        note=note,
    )
    if new_status != old_status:
        # One line per state change, so the log alone tells an on-call engineer why a payment ended.
        logger.info(
            "Payment %s %s -> %s (%s%s)",
            payment.pk,
            old_status,
            new_status,
            source,
            f", IntaSend {gateway_state}" if gateway_state else "",
            extra={"payment_id": str(payment.pk)},
        )
    if completing:
        metrics.payment_completed(payment, source)
    publish_payment_changed(payment_id=payment.pk, operator_id=payment.owner_id)
    return event


# --- Confirmation and reconciliation (background jobs) ----------------------------------------


@log_context.scoped
def payment_confirm_with_gateway(*, payment_id: object, invoice_id: str | None, source: str) -> Payment:
    """Ask IntaSend about a payment somebody told us about, and apply the answer.

    A FAILED payment is asked too: money confirmed after we gave up must not go unnoticed.
    Raises GatewayUnavailable (the job retries it); a refusal is logged and ends the matter.
    """
    log_context.bind(payment_id=payment_id)
    payment = Payment.objects.select_related("credential").get(pk=payment_id)
    if payment.status == Status.COMPLETED or payment.paid_after_failure:
        return payment
    if invoice_id and not payment.intasend_invoice_id and not _invoice_taken(invoice_id, payment):
        # A checkout's invoice is first named by its webhook (in memory only: nothing is saved
        # unless IntaSend's answer carries our api_ref and amount). An invoice another payment
        # owns is not asked about: one invoice pays for one payment.
        payment.intasend_invoice_id = invoice_id
    try:
        result = payment_fetch_gateway_status(payment)
    except GatewayRejected as exc:
        logger.warning("IntaSend refused status of payment %s (%s): %s", payment.pk, exc.status_code, exc.detail)
        return payment
    if result is None:
        return payment  # IntaSend has no invoice for our api_ref: nothing to apply
    return payment_apply_status_result(payment_id=payment.pk, result=result, source=source)


def _reconcile_backoff(attempts: int) -> timedelta:
    seconds = min(30 * 2**attempts, settings.PAYMENT_RECONCILE_MAX_BACKOFF_SECONDS)
    return timedelta(seconds=seconds)


@log_context.scoped
def payment_reconcile(*, payment_id: object, now=None) -> Payment:
    """One reconciler pass over one unanswered payment: ask, apply, or give up past the cut-off.

    IntaSend is asked before anything is failed (by invoice, checkout, else our api_ref: a push
    whose answer never came has no invoice id). Past the cut-off a payment fails once IntaSend
    has answered (no invoice for it, or still not final: the prompt expired); while IntaSend
    cannot be reached it keeps being asked, up to PAYMENT_UNKNOWN_OUTCOME_MAX_SECONDS.
    """
    log_context.bind(payment_id=payment_id)
    now = now or timezone.now()
    payment = Payment.objects.select_related("credential").get(pk=payment_id)
    if payment.is_final:
        return payment
    unreachable = False
    try:
        result = payment_fetch_gateway_status(payment)
    except (GatewayError, ApplicationError) as exc:
        # Asked again on a later run (below): one line with the attempt and the reason.
        unreachable = isinstance(exc, GatewayUnavailable)
        logger.warning(
            "Reconciler could not get the status of payment %s on attempt %d: %s",
            payment.pk,
            payment.reconcile_attempts + 1,
            exc,
        )
    else:
        if result is not None:
            payment = payment_apply_status_result(payment_id=payment.pk, result=result, source=Source.POLL)
    if payment.is_final:
        return payment
    give_up_after = (
        settings.PAYMENT_LINK_GIVE_UP_SECONDS
        if payment.kind == Payment.Kind.PAYMENT_LINK
        else settings.PAYMENT_GIVE_UP_SECONDS
    )
    age = now - payment.created_at
    # Failing while IntaSend cannot be asked could fail a paid payment: ask again later (bounded).
    still_unknown = unreachable and age < timedelta(seconds=settings.PAYMENT_UNKNOWN_OUTCOME_MAX_SECONDS)
    if age >= timedelta(seconds=give_up_after) and not still_unknown:
        minutes = give_up_after // 60
        return payment_fail(
            payment_id=payment.pk,
            source=Source.POLL,
            reason=f"No final answer from IntaSend within {minutes} minutes; the payment was abandoned",
        )
    Payment.objects.filter(pk=payment.pk).update(
        reconcile_attempts=payment.reconcile_attempts + 1,
        next_reconcile_at=now + _reconcile_backoff(payment.reconcile_attempts),
    )
    return payment


def payments_due_for_reconciliation(*, now=None, limit: int = 200) -> list:
    """Ids of open IntaSend payments older than the reconcile age whose next check is due."""
    now = now or timezone.now()
    return list(
        Payment.objects.filter(
            status__in=[Status.PENDING, Status.PROCESSING],
            payment_provider=PaymentProvider.INTASEND,
            created_at__lte=now - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS),
        )
        .filter(Q(next_reconcile_at__isnull=True) | Q(next_reconcile_at__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- retryActivation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetriedActivation:
    activation: Activation
    payment: Payment | None  # the payment that bought it, if any


def activation_retry_for(
    *, operator: AbstractBaseUser, activation_id: object = None, payment_id: object = None
) -> RetriedActivation:
    """retryActivation: start a FAILED grant again, named by its own id (any source) or, as before, by
    the id of the payment that bought it. Exactly one of the two."""
    if (activation_id is None) == (payment_id is None):
        raise ApplicationError(
            ErrorCode.INVALID_INPUT, "Give either activationId or paymentId (one of them)", field="activationId"
        )
    if payment_id is not None:
        payment = payment_get_for(operator=operator, payment_id=payment_id)
        if payment.activation_id is None:
            raise ApplicationError(
                ErrorCode.ACTIVATION_NOT_RETRYABLE,
                "This payment has no router activation (it is not completed)",
                field="paymentId",
            )
        activation = activation_retry(operator=operator, activation_id=payment.activation_id, field="paymentId")
    else:
        activation = activation_retry(operator=operator, activation_id=activation_id)
    payment = (
        payments_for(operator).select_related("router", "package", "activation").filter(activation=activation).first()
    )
    return RetriedActivation(activation=activation, payment=payment)
