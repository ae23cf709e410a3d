"""GraphQL for operators, credentials and payments: thin resolvers over billing.services."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

import strawberry
import strawberry_django
from django.conf import settings
from graphql import GraphQLError
from strawberry import auto
from strawberry_django.pagination import OffsetPaginated, OffsetPaginationInfo, OffsetPaginationInput

from billing import models, selectors, services
from billing.access_schema import AccessMutation, AccessQuery
from billing.grant_schema import ManualGrantMutation
from billing.input_rules import mask_phone, normalise_phone
from billing.revenue_schema import RevenueQuery
from billing.voucher_schema import VoucherMutation, VoucherQuery
from network.schema import ActivationType, PackageType, RouterType
from project.auth import issue_tokens, refresh_tokens, tokens_revoke
from project.errors import ApplicationError, ErrorCode
from project.graphql_support import (
    IsOperator,
    IsOperatorOrPortal,
    UserError,
    ValidPagination,
    client_ip_of,
    operator_principal,
    principal_of,
    request_of,
    without_database,
)
from project.ids import as_pk
from project.signin import sign_in
from project.unset import given

PHONE_FORMATS = (
    "a Kenyan mobile number in any usual form: `0712345678`, `712345678`, `+254712345678`, `254712345678` "
    "or the `01…` range (spaces and dashes allowed)"
)
ERRORS_DESCRIPTION = (
    "Empty on success; otherwise one entry per problem (every invalid input field at once, each naming its `field`)"
)


@strawberry.enum(description="Where a payment stands. COMPLETED and FAILED are final: nothing moves a payment out")
class PaymentStatus(enum.Enum):
    PENDING = strawberry.enum_value(
        "PENDING",
        description="Recorded, not yet taken up by the gateway: an STK push being sent, or a checkout link not "
        "yet paid",
    )
    PROCESSING = strawberry.enum_value(
        "PROCESSING",
        description="The M-Pesa prompt is on the customer's phone, or IntaSend has not settled the payment yet",
    )
    COMPLETED = strawberry.enum_value(
        "COMPLETED", description="Paid: `completedAt` and `packageExpiryTime` are set and activation has started"
    )
    FAILED = strawberry.enum_value(
        "FAILED", description="Not paid (cancelled, timed out, refused by the gateway): see `failureReason`"
    )


@strawberry.enum(description="The payment gateway that handles a payment or holds a credential")
class PaymentProvider(enum.Enum):
    INTASEND = strawberry.enum_value("INTASEND", description="IntaSend (M-Pesa STK push and checkout links)")
    KOPOKOPO = strawberry.enum_value(
        "KOPOKOPO", description="Kopo Kopo: reserved, not supported yet (addPaymentCredential refuses it)"
    )


@strawberry.enum(description="Which IntaSend environment a credential's keys belong to")
class CredentialEnvironment(enum.Enum):
    SANDBOX = strawberry.enum_value("SANDBOX", description="IntaSend's test environment: no real money moves")
    LIVE = strawberry.enum_value("LIVE", description="IntaSend's production environment: real M-Pesa payments")


@strawberry.enum(description="A language the captive portal speaks to customers")
class Language(enum.Enum):
    EN = strawberry.enum_value("EN", description="English")
    SW = strawberry.enum_value("SW", description="Kiswahili")


_TIME_ZONE = "An IANA time zone name (e.g. `Africa/Nairobi`, the default)"


@strawberry.type(name="Operator", description="The signed-in operator (a hotspot business). Operators only")
class OperatorType:
    id: strawberry.ID = strawberry.field(description="The operator's stable id")
    username: str = strawberry.field(description="The name the operator signs in with (tokenAuth)")
    public_key: str = strawberry.field(
        description="The captive portal's `X-Public-Key` (32 lowercase hex characters). Not a secret: it sits in "
        "every router's login page. rotatePublicKey replaces it"
    )
    business_name: str = strawberry.field(
        description="The business name the portal shows customers in its header; empty when not set"
    )
    support_phone: str = strawberry.field(
        description="The number customers are told to call for help, normalised to `2547XXXXXXXX`/`2541XXXXXXXX`; "
        "empty when not set"
    )
    portal_message: str = strawberry.field(
        description="A short message (at most 280 characters, line breaks kept) the portal shows customers; empty "
        "when not set"
    )
    language: Language = strawberry.field(description="The portal's default language for customers")
    time_zone: str = strawberry.field(description=f"{_TIME_ZONE}: the one reports and times shown to customers are in")

    @classmethod
    def of(cls, user, profile: models.OperatorProfile) -> OperatorType:
        return cls(
            id=strawberry.ID(str(user.pk)),
            username=user.get_username(),
            public_key=profile.public_key,
            business_name=profile.business_name,
            support_phone=profile.support_phone,
            portal_message=profile.portal_message,
            language=Language(profile.language),
            time_zone=profile.time_zone,
        )


_KEEP_OR_CLEAR = "Left out: unchanged; empty or null: cleared"
_KEEP = "Left out: unchanged; null is refused (INVALID_INPUT)"


@strawberry.input(
    description="Changes to what the portal shows customers (updateOperatorProfile): only the fields sent change"
)
class UpdateOperatorProfileInput:
    business_name: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"The business name, at most 80 characters, no control characters. {_KEEP_OR_CLEAR}",
    )
    support_phone: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"The support line: {PHONE_FORMATS} (else INVALID_PHONE). {_KEEP_OR_CLEAR}",
    )
    portal_message: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A short message for customers, at most 280 characters; line breaks allowed, other control "
        f"characters refused. {_KEEP_OR_CLEAR}",
    )
    language: Language | None = strawberry.field(
        default=strawberry.UNSET, description=f"The portal's default language. {_KEEP}"
    )
    time_zone: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"{_TIME_ZONE}; an unknown name is INVALID_INPUT. {_KEEP}"
    )


@strawberry.type(description="updateOperatorProfile's result: the operator as now stored, or `errors` saying why not")
class UpdateOperatorProfilePayload:
    operator: OperatorType | None = strawberry.field(
        default=None, description="The operator after the change; null when refused (nothing changed)"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


@strawberry.type(name="PortalRouter", description="The router a portal serves, as its customers may see it")
class PortalRouterType:
    id: strawberry.ID = strawberry.field(description="The router's id (`Router.id`)")
    name: str = strawberry.field(description="The operator's name for the router")


@strawberry.type(description="What a captive portal shows in its header and help line: the calling operator's identity")
class PortalInfo:
    business_name: str = strawberry.field(description="The operator's business name; empty when not set")
    support_phone: str = strawberry.field(
        description="The support line customers may call, `2547XXXXXXXX`/`2541XXXXXXXX`; empty when not set"
    )
    portal_message: str = strawberry.field(
        description="The operator's short message for customers (may hold line breaks); empty when not set"
    )
    language: Language = strawberry.field(description="The portal's default language (the customer may switch)")
    time_zone: str = strawberry.field(description=f"{_TIME_ZONE}: show customers' times in it")
    router: PortalRouterType | None = strawberry.field(
        description="The router asked about; null when `routerId` was not given, is unknown or is not the caller's"
    )

    @classmethod
    def of(cls, info: services.PortalInfo) -> PortalInfo:
        profile, router = info.profile, info.router
        return cls(
            business_name=profile.business_name,
            support_phone=profile.support_phone,
            portal_message=profile.portal_message,
            language=Language(profile.language),
            time_zone=profile.time_zone,
            router=PortalRouterType(id=strawberry.ID(str(router.pk)), name=router.name) if router else None,
        )


@strawberry_django.type(
    models.PaymentCredential,
    name="PaymentCredential",
    description="An operator's stored gateway keys. Operators only; the private key and webhook challenge are "
    "write-only and never returned",
)
class PaymentCredentialType:
    id: auto = strawberry_django.field(description="The credential's stable id")
    api_key: auto = strawberry_django.field(description="IntaSend's public (publishable) key, as entered")
    is_active: auto = strawberry_django.field(
        description="Whether payments may use it; the newest active credential of a provider is the one used"
    )
    created_at: auto = strawberry_django.field(description="When it was added (ISO 8601, UTC)")
    verified_at: auto = strawberry_django.field(
        description="When IntaSend last accepted both keys (addPaymentCredential checks them first, "
        "verifyPaymentCredential again); null if it never has"
    )

    @strawberry_django.field(
        only=["last_verification_error"],
        description="Why the latest verifyPaymentCredential failed (our wording, never IntaSend's); null when "
        "it passed or never ran",
    )
    @without_database
    def last_verification_error(self) -> str | None:
        return self.last_verification_error or None

    @strawberry_django.field(only=["provider"], description="The gateway these keys are for")
    @without_database
    def provider(self) -> PaymentProvider:
        return PaymentProvider(self.provider)

    @strawberry_django.field(only=["environment"], description="SANDBOX (test money) or LIVE (real money)")
    @without_database
    def environment(self) -> CredentialEnvironment:
        return CredentialEnvironment(self.environment)

    @strawberry_django.field(
        only=["webhook_challenge_encrypted"],
        description="True when a webhook challenge is stored: webhooks whose challenge differs are refused. "
        "False: every webhook is only a hint, checked with IntaSend's status API",
    )
    @without_database
    def has_webhook_challenge(self) -> bool:
        return self.has_webhook_challenge


def _blank_to_none(value: str) -> str | None:
    return value or None


# Set on the one Payment instance a creating mutation hands back to its caller (see _revealed).
REVEAL_CLIENT_SECRET = "_reveal_client_secret"


def _revealed(payment: models.Payment | None) -> models.Payment | None:
    """The caller that created (or replayed the key of) this payment is the one to get its secret."""
    if payment is not None:
        setattr(payment, REVEAL_CLIENT_SECRET, True)
    return payment


@strawberry_django.type(
    models.Payment,
    name="Payment",
    description="A customer's payment for a package on a router. Operators see their own payments; a portal "
    "(X-Public-Key) caller sees one only in the initiatePayment/createPaymentLink payload that created it, or "
    "by giving its `clientSecret` (payment, checkPaymentStatus, paymentUpdates)",
)
class PaymentType:
    id: uuid.UUID = strawberry_django.field(
        description="The payment's stable id (a UUID); IntaSend knows it as `api_ref`"
    )
    router: RouterType = strawberry_django.field(description="The router (hotspot) the customer pays for access on")
    package: PackageType = strawberry_django.field(description="The package bought")
    amount: Decimal = strawberry_django.field(
        description='Amount charged, in `currency` (KES), as a decimal string (e.g. `"25.00"`); equals the '
        "package's price when the payment was made"
    )
    currency: auto = strawberry_django.field(description="ISO 4217 currency code: always `KES`")
    payment_method: auto = strawberry_django.field(
        description="`mpesa` (STK push or link) or `card` (checkout link only)"
    )
    package_expiry_time: auto = strawberry_django.field(
        description="When the bought time ends: `completedAt` + the package's duration (ISO 8601, UTC); null "
        "until COMPLETED"
    )
    completed_at: auto = strawberry_django.field(
        description="When the payment became COMPLETED (ISO 8601, UTC); null otherwise"
    )
    created_at: datetime = strawberry_django.field(description="When the payment was recorded (ISO 8601, UTC)")
    updated_at: datetime = strawberry_django.field(description="Last change of any field (ISO 8601, UTC)")
    paid_after_failure: bool = strawberry_django.field(
        description="IntaSend confirmed the money after the payment had FAILED: the customer paid but got no "
        "access. Refund them or give access by hand (operators watch for this)"
    )

    @strawberry_django.field(
        only=["phone_number"],
        description="The payer's phone, normalised to `2547XXXXXXXX`/`2541XXXXXXXX`. Operators see it whole; "
        "portal (X-Public-Key) callers see it masked, e.g. `2547******78`. Empty string for a checkout link "
        "made without a phone",
    )
    @without_database
    def phone_number(self, info: strawberry.Info) -> str:
        principal = principal_of(info)
        return self.phone_number if principal and principal.is_operator else mask_phone(self.phone_number)

    @strawberry_django.field(only=["payment_provider"], description="The gateway handling the payment")
    @without_database
    def payment_provider(self) -> PaymentProvider:
        return PaymentProvider(self.payment_provider)

    @strawberry_django.field(
        only=["status"],
        description="PENDING → PROCESSING → COMPLETED or FAILED; follow it with paymentUpdates or checkPaymentStatus",
    )
    @without_database
    def status(self) -> PaymentStatus:
        return PaymentStatus(self.status)

    @strawberry_django.field(
        only=["intasend_payment_id"],
        description="IntaSend's id for the STK push; null for checkout links and until IntaSend answered",
    )
    @without_database
    def intasend_payment_id(self) -> str | None:
        return _blank_to_none(self.intasend_payment_id)

    @strawberry_django.field(
        only=["intasend_invoice_id"], description="IntaSend's invoice id; null until IntaSend has issued one"
    )
    @without_database
    def intasend_invoice_id(self) -> str | None:
        return _blank_to_none(self.intasend_invoice_id)

    @strawberry_django.field(
        only=["intasend_state"],
        description="IntaSend's own last-reported state, verbatim (e.g. `PENDING`, `PROCESSING`, `COMPLETE`, "
        "`FAILED`); informative only, `status` is what to act on. Null until IntaSend reported one",
    )
    @without_database
    def intasend_state(self) -> str | None:
        return _blank_to_none(self.intasend_state)

    @strawberry_django.field(
        only=["payment_url"],
        description="The IntaSend checkout page to send the customer to (createPaymentLink); null for STK pushes",
    )
    @without_database
    def payment_url(self) -> str | None:
        return _blank_to_none(self.payment_url)

    @strawberry_django.field(
        only=["failure_reason"],
        description="Why the payment FAILED, a short human-readable reason (IntaSend's, e.g. the customer "
        "cancelled the prompt, or ours, e.g. IntaSend did not answer); null unless FAILED",
    )
    @without_database
    def failure_reason(self) -> str | None:
        return _blank_to_none(self.failure_reason)

    @strawberry_django.field(
        only=["mac_address"],
        description="The customer's device MAC as given in PaymentInput, normalised to `AA:BB:CC:DD:EE:FF`; "
        "null when none was given",
    )
    @without_database
    def mac_address(self) -> str | None:
        return _blank_to_none(self.mac_address)

    @strawberry_django.field(
        only=["ip_address"], description="The customer's device IP (v4 or v6) as given; null when none was given"
    )
    @without_database
    def ip_address(self) -> str | None:
        return self.ip_address

    @strawberry_django.field(
        only=["mpesa_reference"],
        description="M-Pesa's receipt number (e.g. `SGR7K3L2QX`), the one on the customer's confirmation SMS; "
        "set once M-Pesa took the money (COMPLETED, or FAILED with `paidAfterFailure`), null before",
    )
    @without_database
    def mpesa_receipt(self) -> str | None:
        return _blank_to_none(self.mpesa_reference)

    @strawberry_django.field(
        description="The secret that proves the payment is yours to portal (X-Public-Key) reads: pass it as "
        "`clientSecret` to payment, checkPaymentStatus and paymentUpdates. Returned only in the "
        "initiatePayment/createPaymentLink payload (or an idempotent replay of it), to that caller; null "
        "everywhere else, for operators too (they need none). Keep it like a password"
    )
    @without_database
    def client_secret(self) -> str | None:
        return self.client_secret if getattr(self, REVEAL_CLIENT_SECRET, False) else None

    # A plain relation: strawberry-django reads the select_related row without a thread hop, and
    # gives null for a payment without one.
    activation: ActivationType | None = strawberry_django.field(
        description="The router access this payment bought (its access code, state, expiry); null until the "
        "payment completes"
    )


# --- Payloads ---------------------------------------------------------------------------------


@strawberry.type(description="Result of tokenAuth and refreshToken: a token pair, or errors")
class TokenPayload:
    access_token: str | None = strawberry.field(
        default=None,
        description="Operator JWT: send as `Authorization: Bearer <accessToken>` (or in the WebSocket "
        "`connection_init` payload). Short-lived, see `expiresIn`; null when `errors` is not empty",
    )
    refresh_token: str | None = strawberry.field(
        default=None,
        description="Single-use: trade it with refreshToken for a new pair before it expires (7 days by "
        "default). Presenting one already used revokes every token of its family. Null when `errors` is not empty",
    )
    expires_in: int | None = strawberry.field(
        default=None,
        description="Access token lifetime in seconds from now (900 by default); null when `errors` is not empty",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Empty on success. AUTHENTICATION_FAILED: wrong username/password, or an invalid, expired or "
        "reused refresh token. RATE_LIMITED: too many failed sign-ins for this username from this address; "
        "wait and retry",
    )


@strawberry.type(description="Result of revokeTokens")
class RevokeTokensPayload:
    errors: list[UserError] = strawberry.field(default_factory=list, description="Always empty")


@strawberry.input(description="New IntaSend keys for addPaymentCredential")
class AddPaymentCredentialInput:
    api_key: str = strawberry.field(
        description="IntaSend's publishable key (`ISPubKey_…`); required, at most 255 characters"
    )
    private_key: str = strawberry.field(
        description="IntaSend's secret key (`ISSecretKey_…`); required, at most 1024 characters. Write-only: "
        "stored encrypted, never returned"
    )
    environment: CredentialEnvironment = strawberry.field(
        description="SANDBOX or LIVE: must match where IntaSend issued the keys"
    )
    webhook_challenge: str | None = strawberry.field(
        default=None,
        description="Optional. Write-only: the challenge set in IntaSend's webhook settings; with it, webhooks "
        "carrying another challenge are refused",
    )
    provider: PaymentProvider = strawberry.field(
        default=PaymentProvider.INTASEND, description="Only INTASEND is accepted (else INVALID_INPUT)"
    )


@strawberry.type(description="Result of addPaymentCredential")
class AddPaymentCredentialPayload:
    credential: PaymentCredentialType | None = strawberry.field(
        default=None, description="The stored credential (no secrets); null when `errors` is not empty"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


@strawberry.type(description="Result of verifyPaymentCredential")
class VerifyPaymentCredentialPayload:
    ok: bool = strawberry.field(
        default=False, description="True when IntaSend accepted both keys just now (`verifiedAt` was stamped)"
    )
    error: UserError | None = strawberry.field(
        default=None,
        description="Why the check failed (also kept in `lastVerificationError`): INVALID_CREDENTIALS naming the "
        "refused key's field (apiKey, privateKey), GATEWAY_UNAVAILABLE (IntaSend could not tell: try again), "
        "DECRYPTION_FAILED (add the keys again). Null when `ok`, or when nothing was checked (see `errors`)",
    )
    credential: PaymentCredentialType | None = strawberry.field(
        default=None, description="The credential as stored after the check; null when nothing was checked"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Why nothing was checked: INVALID_INPUT on `id` (unknown, deleted or not the operator's), "
        "RATE_LIMITED",
    )


@strawberry.type(description="Result of setPaymentCredentialActive and deletePaymentCredential")
class PaymentCredentialPayload:
    credential: PaymentCredentialType | None = strawberry.field(
        default=None, description="The credential as now stored; null when `errors` is not empty"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="INVALID_INPUT on `id` when the credential is unknown, already deleted or not the operator's",
    )


CredentialId = Annotated[strawberry.ID, strawberry.argument(description="The credential's id (`PaymentCredential.id`)")]


@strawberry.input(description="What a customer pays for, for initiatePayment and createPaymentLink")
class PaymentInput:
    router_id: strawberry.ID = strawberry.field(
        description="The router (Router.id) the customer is on; must belong to the caller (else ROUTER_NOT_FOUND)"
    )
    package_id: strawberry.ID = strawberry.field(
        description="An active package on that router (Package.id), else PACKAGE_NOT_FOUND"
    )
    phone_number: str = strawberry.field(
        description=f"The M-Pesa number to charge: {PHONE_FORMATS}; else INVALID_PHONE. Stored as "
        "`2547XXXXXXXX`. Required for initiatePayment; may be empty for createPaymentLink"
    )
    amount: Decimal = strawberry.field(
        description="In KES, exactly the package's price (`25`, `25.0` and `25.00` are the same); else AMOUNT_MISMATCH"
    )
    payment_method: str = strawberry.field(
        default="mpesa",
        description="`mpesa` (default); createPaymentLink also accepts `card`. Anything else: INVALID_INPUT",
    )
    mac_address: str | None = strawberry.field(
        default=None,
        description="The device's MAC as the hotspot gives it: `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` or "
        "`AABBCCDDEEFF`; optional, else INVALID_MAC",
    )
    ip_address: str | None = strawberry.field(
        default=None, description="The device's IPv4 or IPv6 address as the hotspot gives it; optional, else INVALID_IP"
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional; send one to retry safely. Same key + same input → the same payment (with its "
        "clientSecret), no second push; same key + different input → IDEMPOTENCY_MISMATCH. At most 128 "
        "characters; from X-Public-Key callers at least 32 random characters (e.g. a UUID4 without dashes), "
        "else INVALID_INPUT",
    )
    renew_code: str | None = strawberry.field(
        default=None,
        description="Optional: an ACTIVE access code on this router to extend, when buying the same package "
        "again (else CODE_INVALID). Without it the payment makes a new grant with its own code",
    )

    def to_request(self) -> services.PaymentRequest:
        return services.PaymentRequest(
            router_id=self.router_id,
            package_id=self.package_id,
            phone_number=self.phone_number,
            amount=self.amount,
            payment_method=self.payment_method,
            mac_address=self.mac_address,
            ip_address=self.ip_address,
            idempotency_key=self.idempotency_key,
            renew_code=self.renew_code,
        )


@strawberry.type(description="What IntaSend answered to the STK push")
class StkPushInfo:
    payment_id: str | None = strawberry.field(description="IntaSend's id for the push (Payment.intasendPaymentId)")
    invoice_id: str | None = strawberry.field(description="IntaSend's invoice id (Payment.intasendInvoiceId)")
    state: str | None = strawberry.field(description="IntaSend's state, verbatim (Payment.intasendState)")
    message: str = strawberry.field(description="`STK push sent successfully`")


@strawberry.type(description="Result of initiatePayment")
class InitiatePaymentPayload:
    message: str | None = strawberry.field(
        default=None, description="`STK push initiated successfully`; null when `errors` is not empty"
    )
    payment: PaymentType | None = strawberry.field(
        default=None,
        description="The new payment (PROCESSING), with its `clientSecret`. Also given with GATEWAY_ERROR "
        "(FAILED) and GATEWAY_UNAVAILABLE (may still be PROCESSING: keep following it); null with other errors",
    )
    intasend: StkPushInfo | None = strawberry.field(
        default=None, description="IntaSend's answer; null when `errors` is not empty"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


@strawberry.type(description="IntaSend's checkout for createPaymentLink")
class PaymentLinkInfo:
    payment_url: str | None = strawberry.field(
        description="The checkout page to open for the customer (Payment.paymentUrl)"
    )
    invoice_id: str | None = strawberry.field(description="IntaSend's invoice id, once it has one")
    state: str | None = strawberry.field(description="IntaSend's state, verbatim")


@strawberry.type(description="Result of createPaymentLink")
class CreatePaymentLinkPayload:
    message: str | None = strawberry.field(
        default=None, description="`Payment link created successfully`; null when `errors` is not empty"
    )
    payment: PaymentType | None = strawberry.field(
        default=None,
        description="The new payment (PENDING), with its `clientSecret`. Also given (FAILED) with GATEWAY_ERROR "
        "and GATEWAY_UNAVAILABLE; null with other errors",
    )
    intasend: PaymentLinkInfo | None = strawberry.field(
        default=None, description="The checkout to send the customer to; null when `errors` is not empty"
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


@strawberry.type(description="Amounts as the gateway reported them, else as recorded")
class PaymentStatusDetails:
    amount: Decimal | None = strawberry.field(description="In `currency` (KES), as a decimal string")
    currency: str | None = strawberry.field(description="ISO 4217 code, `KES`")
    provider: str | None = strawberry.field(
        description="The mobile-money provider IntaSend reported (e.g. `M-PESA`); null when answered from the database"
    )
    mpesa_reference: str | None = strawberry.field(
        description="M-Pesa's receipt number (as Payment.mpesaReceipt); null until M-Pesa took the money"
    )


@strawberry.type(description="Result of checkPaymentStatus")
class CheckPaymentStatusPayload:
    message: str | None = strawberry.field(
        default=None,
        description="`Payment completed successfully!` once COMPLETED, else `Payment status checked "
        "successfully`; null when `errors` is not empty",
    )
    payment: PaymentType | None = strawberry.field(
        default=None,
        description="The payment after the check (no `clientSecret`); also given with GATEWAY_ERROR and "
        "GATEWAY_UNAVAILABLE (as last known)",
    )
    status: PaymentStatus | None = strawberry.field(
        default=None, description="Payment.status after the check; null when `errors` is not empty"
    )
    state: str | None = strawberry.field(
        default=None, description="IntaSend's state, verbatim (Payment.intasendState); null when it has none"
    )
    details: PaymentStatusDetails | None = strawberry.field(
        default=None, description="Amount and receipt; null when `errors` is not empty"
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Empty on success. PAYMENT_NOT_FOUND: no such payment, not the caller's, or (X-Public-Key) "
        "a missing or wrong clientSecret. NOT_INTASEND_PAYMENT, RATE_LIMITED (X-Public-Key callers, per "
        "payment), NO_CREDENTIALS, GATEWAY_ERROR, GATEWAY_UNAVAILABLE",
    )


@strawberry.input(description="Narrows `payments`; every given condition must hold")
class PaymentFilter:
    status: PaymentStatus | None = strawberry.field(default=None, description="Only payments in this status")
    router_id: strawberry.ID | None = strawberry.field(default=None, description="Only this router's (Router.id)")
    phone_number: str | None = strawberry.field(
        default=None, description=f"Only this payer's: {PHONE_FORMATS}; an invalid number matches nothing"
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Only payments created at or after this instant (ISO 8601 with offset)"
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Only payments created strictly before this instant (ISO 8601 with offset)"
    )


NodeType = TypeVar("NodeType")


# Named like strawberry-django's own type, so `OffsetPaginated[PaymentType]` keeps its GraphQL name
# (`PaymentOffsetPaginated`) while gaining descriptions.
@strawberry.type(
    name="OffsetPaginated",
    description="One page of results, in order, with `totalCount` of everything that matches the filters",
)
class DescribedOffsetPaginated(OffsetPaginated[NodeType], Generic[NodeType]):
    @strawberry.field(description="The offset and limit this page was read with (limit 20 when not given, at most 100)")
    def page_info(self) -> OffsetPaginationInfo:
        return OffsetPaginated.page_info(self)


# --- Resolvers --------------------------------------------------------------------------------


def _as_utc(instant: datetime, name: str) -> datetime:
    """The database compares in UTC: `9999-12-31T23:59:59-23:59` has no UTC form (it overflowed
    inside the query as an INTERNAL error)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)  # no offset given: read as UTC
    try:
        return instant.astimezone(UTC)
    except (OverflowError, ValueError):  # Python says either, by which end of the calendar
        raise GraphQLError(
            f"filters.{name} is out of range", extensions={"code": ErrorCode.INVALID_INPUT.value}
        ) from None


