"""Plain HTTP endpoints of billing (not GraphQL)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.models import Payment
from billing.selectors import payment_secret_matches
from billing.webhooks import webhook_receive
from project.client_address import client_address


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
    what the database knows. A bare payment id gets the status only (anyone may hold the link);
    the access code needs the payment's client secret in the URL, which we gave IntaSend as the
    payer's return address. IntaSend's failure text is for logs, never for this page."""
    payment = Payment.objects.select_related("package", "activation").filter(pk=payment_id).first()
    if payment is None:
        raise Http404("Unknown payment")
    access_code = None
    if payment_secret_matches(payment, request.GET.get("client_secret")):
        activation = getattr(payment, "activation", None)
        access_code = activation.access_code if activation is not None else None
    if payment.status == Payment.Status.COMPLETED:
        title, detail = "Payment received", "Thank you: your WiFi access is being set up."
    elif payment.status == Payment.Status.FAILED:
        title, detail = "Payment not completed", "The payment did not go through."
    elif outcome == "failed":
        title, detail = "Payment not completed", "The payment was cancelled or did not go through."
    else:
        title, detail = "Payment in progress", "We are waiting for the payment provider to confirm your payment."
    context = {"title": title, "detail": detail, "package": payment.package.name, "access_code": access_code}
    response = render(request, "billing/payment_result.html", context)
    # The URL may carry the client secret: keep it out of caches and other sites' Referer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
