"""The reference captive portal: one page per operator public key, plus its script and stylesheet.

The page is static apart from the key and a default router; everything else happens in the browser
against the public GraphQL API (portal.js). The assets are served by these views rather than by a
static-files server so that ``daphne project.asgi:application`` alone serves a working portal,
with DEBUG off too, and with nothing from another host (captive clients reach only the walled
garden).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from network.models import Router
from project.auth import principal_from_public_key

ASSET_DIR = Path(__file__).resolve().parent / "static" / "portal"
ASSET_TYPES = {
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str


def _read_asset(name: str) -> Asset:
    body = (ASSET_DIR / name).read_bytes()
    return Asset(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:16] + '"')


_cached_asset = cache(_read_asset)


def load_asset(name: str) -> Asset:
    # Re-read on every request while developing, so edits show up without a restart.
    return _read_asset(name) if settings.DEBUG else _cached_asset(name)


def _content_security_policy(request: HttpRequest) -> str:
    host = request.get_host()
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' ws://{host} wss://{host}",
            # The hotspot's login form lives on the router (http://<hotspot>/login).
            "form-action 'self' http: https:",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


@require_safe
def page(request: HttpRequest, public_key: str) -> HttpResponse:
    """The portal for the operator whose public key is in the URL; unknown keys are 404s."""
    principal = principal_from_public_key(public_key)
    if principal is None or public_key != public_key.lower():
        raise Http404("Unknown portal")
    # Without ?routerId=…, an operator with a single router needs no configuration.
    routers = list(Router.objects.filter(owner=principal.operator).values_list("pk", flat=True)[:2])
    default_router_id = str(routers[0]) if len(routers) == 1 else ""
    response = render(
        request,
        "portal/portal.html",
        {
            "public_key": public_key,
            "default_router_id": default_router_id,
            "graphql_url": "/graphql/",
            "script_url": reverse("portal:asset", args=["portal.js"]) + "?v=" + load_asset("portal.js").etag[1:9],
            "style_url": reverse("portal:asset", args=["portal.css"]) + "?v=" + load_asset("portal.css").etag[1:9],
        },
    )
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = _content_security_policy(request)
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_safe
def asset(request: HttpRequest, name: str) -> HttpResponse:
    if name not in ASSET_TYPES:
        raise Http404("Unknown asset")
    found = load_asset(name)
    if request.headers.get("If-None-Match") == found.etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(found.body, content_type=ASSET_TYPES[name])
    response["ETag"] = found.etag
    # Versioned URLs (?v=) can be kept a day; the page itself is never cached.
    response["Cache-Control"] = "public, max-age=86400" if request.GET.get("v") else "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response