def _error_payload(payload_cls, error: ApplicationError, *, reveal_secret: bool = False):
    payment = _revealed(error.payment) if reveal_secret else error.payment
    return payload_cls(payment=payment, errors=UserError.list_of(error))


def _redirect_urls(info: strawberry.Info) -> services.RedirectUrls:
    request = request_of(info)

    def absolute(path: str) -> str:
        return request.build_absolute_uri(path) if request is not None else path

    return services.RedirectUrls(
        callback_url=settings.INTASEND_CALLBACK_URL or absolute("/payments/webhook/"),
        success_url_base=settings.INTASEND_SUCCESS_URL_BASE or absolute("/payment/success/"),
        fail_url_base=settings.INTASEND_FAIL_URL_BASE or absolute("/payment/failed/"),
    )


PaymentId = Annotated[uuid.UUID, strawberry.argument(description="The payment's id (Payment.id, a UUID)")]
ClientSecret = Annotated[
    str | None,
    strawberry.argument(
        description="The payment's `clientSecret` from initiatePayment/createPaymentLink. Required of X-Public-Key "
        "callers (absent or wrong reads as a missing payment); operators omit it"
    ),
]


@strawberry.type(
    description="retryActivation's result: the restarted activation and the payment that bought it, or `errors`"
)
class RetryActivationPayload:
    activation: ActivationType | None = strawberry.field(
        default=None, description="The activation, PENDING again (or already ACTIVE); null when refused"
    )
    payment: PaymentType | None = strawberry.field(
        default=None,
        description="The payment that bought the activation, its `activation` restarted; null when refused and "
        "for grants of another source",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="ACTIVATION_NOT_FOUND, PAYMENT_NOT_FOUND, ACTIVATION_NOT_RETRYABLE or INVALID_INPUT (neither "
        "or both ids given); empty on success",
    )


