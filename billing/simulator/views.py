"""The simulators' pages and IntaSend's API, served by the app under ``/simulator/``.

Only routed when SIMULATORS_ENABLED (project.urls), and every view checks again, so switching the
setting off in a running process (tests) also turns them into 404s.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.input_rules import normalise_phone
from billing.simulator import runtime
from billing.simulator.api import API_PREFIX
from billing.simulator.ledger import FINAL_STATES
from project.errors import ApplicationError
from project.simulators import simulators_on


@simulators_on
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "simulator/index.html",
        {
            "api_base_url": request.build_absolute_uri(reverse("simulator:intasend-root")) + API_PREFIX.lstrip("/"),
            "configured_base_url": settings.INTASEND_API_BASE_URL,
        },
    )


@simulators_on
def intasend_root(request: HttpRequest) -> HttpResponse:
    return redirect("simulator:phone")


@csrf_exempt  # IntaSend's API: the SDK authenticates with its keys, not cookies
@simulators_on
def intasend_api(request: HttpRequest, endpoint: str) -> HttpResponse:
    answer = runtime.intasend().api.handle(
        request.method or "GET",
        API_PREFIX + endpoint,
        request.headers,
        request.body,
        root_url=request.build_absolute_uri(reverse("simulator:intasend-root")),
        client_ip=request.META.get("REMOTE_ADDR") or "127.0.0.1",
        query=request.META.get("QUERY_STRING", ""),
    )
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


# -- the phone ---------------------------------------------------------------------------------


@simulators_on
def phone(request: HttpRequest) -> HttpResponse:
    """Pending STK prompts with Approve / Decline, and the latest settled ones with their webhooks."""
    context = {
        "pending": runtime.prompts(pending=True),
        "settled": runtime.prompts(pending=False, limit=10),
        "filter_query": _filter_query(request),
    }
    template = "simulator/phone_prompts.html" if request.GET.get("partial") else "simulator/phone.html"
    return render(request, template, context)


@simulators_on
@require_POST
def phone_action(request: HttpRequest, invoice_id: str, action: str) -> HttpResponse:
    actions = {"approve": runtime.prompt_approve, "decline": runtime.prompt_decline}
    if action not in actions:
        raise Http404("Unknown action")
    try:
        invoice = actions[action](invoice_id, webhook_url=runtime.default_webhook_url(request))
    except KeyError:
        messages.error(request, f"No prompt {invoice_id}.")
    except ValueError:
        messages.warning(request, f"Prompt {invoice_id} was already answered.")
    else:
        verb = "approved: paid" if invoice.state == "COMPLETE" else "declined"
        messages.success(request, f"Prompt {invoice.invoice_id} {verb} (KES {invoice.value}); webhook sent.")
    return redirect(reverse("simulator:phone") + _filter_query(request))


def _filter_query(request: HttpRequest) -> str:
    return "?" + urlencode({"phone": request.GET["phone"]}) if request.GET.get("phone") else ""


# -- the checkout page -----------------------------------------------------------------------------


@simulators_on
def checkout(request: HttpRequest, checkout_id: str) -> HttpResponse:
    """IntaSend's hosted checkout, reduced to M-Pesa: a phone number, Pay or Cancel."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    ledger = runtime.intasend().ledger
    try:
        found = ledger.checkout(checkout_id)
    except KeyError:
        raise Http404("Unknown checkout") from None
    error = None
    phone_number = found.phone_number or ""
    expired = time.time() > found.expires_at
    if request.method == "POST" and expired:
        error = "This checkout link has expired."
    elif request.method == "POST" and not found.paid:
        webhook_url = runtime.default_webhook_url(request)
        try:
            if request.POST.get("action") == "cancel":
                runtime.checkout_cancel(checkout_id, webhook_url=webhook_url)
            else:
                phone_number = request.POST.get("phone_number", "")
                runtime.checkout_pay(checkout_id, phone_number=normalise_phone(phone_number), webhook_url=webhook_url)
        except ApplicationError:
            error = "Enter an M-Pesa number like 0712 345 678."
        except ValueError:
            error = "This checkout was already settled."
        else:
            return redirect("simulator:checkout", checkout_id=checkout_id)
    found = ledger.checkout(checkout_id)
    invoice = ledger.invoice(found.invoice_id) if found.invoice_id else None
    return_url = None
    if found.redirect_url and invoice is not None:
        query = {"tracking_id": invoice.invoice_id, "checkout_id": found.checkout_id, "signature": found.signature}
        return_url = found.redirect_url + ("&" if "?" in found.redirect_url else "?") + urlencode(query)
    return render(
        request,
        "simulator/checkout.html",
        {
            "checkout": found,
            "invoice": invoice,
            "closed": invoice is not None and invoice.state in FINAL_STATES,
            "expired": expired,
            "phone_number": phone_number,
            "error": error,
            "return_url": return_url,
        },
        status=400 if error else 200,
    )
