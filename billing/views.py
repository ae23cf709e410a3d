"""Plain HTTP endpoints of billing (not GraphQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import segno
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from billing import revenue, vouchers
from billing.models import OperatorProfile, Payment, VoucherBatch
from billing.selectors import payment_secret_matches
from billing.webhooks import webhook_receive
from network.models import Activation
from project.client_address import client_address
from project.db_threads import webhook_write
from project.i18n import render_for_customer
from project.page_policy import NO_SCRIPT_PAGE_POLICY


@csrf_exempt  # IntaSend posts server-to-server; the challenge and the status check authenticate it
@require_POST
async def intasend_webhook(request: HttpRequest) -> JsonResponse:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    answer = await webhook_write(webhook_receive)(raw_body=body, remote_addr=client_address(request))
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
        context |= {"time_zone": OperatorProfile.zone_of(profile), "paid_at": payment.completed_at}
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
    response["Content-Security-Policy"] = NO_SCRIPT_PAGE_POLICY
    return response


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
    response["Content-Security-Policy"] = NO_SCRIPT_PAGE_POLICY
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
        "time_zone": OperatorProfile.zone_of(profile),
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


@require_safe
async def revenue_csv(request: HttpRequest, token: str) -> HttpResponse:
    """One revenue report's rows as CSV, behind a signed link valid 10 minutes (revenueReportCsvUrl).

    A bad, expired or orphaned link gets the same short 404, whatever was wrong with it."""
    answer = await sync_to_async(revenue.csv_for_token)(token)
    if answer is None:
        response = HttpResponse("This link is invalid or has expired.", status=404, content_type="text/plain")
    else:
        filename, text = answer
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The link is the authority to read the operator's money: keep it out of caches and other sites' Referer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response