@strawberry.type
class BillingQuery(AccessQuery, VoucherQuery, RevenueQuery):
    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="The signed-in operator, with the portal's public key and what the portal shows customers. "
        "Operator JWT only (else UNAUTHENTICATED)",
    )
    def me(self, info: strawberry.Info) -> OperatorType:
        operator = operator_principal(info).operator
        return OperatorType.of(operator, services.operator_profile(operator=operator))

    @strawberry_django.field(
        permission_classes=[IsOperatorOrPortal],
        description="X-Public-Key (or an operator JWT, to preview): the operator's business name, support line, "
        "message and language for the portal's header and help line. Never an error for the router: `router` is "
        "null when it is absent, unknown or not the caller's. Allowed over GET with X-Public-Key, and cacheable",
    )
    def portal_info(
        self,
        info: strawberry.Info,
        router_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The router the portal serves (`Router.id`); optional"),
        ] = None,
    ) -> PortalInfo:
        return PortalInfo.of(services.portal_info(operator=operator_principal(info).operator, router_id=router_id))

    @strawberry_django.field(
        permission_classes=[IsOperator],
        description="The operator's stored gateway credentials, active or not, deleted ones left out (no "
        "secrets). Operator JWT only",
    )
    def payment_credentials(self, info: strawberry.Info) -> list[PaymentCredentialType]:
        return selectors.credentials_for(operator_principal(info).operator)  # type: ignore[return-value]

    @strawberry_django.field(
        permission_classes=[IsOperatorOrPortal],
        description="One payment, or null when it does not exist or is not the caller's. Operator JWT: any of "
        "the operator's payments. X-Public-Key: only with the payment's `clientSecret` (else null). Poll it, "
        "or better subscribe to paymentUpdates",
    )
    def payment(self, info: strawberry.Info, id: PaymentId, client_secret: ClientSecret = None) -> PaymentType | None:
        return selectors.payment_find_for_caller(  # type: ignore[return-value]
            principal=operator_principal(info), payment_id=id, client_secret=client_secret
        )

    @strawberry_django.offset_paginated(
        DescribedOffsetPaginated[PaymentType],
        permission_classes=[IsOperator],
        extensions=[ValidPagination()],
        description="The operator's payments, newest first, optionally filtered; offset pagination. Operator JWT only",
    )
    def payments(
        self,
        info: strawberry.Info,
        filters: Annotated[
            PaymentFilter | None, strawberry.argument(description="Conditions to narrow the list; null for all")
        ] = None,
        # Declared only to describe it: strawberry-django applies it to the returned queryset.
        pagination: Annotated[
            OffsetPaginationInput | None,
            strawberry.argument(
                description="`offset` (rows to skip, ≥ 0) and `limit` (page size: 20 when not given, at most 100)"
            ),
        ] = None,
    ) -> list[PaymentType]:
        queryset = selectors.payments_for(operator_principal(info).operator).order_by("-created_at", "-id")
        if filters is None:
            return queryset  # type: ignore[return-value]
        if filters.status is not None:
            queryset = queryset.filter(status=filters.status.value)
        if filters.router_id is not None:
            queryset = queryset.filter(router_id=as_pk(filters.router_id) or 0)
        if filters.phone_number:
            try:
                queryset = queryset.filter(phone_number=normalise_phone(filters.phone_number))
            except ApplicationError:
                queryset = queryset.none()
        if filters.created_after is not None:
            queryset = queryset.filter(created_at__gte=_as_utc(filters.created_after, "createdAfter"))
        if filters.created_before is not None:
            queryset = queryset.filter(created_at__lt=_as_utc(filters.created_before, "createdBefore"))
        return queryset  # type: ignore[return-value]


