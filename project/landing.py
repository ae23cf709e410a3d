"""``/``: where to start. With DEBUG on, links to everything a developer opens; otherwise the name only.

Outside DEBUG the page says what the product is and nothing else: no usernames, keys, ids or versions.
``/favicon.ico``, which browsers ask for on every host, is sent to the static SVG icon.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe

from billing.management.commands.seed_demo import seeded_portal_path
from project.page_policy import NO_SCRIPT_PAGE_POLICY


def _developer_links() -> dict[str, object]:
    """What `make run` (DEBUG on) offers, each only where it is served."""
    simulators = settings.SIMULATORS_ENABLED
    return {
        "graphiql": "/graphql/" if settings.GRAPHIQL_ENABLED else "",
        "simulators": simulators,
        # Seeded by `make run` (seed_demo) while the simulators are on; the portal itself needs no simulator.
        "demo_portal": seeded_portal_path() or "",
    }


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    context = {"debug": settings.DEBUG, **(_developer_links() if settings.DEBUG else {})}
    response = render(request, "landing.html", context)
    response["Content-Security-Policy"] = NO_SCRIPT_PAGE_POLICY
    if settings.DEBUG:
        # The demo portal's link carries the demo operator's public key.
        response["Cache-Control"] = "no-store"
    return response


@require_safe
def demo_hotspot_login(request: HttpRequest) -> HttpResponse:
    """The demo hotspot's login page (simulators only): on a real router, ``/login`` is the operator's
    login.html, which takes a voucher's QR code (``/login#code=…``) to the portal; here the redirect does
    (a browser keeps the ``#code=`` fragment across it)."""
    portal = seeded_portal_path()
    if portal is None:
        raise Http404("The demo is not seeded")
    return HttpResponseRedirect(portal)


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    # Not permanent: the static name changes with the file's content (hashed outside DEBUG).
    return HttpResponseRedirect(static("favicon.svg"))
