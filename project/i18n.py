"""The language of a page a customer sees (the portal, the checkout return page, the voucher sheet).

English or Swahili, chosen per request: the customer's ``?lang=en|sw`` first, then the cookie the
portal's language switch sets, then the operator's default (``OperatorProfile.language``, EN or SW).
Deliberately no LocaleMiddleware: the admin and the API stay English (error codes carry the meaning),
so a customer page activates its language itself, only while it renders (``render_for_customer``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

# Set by the portal's language switch (and by any customer page given ?lang=); read by every customer page.
LANGUAGE_COOKIE = "cloudpilot_lang"
LANGUAGE_COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
CUSTOMER_LANGUAGES = tuple(code for code, _ in settings.LANGUAGES)


def _known(value: str | None) -> str | None:
    # Anything else (a typo, "sw-KE", 10 kB of junk) is ignored, never echoed.
    value = (value or "").strip().lower()
    return value if value in CUSTOMER_LANGUAGES else None


def requested_language(request: HttpRequest) -> str | None:
    """The language the customer asked for on this request (?lang=), if a known one."""
    return _known(request.GET.get("lang"))


def customer_language(request: HttpRequest, operator_language: str | None = None) -> str:
    """``en`` or ``sw``: the customer's choice, else the operator's default (EN/SW), else English."""
    return (
        requested_language(request)
        or _known(request.COOKIES.get(LANGUAGE_COOKIE))
        or _known(operator_language)
        or settings.LANGUAGE_CODE
    )


def render_for_customer(
    request: HttpRequest, template: str, context: dict, *, operator_language: str | None = None
) -> HttpResponse:
    """Render a customer page in the customer's language; a ?lang= choice is remembered in the cookie."""
    language = customer_language(request, operator_language)
    with translation.override(language):
        response = render(request, template, context)
    response["Content-Language"] = language
    if requested_language(request):
        # Not HttpOnly: the portal's script reads and sets the same cookie.
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=LANGUAGE_COOKIE_MAX_AGE_SECONDS,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return response
