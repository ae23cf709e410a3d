"""Plain HTTP endpoints of billing (not GraphQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import segno
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from billing import vouchers
from billing.models import OperatorProfile, Payment, VoucherBatch
from billing.selectors import payment_secret_matches
from billing.webhooks import webhook_receive
from project.client_address import client_address
from project.i18n import render_for_customer


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


# No script, no other host: the sheet is inline SVG and one stylesheet. Nothing on it posts anywhere.
VOUCHER_SHEET_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@require_safe
async def voucher_sheet(request: HttpRequest, token: str) -> HttpResponse:
    """A batch's printable vouchers, behind a signed link valid 10 minutes (``VoucherBatch.printUrl``).

    An expired, tampered or unknown link gets the same short 404 page, whatever was wrong with it."""
    sheet = await sync_to_async(_sheet_of)(request, token)
    # A thousand QR codes are seconds of CPU: drawn and rendered off the one thread that every sync view
    # and ORM call shares (DESIGN.md "Async without starving the server"). Nothing there reads the database.
    response = await sync_to_async(_render_sheet, thread_sensitive=False)(request, sheet)
    # The link is the authority to print sellable codes: keep it out of caches and other sites' Referer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Security-Policy"] = VOUCHER_SHEET_POLICY
    response["X-Robots-Tag"] = "noindex"
    return response


@dataclass(frozen=True)
class _Sheet:
    context: dict[str, Any]
    language: str | None
    hotspot: str
    vouchers: list[tuple[str, str]]  # (code, status) in print order


def _sheet_of(request: HttpRequest, token: str) -> _Sheet | None:
    """Everything the sheet shows, read from the database; None for a link that names no batch."""
    batch_id = vouchers.sheet_batch_id(token)
    batch = VoucherBatch.objects.select_related("package", "router").filter(pk=batch_id).first() if batch_id else None
    if batch is None:
        return None
    profile = OperatorProfile.objects.filter(user_id=batch.owner_id).first()
    paper = request.GET.get("paper", "")
    paper = paper if paper in vouchers.PAPERS else vouchers.PAPERS[0]
    include_all = request.GET.get("all") == "1"
    package, price, now = batch.package, batch.price, timezone.now()
    days, rest = divmod(package.duration_minutes, 24 * 60)
    context = {
        "paper": paper,
        "include_all": include_all,
        "business_name": (profile.business_name if profile else "") or batch.router.name,
        "time_zone": profile.time_zone if profile else settings.TIME_ZONE,
        "package_name": package.name,
        "duration": {"days": days, "hours": rest // 60, "minutes": rest % 60},
        "devices": package.shared_users,
        "price": f"{price:.0f}" if price == price.to_integral_value() else f"{price:.2f}",
        "valid_until": batch.valid_until,
        "has_hotspot": bool(batch.router.hotspot_address),
        "stylesheets": [static("billing/voucher_sheet.css"), static(f"billing/voucher_sheet_{paper}.css")],
    }
    # The batch's own related manager: each voucher knows its batch (for status_at) without a query.
    printed = [(v.code, v.status_at(now)) for v in vouchers.sheet_vouchers(batch, include_all=include_all, now=now)]
    return _Sheet(
        context=context,
        language=profile.language if profile else None,
        hotspot=batch.router.hotspot_address,
        vouchers=printed,
    )


def _render_sheet(request: HttpRequest, sheet: _Sheet | None) -> HttpResponse:
    if sheet is None:
        response = render_for_customer(request, "billing/voucher_sheet_gone.html", {})
        response.status_code = 404
        return response
    cards = [
        {
            "code": vouchers.grouped(code),
            "status": status,
            # segno writes only path data and attributes (no inline style the policy would refuse).
            "qr": mark_safe(  # noqa: S308
                segno.make(vouchers.hotspot_login_url(sheet.hotspot, code), error="m").svg_inline(
                    border=2, omitsize=True
                )
            )
            if sheet.hotspot
            else "",
        }
        for code, status in sheet.vouchers
    ]
    return render_for_customer(
        request, "billing/voucher_sheet.html", {**sheet.context, "cards": cards}, operator_language=sheet.language
    )
