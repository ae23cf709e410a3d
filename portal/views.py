"""The reference captive portal: one page per operator public key.

The page is static apart from the key and a default router; everything else happens in the browser
against the public GraphQL API (portal.js). Its script and stylesheet are static files served by the
app itself (project.static_files) under content-hashed names, so ``daphne project.asgi:application``
alone serves a working portal with nothing from another host (captive clients reach only the walled
garden). The page is rendered in the customer's language (project.i18n: their switch, else the
operator's default), which portal.js then keeps speaking from its own catalogue (i18n.js); an unknown
or rotated key gets a page a customer can read, saying nothing about which keys exist.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.views.decorators.http import require_safe

from billing.services import operator_profile
from network.models import Router
from project.auth import principal_from_public_key
from project.i18n import customer_language, render_for_customer

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
    router = (
        Router.objects.filter(owner=operator, pk=int(router_id), deleted_at__isnull=True)
        .only("hotspot_address")
        .first()
    )
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


def _secured(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = _content_security_policy(request)
    response["Referrer-Policy"] = "no-referrer"
    return response


def _unknown_portal(request: HttpRequest) -> HttpResponse:
    # A rotated or mistyped key: a page a customer can read, saying nothing about which keys exist.
    response = render_for_customer(request, "portal/not_found.html", {"style_url": static("portal/portal.css")})
    response.status_code = 404
    return _secured(response, request)


@require_safe
def page(request: HttpRequest, public_key: str) -> HttpResponse:
    """The portal for the operator whose public key is in the URL; unknown keys get a friendly 404."""
    principal = principal_from_public_key(public_key)
    if principal is None or public_key != public_key.lower():
        return _unknown_portal(request)
    profile = operator_profile(operator=principal.operator)
    # Without ?routerId=…, an operator with a single router needs no configuration.
    routers = list(
        Router.objects.filter(owner=principal.operator, deleted_at__isnull=True).values_list("pk", flat=True)[:2]
    )
    default_router_id = str(routers[0]) if len(routers) == 1 else ""
    # The same router portal.js sells for (?routerId=, else the only one).
    router_id = request.GET.get("routerId") or request.GET.get("router") or default_router_id
    hotspot = _hotspot_address(principal.operator, router_id)
    language = customer_language(request, profile.language)
    response = render_for_customer(
        request,
        "portal/portal.html",
        {
            "public_key": public_key,
            "default_router_id": default_router_id,
            "login_url": login_url(request.GET.get("link-login-only", "").strip(), hotspot),
            "graphql_url": "/graphql/",
            # portal.js speaks the same language the page was rendered in, until the customer switches.
            "language": language.upper(),
            "html_lang": language,
            "i18n_url": static("portal/i18n.js"),
            "script_url": static("portal/portal.js"),
            "style_url": static("portal/portal.css"),
        },
        operator_language=profile.language,
    )
    return _secured(response, request)
