"""The reference captive portal: one page per operator public key, plus its script and stylesheet.

The page is static apart from the key and a default router; everything else happens in the browser
against the public GraphQL API (portal.js). The assets are served by these views rather than by a
static-files server so that ``daphne project.asgi:application`` alone serves a working portal,
with DEBUG off too, and with nothing from another host (captive clients reach only the walled
garden).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


# Anything a browser reads differently from urlsplit (backslashes, spaces, controls) is not trusted.
_UNSAFE_IN_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, netloc: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        return (parts.hostname or "", parts.port or _DEFAULT_PORTS[scheme])
    except ValueError:
        return None


def login_url(link_login_only: str, hotspot_address: str) -> str:
    """Where the portal may post the paid access code: the router's registered hotspot address only.

    ``link-login-only`` comes from the portal's own URL, which anyone can craft: its scheme, path and
    query are kept only when its host and port are the hotspot address. Without it the hotspot's
    standard ``http://<hotspot>/login``; with a link to anywhere else, or no hotspot address
    registered, nothing ("": the customer types the code on the hotspot's page).
    """
    if not hotspot_address:
        return ""
    if not link_login_only:
        return f"http://{hotspot_address}/login"
    if _UNSAFE_IN_URL.search(link_login_only):
        return ""
    try:
        link = urlsplit(link_login_only)
        userinfo = link.username is not None or link.password is not None
    except ValueError:
        return ""
    if link.scheme not in _DEFAULT_PORTS or userinfo:
        return ""
    target = _origin(link.scheme, hotspot_address)
    if target is None or _origin(link.scheme, link.netloc) != target:
        return ""
    return urlunsplit((link.scheme, hotspot_address, link.path or "/login", link.query, ""))


def _hotspot_address(operator, router_id: str) -> str:
    if not router_id.isdigit():
        return ""
    router = Router.objects.filter(owner=operator, pk=int(router_id)).only("hotspot_address").first()
    return router.hotspot_address if router else ""


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
    # The same router portal.js sells for (?routerId=, else the only one).
    router_id = request.GET.get("routerId") or request.GET.get("router") or default_router_id
    hotspot = _hotspot_address(principal.operator, router_id)
    response = render(
        request,
        "portal/portal.html",
        {
            "public_key": public_key,
            "default_router_id": default_router_id,
            "login_url": login_url(request.GET.get("link-login-only", "").strip(), hotspot),
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
