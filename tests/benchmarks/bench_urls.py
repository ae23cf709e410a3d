"""The product's URLs plus ``/bench/initiate/``: ``payment_initiate`` behind a bare Django JSON view.

It parses the same input as GraphQL's ``initiatePayment`` (``{"input": PaymentInput}``), resolves the
caller with the same ``principal_from_credentials`` from the same headers, calls the same service
with the same client IP, and answers the same fields the benchmark's GraphQL query selects. What is
left is GraphQL's own cost (parsing, validation, the protective extensions, the optimizer, resolvers,
the thread hops of async strawberry-django).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.input_rules import mask_phone
from billing.services import PaymentRequest, payment_initiate
from project.auth import principal_from_credentials
from project.errors import ApplicationError
from project.urls import urlpatterns as product_urlpatterns


def _payment_json(payment, principal) -> dict | None:
    if payment is None:
        return None
    return {
        "id": str(payment.pk),
        "status": payment.status,
        "phoneNumber": payment.phone_number if principal.is_operator else mask_phone(payment.phone_number),
        "amount": str(payment.amount),
        "currency": payment.currency,
        "createdAt": payment.created_at.isoformat(),
    }


@csrf_exempt
@require_POST
def bench_initiate(request: HttpRequest) -> JsonResponse:
    credentials = {name: request.headers[name] for name in ("Authorization", "X-Public-Key") if name in request.headers}
    principal = principal_from_credentials(credentials) if credentials else None
    if principal is None:
        return JsonResponse({"errors": [{"code": "UNAUTHENTICATED"}]}, status=401)
    try:
        data = json.loads(request.body)["input"]
        payment_request = PaymentRequest(
            router_id=data["routerId"],
            package_id=data["packageId"],
            phone_number=data["phoneNumber"],
            amount=str(data["amount"]),
            payment_method=data.get("paymentMethod") or "mpesa",
            mac_address=data.get("macAddress"),
            ip_address=data.get("ipAddress"),
            idempotency_key=data.get("idempotencyKey"),
        )
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"errors": [{"code": "INVALID_INPUT"}]}, status=400)
    try:
        payment = payment_initiate(
            principal=principal, request=payment_request, client_ip=request.META.get("REMOTE_ADDR") or None
        )
    except ApplicationError as error:
        return JsonResponse(
            {
                "message": None,
                "payment": _payment_json(error.payment, principal),
                "intasend": None,
                "errors": [{"field": error.field, "code": error.code.value, "message": error.message}],
            }
        )
    return JsonResponse(
        {
            "message": "STK push initiated successfully",
            "payment": _payment_json(payment, principal),
            "intasend": {
                "paymentId": payment.intasend_payment_id or None,
                "invoiceId": payment.intasend_invoice_id or None,
                "state": payment.intasend_state or None,
                "message": "STK push sent successfully",
            },
            "errors": [],
        }
    )


def bench_heap(request: HttpRequest) -> JsonResponse:
    """Live objects by type (and, under PYTHONTRACEMALLOC, allocated bytes by line): what a connection costs."""
    import collections
    import gc
    import tracemalloc

    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    body: dict = {"types": counts.most_common(int(request.GET.get("top", 60)))}
    if tracemalloc.is_tracing():
        stats = tracemalloc.take_snapshot().statistics("lineno")
        body["lines"] = [[str(stat.traceback[0]), stat.size, stat.count] for stat in stats[:400]]
    return JsonResponse(body)


urlpatterns = [
    path("bench/initiate/", bench_initiate, name="bench-initiate"),
    path("bench/heap/", bench_heap, name="bench-heap"),
    *product_urlpatterns,
]