@strawberry.type
class BillingMutation(AccessMutation, VoucherMutation, ManualGrantMutation):
    @strawberry_django.mutation(
        description="Sign in as an operator: a short-lived access token and a refresh token. No credentials "
        "needed. Failed attempts are throttled per username and client address with a growing delay "
        "(RATE_LIMITED); wrong username or password: AUTHENTICATION_FAILED"
    )
    def token_auth(
        self,
        info: strawberry.Info,
        username: Annotated[str, strawberry.argument(description="The operator's username")],
        password: Annotated[str, strawberry.argument(description="The operator's password")],
    ) -> TokenPayload:
        try:
            user = sign_in(
                username=username, password=password, client_address=client_ip_of(info), request=request_of(info)
            )
            pair = issue_tokens(user)
        except ApplicationError as error:
            return TokenPayload(errors=UserError.list_of(error))
        return TokenPayload(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @strawberry_django.mutation(
        description="Trade a refresh token for a new pair, retiring it; presenting a retired one again revokes "
        "its whole family (theft detection): AUTHENTICATION_FAILED, sign in again. No credentials needed"
    )
    def refresh_token(
        self,
        info: strawberry.Info,
        refresh_token: Annotated[
            str, strawberry.argument(description="The `refreshToken` from tokenAuth or the last refreshToken")
        ],
    ) -> TokenPayload:
        try:
            pair = refresh_tokens(refresh_token)
        except ApplicationError as error:
            return TokenPayload(errors=UserError.list_of(error))
        return TokenPayload(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Sign out everywhere: every refresh token revoked, access tokens refused from their next "
        "use, the operator's open WebSocket subscriptions closed. Operator JWT only",
    )
    def revoke_tokens(self, info: strawberry.Info) -> RevokeTokensPayload:
        tokens_revoke(operator=operator_principal(info).operator)
        return RevokeTokensPayload()

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Issue a new portal `X-Public-Key`; the old one stops at once (its open sockets closed), so "
        "update every router's login page. Operator JWT only",
    )
    def rotate_public_key(self, info: strawberry.Info) -> OperatorType:
        operator = operator_principal(info).operator
        profile = services.operator_rotate_public_key(operator=operator)
        return OperatorType.of(operator, profile)

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Change what the captive portal shows customers (business name, support line, message, "
        "default language, time zone); only the fields sent change. Operator JWT only. Errors, every invalid "
        "field at once: INVALID_INPUT (too long, control characters, unknown time zone, null language or time "
        "zone), INVALID_PHONE (supportPhone)",
    )
    def update_operator_profile(
        self,
        info: strawberry.Info,
        input: Annotated[UpdateOperatorProfileInput, strawberry.argument(description="The fields to change")],
    ) -> UpdateOperatorProfilePayload:
        operator = operator_principal(info).operator
        language = input.language
        try:
            profile = services.operator_profile_update(
                operator=operator,
                data=services.OperatorProfileUpdate(
                    business_name=given(input.business_name),
                    support_phone=given(input.support_phone),
                    portal_message=given(input.portal_message),
                    language=given(language.value if isinstance(language, Language) else language),
                    time_zone=given(input.time_zone),
                ),
            )
        except ApplicationError as error:
            return UpdateOperatorProfilePayload(errors=UserError.list_of(error))
        return UpdateOperatorProfilePayload(operator=OperatorType.of(operator, profile))

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Store IntaSend keys, encrypted, once IntaSend has accepted both (calls that move no money: "
        "the secret key lists the account's wallets, the publishable key looks up a status); the newest active "
        "credential is the one payments use. Operator JWT only. Errors, nothing stored: INVALID_INPUT (missing "
        "or too long key, provider other than INTASEND), INVALID_CREDENTIALS on apiKey and/or privateKey "
        "(IntaSend refused that key), GATEWAY_UNAVAILABLE (IntaSend could not be asked: try again), "
        "RATE_LIMITED (too many key checks in a minute)",
    )
    def add_payment_credential(
        self,
        info: strawberry.Info,
        input: Annotated[AddPaymentCredentialInput, strawberry.argument(description="The keys to store")],
    ) -> AddPaymentCredentialPayload:
        try:
            credential = services.credential_add(
                operator=operator_principal(info).operator,
                data=services.CredentialInput(
                    api_key=input.api_key,
                    private_key=input.private_key,
                    environment=input.environment.value,
                    webhook_challenge=input.webhook_challenge,
                    provider=input.provider.value,
                ),
            )
        except ApplicationError as error:
            return AddPaymentCredentialPayload(errors=UserError.list_of(error))
        return AddPaymentCredentialPayload(credential=credential)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Ask IntaSend whether a stored credential's keys still work (the same calls as "
        "addPaymentCredential, moving no money): stamps `verifiedAt`, or keeps the failure in "
        "`lastVerificationError`. A failed check deactivates nothing. Operator JWT only; RATE_LIMITED past "
        "a few checks a minute",
    )
    def verify_payment_credential(self, info: strawberry.Info, id: CredentialId) -> VerifyPaymentCredentialPayload:
        try:
            check = services.credential_verify(operator=operator_principal(info).operator, credential_id=id)
        except ApplicationError as error:
            return VerifyPaymentCredentialPayload(errors=UserError.list_of(error))
        return VerifyPaymentCredentialPayload(
            ok=check.ok,
            error=UserError.of(check.error) if check.error else None,
            credential=check.credential,  # type: ignore[arg-type]
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Switch a credential on or off without the admin; the newest active one is what new "
        "payments use. Payments already made with it keep it (webhooks, status checks). Operator JWT only",
    )
    def set_payment_credential_active(
        self,
        info: strawberry.Info,
        id: CredentialId,
        is_active: Annotated[
            bool, strawberry.argument(description="True: new payments may use it; false: they may not")
        ],
    ) -> PaymentCredentialPayload:
        try:
            credential = services.credential_set_active(
                operator=operator_principal(info).operator, credential_id=id, is_active=is_active
            )
        except ApplicationError as error:
            return PaymentCredentialPayload(errors=UserError.list_of(error))
        return PaymentCredentialPayload(credential=credential)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Delete a credential: no new payment uses it from this moment and paymentCredentials no "
        "longer lists it, but it is kept (encrypted) for the payments made with it, so their webhooks, status "
        "checks and the reconciler still work and they stay readable. Operator JWT only",
    )
    def delete_payment_credential(self, info: strawberry.Info, id: CredentialId) -> PaymentCredentialPayload:
        try:
            credential = services.credential_delete(operator=operator_principal(info).operator, credential_id=id)
        except ApplicationError as error:
            return PaymentCredentialPayload(errors=UserError.list_of(error))
        return PaymentCredentialPayload(credential=credential)  # type: ignore[arg-type]

    @strawberry_django.mutation(
        permission_classes=[IsOperatorOrPortal],
        description="Pay by M-Pesa STK push: validates, records the payment, then sends the prompt to "
        "`phoneNumber` with the operator's newest active IntaSend credential. Operator JWT or X-Public-Key. "
        "On success the payment is PROCESSING; keep `payment.clientSecret` and follow it with paymentUpdates "
        "(or checkPaymentStatus). Validation errors, nothing sent: ROUTER_NOT_FOUND, PACKAGE_NOT_FOUND, "
        "INVALID_PHONE, AMOUNT_MISMATCH, INVALID_MAC, INVALID_IP, INVALID_INPUT, CODE_INVALID (renewCode), "
        "NO_CREDENTIALS, DECRYPTION_FAILED, IDEMPOTENCY_MISMATCH. PAYMENT_ALREADY_PENDING: a push to this "
        "phone on this router is still in progress (no payment given). RATE_LIMITED: X-Public-Key callers, "
        "per phone and per client address. GATEWAY_ERROR (IntaSend refused; the payment, FAILED, is given) or "
        "GATEWAY_UNAVAILABLE (no answer; the payment is given and may still complete)",
    )
    def initiate_payment(
        self,
        info: strawberry.Info,
        input: Annotated[PaymentInput, strawberry.argument(description="What to charge, to whom, for what")],
    ) -> InitiatePaymentPayload:
        try:
            payment = services.payment_initiate(
                principal=operator_principal(info), request=input.to_request(), client_ip=client_ip_of(info)
            )
        except ApplicationError as error:
            return _error_payload(InitiatePaymentPayload, error, reveal_secret=True)
        return InitiatePaymentPayload(
            message="STK push initiated successfully",
            payment=_revealed(payment),  # type: ignore[arg-type]
            intasend=StkPushInfo(
                payment_id=payment.intasend_payment_id or None,
                invoice_id=payment.intasend_invoice_id or None,
                state=payment.intasend_state or None,
                message="STK push sent successfully",
            ),
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperatorOrPortal],
        description="Pay through an IntaSend checkout page (M-Pesa or card): records the payment (PENDING) and "
        "returns the page to open (`intasend.paymentUrl`). After paying, IntaSend sends the browser back to "
        "this server's success or failure page. Operator JWT or X-Public-Key. Same input, validation and "
        "errors as initiatePayment, except that `phoneNumber` may be empty, `paymentMethod` may be `card` and "
        "there is no PAYMENT_ALREADY_PENDING",
    )
    def create_payment_link(
        self,
        info: strawberry.Info,
        input: Annotated[PaymentInput, strawberry.argument(description="What to charge, for what")],
    ) -> CreatePaymentLinkPayload:
        try:
            payment = services.payment_link_create(
                principal=operator_principal(info),
                request=input.to_request(),
                urls=_redirect_urls(info),
                client_ip=client_ip_of(info),
            )
        except ApplicationError as error:
            return _error_payload(CreatePaymentLinkPayload, error, reveal_secret=True)
        return CreatePaymentLinkPayload(
            message="Payment link created successfully",
            payment=_revealed(payment),  # type: ignore[arg-type]
            intasend=PaymentLinkInfo(
                payment_url=payment.payment_url or None,
                invoice_id=payment.intasend_invoice_id or None,
                state=payment.intasend_state or None,
            ),
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperatorOrPortal],
        description="Bring a payment up to date: a COMPLETED or FAILED payment is answered from the database; "
        "otherwise IntaSend is asked and its answer applied. Operator JWT, or X-Public-Key with the payment's "
        "`clientSecret` (public-key calls are throttled per payment and share one IntaSend answer for a few "
        "seconds). Prefer paymentUpdates for live progress",
    )
    def check_payment_status(
        self, info: strawberry.Info, payment_id: PaymentId, client_secret: ClientSecret = None
    ) -> CheckPaymentStatusPayload:
        try:
            check = services.payment_check_status(
                principal=operator_principal(info),
                payment_id=payment_id,
                client_secret=client_secret,
                client_ip=client_ip_of(info),
            )
        except ApplicationError as error:
            return _error_payload(CheckPaymentStatusPayload, error)
        payment, gateway = check.payment, check.gateway_status
        completed = payment.status == models.Payment.Status.COMPLETED
        return CheckPaymentStatusPayload(
            message="Payment completed successfully!" if completed else "Payment status checked successfully",
            payment=payment,  # type: ignore[arg-type]
            status=PaymentStatus(payment.status),
            state=payment.intasend_state or None,
            details=PaymentStatusDetails(
                amount=gateway.amount if gateway and gateway.amount is not None else payment.amount,
                currency=(gateway.currency if gateway else None) or payment.currency,
                provider=gateway.provider if gateway else None,
                mpesa_reference=payment.mpesa_reference or (gateway.mpesa_reference if gateway else None),
            ),
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Operator JWT only. Start a FAILED activation again, of any source (a fresh job with all its "
        "retries); name it by `activationId`, or by the `paymentId` of the payment that bought it. Errors: "
        "ACTIVATION_NOT_FOUND, PAYMENT_NOT_FOUND, ACTIVATION_NOT_RETRYABLE, INVALID_INPUT",
    )
    def retry_activation(
        self,
        info: strawberry.Info,
        activation_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The activation that failed (`Activation.id`); or give `paymentId`"),
        ] = None,
        payment_id: Annotated[
            uuid.UUID | None,
            strawberry.argument(
                description="The payment whose activation failed (`Payment.id`); or give `activationId`"
            ),
        ] = None,
    ) -> RetryActivationPayload:
        try:
            retried = services.activation_retry_for(
                operator=operator_principal(info).operator, activation_id=activation_id, payment_id=payment_id
            )
        except ApplicationError as error:
            return RetryActivationPayload(errors=UserError.list_of(error))
        return RetryActivationPayload(activation=retried.activation, payment=retried.payment)  # type: ignore[arg-type]
