"""Plain HTTP endpoints of billing (not GraphQL)."""

from __future__ import annotations

from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.models import DEFAULT_TIME_ZONE, OperatorProfile, Payment
from billing.selectors import payment_secret_matches
from billing.webhooks import webhook_receive
from network.models import Activation
from project.client_address import client_address
from project.i18n import render_for_customer

# The page runs no script and loads only its own stylesheet and icon.
RESULT_PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@csrf_exempt  # IntaSend posts server-to-server; the challenge and the status check authenticate it
@require_POST
def intasend_webhook(request: HttpRequest) -> JsonResponse:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    answer = webhook_receive(raw_body=body, remote_addr=client_address(request))
    return JsonResponse(answer.body, status=answer.http_status)


def payment_result(request: HttpRequest, payment_id, outcome: str) -> HttpResponse:
    """Where IntaSend's checkout sends the payer back. The redirect proves nothing: the page shows
    what the database knows, and refreshes itself while that may still change (the webhook often
    lands after the payer). A bare payment id gets the status only (anyone may hold the link); the
    access code and times need the payment's client secret in the URL, which we gave IntaSend as
    the payer's return address. IntaSend's failure text is for logs, never for this page."""
    payment = Payment.objects.select_related("package", "activation").filter(pk=payment_id).first()
    profile = OperatorProfile.objects.filter(user_id=payment.owner_id).first() if payment else None
    context = {"business_name": profile.business_name if profile else "", **_support_phone(profile)}
    language = profile.language if profile else None
    if payment is None:
        response = render_for_customer(
            request, "billing/payment_result.html", {**context, "state": "unknown"}, operator_language=language
        )
        response.status_code = 404
        return _private(response)
    holder = payment_secret_matches(payment, request.GET.get("client_secret"))
    activation = getattr(payment, "activation", None) if holder else None
    context |= {
        "state": _result_state(payment, outcome, holder, activation),
        "package": payment.package.name,
        "amount": payment.amount,
        "currency": payment.currency,
        # Links to this page in the other language keep the secret, and nothing else the URL carried.
        "secret_query": urlencode({"client_secret": payment.client_secret}) + "&" if holder else "",
    }
    if holder:
        context |= {"time_zone": _operator_zone(profile), "paid_at": payment.completed_at}
        if activation is not None:
            context["access_code"] = activation.access_code
            if activation.status == Activation.Status.ACTIVE:
                context["expires_at"] = activation.expires_at
    response = render_for_customer(request, "billing/payment_result.html", context, operator_language=language)
    return _private(response)


def _result_state(payment: Payment, outcome: str, holder: bool, activation: Activation | None) -> str:
    """What the template says; states ending in "waiting" refresh the page."""
    if payment.status == Payment.Status.FAILED or (outcome == "failed" and payment.status != Payment.Status.COMPLETED):
        return "failed" if payment.status == Payment.Status.FAILED else "cancelled"
    if payment.status != Payment.Status.COMPLETED:
        return "payment-waiting"
    if not holder:
        return "paid"
    if activation is None or not activation.access_code:
        return "setup-waiting"  # the grant is made right after the payment completes
    return {
        Activation.Status.ACTIVE: "connected",
        # The router has not confirmed yet: the code now, and the page turns to "connected" by itself.
        Activation.Status.PENDING: "slow-waiting",
        # Retried by itself once the router answers again (ACTIVATION_AUTO_RETRY_*).
        Activation.Status.FAILED: "slow",
        Activation.Status.EXPIRED: "expired",
        Activation.Status.REVOKED: "revoked",
    }.get(activation.status, "paid")


def _operator_zone(profile: OperatorProfile | None) -> ZoneInfo:
    try:
        return ZoneInfo(profile.time_zone if profile else DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):  # checked on save; a row edited by hand must not 500
        return ZoneInfo(DEFAULT_TIME_ZONE)


def _support_phone(profile: OperatorProfile | None) -> dict[str, str]:
    """2547XXXXXXXX (as stored) shown the way Kenyans write it, 0712 345 678, and dialled as +254…."""
    phone = profile.support_phone if profile else ""
    if not (len(phone) == 12 and phone.isdigit() and phone.startswith("254")):
        return {}
    local = phone[3:]
    return {"support_phone": f"0{local[:3]} {local[3:6]} {local[6:]}", "support_tel": f"+{phone}"}


def _private(response: HttpResponse) -> HttpResponse:
    # The URL may carry the client secret: keep it out of caches and other sites' Referer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Security-Policy"] = RESULT_PAGE_POLICY
    return response
