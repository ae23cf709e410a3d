"""Plain HTTP endpoints of billing (not GraphQL)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.webhooks import webhook_receive


@csrf_exempt  # IntaSend posts server-to-server; the challenge and the status check authenticate it
@require_POST
def intasend_webhook(request: HttpRequest) -> JsonResponse:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return JsonResponse({"status": "invalid", "detail": "Body too large"}, status=413)
    answer = webhook_receive(raw_body=body, remote_addr=request.META.get("REMOTE_ADDR"))
    return JsonResponse(answer.body, status=answer.http_status)
