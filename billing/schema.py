"""GraphQL for operators, credentials and payments: thin resolvers over billing.services."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import strawberry
import strawberry_django
from django.conf import settings
from strawberry import auto
from strawberry_django.pagination import OffsetPaginated

from billing import models, selectors, services
from billing.input_rules import mask_phone, normalise_phone
from network.schema import ActivationType, PackageType, RouterType
from project.auth import issue_tokens, refresh_tokens, sign_out_everywhere
from project.errors import ApplicationError
from project.graphql_support import (
    IsOperator,
    IsOperatorOrPortal,
    NonNegativeOffset,
    UserError,
    client_ip_of,
    operator_principal,
    principal_of,
    request_of,
    without_database,
)
from project.signin import sign_in


@strawberry.enum
class PaymentStatus(enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@strawberry.enum
class PaymentProvider(enum.Enum):
    INTASEND = "INTASEND"
    KOPOKOPO = "KOPOKOPO"


@strawberry.enum
class CredentialEnvironment(enum.Enum):
    SANDBOX = "SANDBOX"
    LIVE = "LIVE"


@strawberry.type(name="Operator")
class OperatorType:
    id: strawberry.ID
    username: str
    public_key: str = strawberry.field(description="The captive portal's X-Public-Key")

    @classmethod
    def of(cls, user, public_key: str) -> OperatorType:
        return cls(id=strawberry.ID(str(user.pk)), username=user.get_username(), public_key=public_key)


@strawberry_django.type(models.PaymentCredential, name="PaymentCredential")
class PaymentCredentialType:
    id: auto
    api_key: auto
    is_active: auto
    created_at: auto

    @strawberry_django.field(only=["provider"])
    @without_database
    def provider(self) -> PaymentProvider:
        return PaymentProvider(self.provider)

    @strawberry_django.field(only=["environment"])
    @without_database
    def environment(self) -> CredentialEnvironment:
        return CredentialEnvironment(self.environment)

    @strawberry_django.field(only=["webhook_challenge_encrypted"])
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


@strawberry_django.type(models.Payment, name="Payment")
class PaymentType:
    id: uuid.UUID
    router: RouterType
    package: PackageType
    amount: Decimal
    currency: auto
    payment_method: auto
    package_expiry_time: auto
    completed_at: auto
    created_at: datetime
    updated_at: datetime
    paid_after_failure: bool = strawberry_django.field(
        description="IntaSend confirmed the money after the payment had FAILED: refund or give access by hand"
    )

    @strawberry_django.field(only=["phone_number"], description="Masked (2547******78) for portal callers")
    @without_database
    def phone_number(self, info: strawberry.Info) -> str:
        principal = principal_of(info)
        return self.phone_number if principal and principal.is_operator else mask_phone(self.phone_number)

    @strawberry_django.field(only=["payment_provider"])
    @without_database
    def payment_provider(self) -> PaymentProvider:
        return PaymentProvider(self.payment_provider)

    @strawberry_django.field(only=["status"])
    @without_database
    def status(self) -> PaymentStatus:
        return PaymentStatus(self.status)

    @strawberry_django.field(only=["intasend_payment_id"])
    @without_database
    def intasend_payment_id(self) -> str | None:
        return _blank_to_none(self.intasend_payment_id)

    @strawberry_django.field(only=["intasend_invoice_id"])
    @without_database
    def intasend_invoice_id(self) -> str | None:
        return _blank_to_none(self.intasend_invoice_id)

    @strawberry_django.field(only=["intasend_state"])
    @without_database
    def intasend_state(self) -> str | None:
        return _blank_to_none(self.intasend_state)

    @strawberry_django.field(only=["payment_url"])
    @without_database
    def payment_url(self) -> str | None:
        return _blank_to_none(self.payment_url)

    @strawberry_django.field(only=["failure_reason"])
    @without_database
    def failure_reason(self) -> str | None:
        return _blank_to_none(self.failure_reason)

    @strawberry_django.field(only=["mac_address"])
    @without_database
    def mac_address(self) -> str | None:
        return _blank_to_none(self.mac_address)

    @strawberry_django.field(only=["ip_address"])
    @without_database
    def ip_address(self) -> str | None:
        return self.ip_address

    @strawberry_django.field(
        description="Proves the payment is yours to public-key reads (payment, checkPaymentStatus, "
        "paymentUpdates): only in initiatePayment/createPaymentLink payloads, null everywhere else"
    )
    @without_database
    def client_secret(self) -> str | None:
        return self.client_secret if getattr(self, REVEAL_CLIENT_SECRET, False) else None

    # A plain relation: strawberry-django reads the select_related row without a thread hop, and
    # gives null for a payment without one.
    activation: ActivationType | None = strawberry_django.field(
        description="Router activation; null until the payment completes"
    )


# --- Payloads ---------------------------------------------------------------------------------


@strawberry.type
class TokenPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | None = strawberry.field(default=None, description="Access token lifetime, seconds")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeTokensPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AddPaymentCredentialInput:
    api_key: str
    private_key: str = strawberry.field(description="Write-only: stored encrypted, never returned")
    environment: CredentialEnvironment
    webhook_challenge: str | None = strawberry.field(
        default=None, description="Write-only: the challenge set in IntaSend's webhook settings"
    )
    provider: PaymentProvider = PaymentProvider.INTASEND


@strawberry.type
class AddPaymentCredentialPayload:
    credential: PaymentCredentialType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class PaymentInput:
    router_id: strawberry.ID
    package_id: strawberry.ID
    phone_number: str
    amount: Decimal
    payment_method: str = "mpesa"
    mac_address: str | None = None
    ip_address: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Same key + same input → the same payment, no second push"
    )
    renew_code: str | None = strawberry.field(
        default=None,
        description="An access code on this router to extend (same package only); otherwise a new code",
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


@strawberry.type
class StkPushInfo:
    payment_id: str | None
    invoice_id: str | None
    state: str | None
    message: str


@strawberry.type
class InitiatePaymentPayload:
    message: str | None = None
    payment: PaymentType | None = None
    intasend: StkPushInfo | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentLinkInfo:
    payment_url: str | None
    invoice_id: str | None
    state: str | None


@strawberry.type
class CreatePaymentLinkPayload:
    message: str | None = None
    payment: PaymentType | None = None
    intasend: PaymentLinkInfo | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentStatusDetails:
    amount: Decimal | None
    currency: str | None
    provider: str | None
    mpesa_reference: str | None


@strawberry.type
class CheckPaymentStatusPayload:
    message: str | None = None
    payment: PaymentType | None = None
    status: PaymentStatus | None = None
    state: str | None = None
    details: PaymentStatusDetails | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class PaymentFilter:
    status: PaymentStatus | None = None
    router_id: strawberry.ID | None = None
    phone_number: str | None = strawberry.field(default=None, description="Any usual Kenyan format")
    created_after: datetime | None = None
    created_before: datetime | None = None


# --- Resolvers --------------------------------------------------------------------------------


def _error_payload(payload_cls, error: ApplicationError, *, reveal_secret: bool = False):
    payment = _revealed(error.payment) if reveal_secret else error.payment
    return payload_cls(payment=payment, errors=[UserError.of(error)])


def _redirect_urls(info: strawberry.Info) -> services.RedirectUrls:
    request = request_of(info)

    def absolute(path: str) -> str:
        return request.build_absolute_uri(path) if request is not None else path

    return services.RedirectUrls(
        callback_url=settings.INTASEND_CALLBACK_URL or absolute("/payments/webhook/"),
        success_url_base=settings.INTASEND_SUCCESS_URL_BASE or absolute("/payment/success/"),
        fail_url_base=settings.INTASEND_FAIL_URL_BASE or absolute("/payment/failed/"),
    )


@strawberry.type
class BillingQuery:
    @strawberry_django.field(permission_classes=[IsOperator], description="The signed-in operator")
    def me(self, info: strawberry.Info) -> OperatorType:
        operator = operator_principal(info).operator
        return OperatorType.of(operator, services.operator_profile(operator=operator).public_key)

    @strawberry_django.field(permission_classes=[IsOperator], description="Stored gateway credentials (no secrets)")
    def payment_credentials(self, info: strawberry.Info) -> list[PaymentCredentialType]:
        return selectors.credentials_for(operator_principal(info).operator)  # type: ignore[return-value]

    @strawberry_django.field(
        permission_classes=[IsOperatorOrPortal],
        description="One payment, or null; a public-key caller must give its clientSecret",
    )
    def payment(self, info: strawberry.Info, id: uuid.UUID, client_secret: str | None = None) -> PaymentType | None:
        return selectors.payment_find_for_caller(  # type: ignore[return-value]
            principal=operator_principal(info), payment_id=id, client_secret=client_secret
        )

    @strawberry_django.offset_paginated(
        OffsetPaginated[PaymentType],
        permission_classes=[IsOperator],
        extensions=[NonNegativeOffset()],
        description="The operator's payments, newest first",
    )
    def payments(self, info: strawberry.Info, filters: PaymentFilter | None = None) -> list[PaymentType]:
        queryset = selectors.payments_for(operator_principal(info).operator).order_by("-created_at", "-id")
        if filters is None:
            return queryset  # type: ignore[return-value]
        if filters.status is not None:
            queryset = queryset.filter(status=filters.status.value)
        if filters.router_id is not None:
            queryset = queryset.filter(router_id=int(filters.router_id) if str(filters.router_id).isdigit() else 0)
        if filters.phone_number:
            try:
                queryset = queryset.filter(phone_number=normalise_phone(filters.phone_number))
            except ApplicationError:
                queryset = queryset.none()
        if filters.created_after is not None:
            queryset = queryset.filter(created_at__gte=filters.created_after)
        if filters.created_before is not None:
            queryset = queryset.filter(created_at__lt=filters.created_before)
        return queryset  # type: ignore[return-value]


@strawberry.type
class BillingMutation:
    @strawberry_django.mutation(description="Sign in: a short-lived access token and a refresh token")
    def token_auth(self, info: strawberry.Info, username: str, password: str) -> TokenPayload:
        try:
            user = sign_in(
                username=username, password=password, client_address=client_ip_of(info), request=request_of(info)
            )
            pair = issue_tokens(user)
        except ApplicationError as error:
            return TokenPayload(errors=[UserError.of(error)])
        return TokenPayload(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @strawberry_django.mutation(
        description="Trade a refresh token for a new pair, retiring it; reusing a retired one revokes its family"
    )
    def refresh_token(self, info: strawberry.Info, refresh_token: str) -> TokenPayload:
        try:
            pair = refresh_tokens(refresh_token)
        except ApplicationError as error:
            return TokenPayload(errors=[UserError.of(error)])
        return TokenPayload(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @strawberry_django.mutation(
        permission_classes=[IsOperator],
        description="Sign out everywhere: every refresh token revoked, access tokens refused from their next use",
    )
    def revoke_tokens(self, info: strawberry.Info) -> RevokeTokensPayload:
        sign_out_everywhere(operator_principal(info).operator)
        return RevokeTokensPayload()

    @strawberry_django.mutation(
        permission_classes=[IsOperator], description="New portal key; the old one stops at once"
    )
    def rotate_public_key(self, info: strawberry.Info) -> OperatorType:
        operator = operator_principal(info).operator
        profile = services.operator_rotate_public_key(operator=operator)
        return OperatorType.of(operator, profile.public_key)

    @strawberry_django.mutation(permission_classes=[IsOperator], description="Store IntaSend credentials, encrypted")
    def add_payment_credential(
        self, info: strawberry.Info, input: AddPaymentCredentialInput
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
            return AddPaymentCredentialPayload(errors=[UserError.of(error)])
        return AddPaymentCredentialPayload(credential=credential)  # type: ignore[arg-type]

    @strawberry_django.mutation(permission_classes=[IsOperatorOrPortal], description="Pay by M-Pesa STK push")
    def initiate_payment(self, info: strawberry.Info, input: PaymentInput) -> InitiatePaymentPayload:
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
        permission_classes=[IsOperatorOrPortal], description="Pay through an IntaSend checkout link"
    )
    def create_payment_link(self, info: strawberry.Info, input: PaymentInput) -> CreatePaymentLinkPayload:
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
        description="Ask IntaSend unless the payment is final; a public-key caller must give its clientSecret",
    )
    def check_payment_status(
        self, info: strawberry.Info, payment_id: uuid.UUID, client_secret: str | None = None
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

