"""English and Swahili: every catalogue complete and its committed .mo in step with its .po, and the
rule that picks a customer page's language (project.i18n). No gettext tools needed: polib compiles."""

from __future__ import annotations

import gettext
import io
import re

import polib
import pytest
from django.test import RequestFactory
from django.utils import translation

from project.i18n import LANGUAGE_COOKIE, customer_language, render_for_customer
from tests.live import REPO

CATALOGUES = sorted(REPO.glob("*/locale/*/LC_MESSAGES/django.po"))
# %(name)s, %s, %d ...: a msgstr that drops or invents one breaks (or 500s) the page that renders it.
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[#0\- +]*\d*(?:\.\d+)?[sdif%]")


def test_every_app_catalogue_is_found():
    assert REPO / "billing" / "locale" / "sw" / "LC_MESSAGES" / "django.po" in CATALOGUES


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_entry_is_translated(po_path):
    catalogue = polib.pofile(str(po_path))
    assert not catalogue.untranslated_entries(), [e.msgid for e in catalogue.untranslated_entries()]
    assert not catalogue.fuzzy_entries(), [e.msgid for e in catalogue.fuzzy_entries()]
    assert not catalogue.obsolete_entries(), [e.msgid for e in catalogue.obsolete_entries()]


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: str(p.relative_to(REPO)))
def test_translations_keep_the_placeholders(po_path):
    for entry in polib.pofile(str(po_path)).translated_entries():
        if entry.msgid_plural:
            sources, targets = [entry.msgid, entry.msgid_plural], list(entry.msgstr_plural.values())
        else:
            sources, targets = [entry.msgid], [entry.msgstr]
        expected = sorted(set(PLACEHOLDER.findall(" ".join(sources))))
        for target in targets:
            assert sorted(set(PLACEHOLDER.findall(target))) == expected, (entry.msgid, target)


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_mo_matches_its_po(po_path, tmp_path):
    """What Django serves is the .mo: it must say what the .po says (run `make messages`)."""
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path.relative_to(REPO)} is missing: run `make messages`"
    fresh = tmp_path / "fresh.mo"
    polib.pofile(str(po_path)).save_as_mofile(str(fresh))
    committed = gettext.GNUTranslations(io.BytesIO(mo_path.read_bytes()))
    expected = gettext.GNUTranslations(io.BytesIO(fresh.read_bytes()))
    # The header entry ("") differs by tool (msgfmt drops POT-Creation-Date); what it decides must not.
    assert {k: v for k, v in committed._catalog.items() if k != ""} == {
        k: v for k, v in expected._catalog.items() if k != ""
    }
    assert committed.charset().lower() == expected.charset().lower() == "utf-8"
    assert [committed.plural(n) for n in range(10)] == [expected.plural(n) for n in range(10)]


# --- which language a customer page speaks ---------------------------------------------------------


def _request(query: str = "", cookie: str | None = None):
    request = RequestFactory().get(f"/page/{query}")
    if cookie is not None:
        request.COOKIES[LANGUAGE_COOKIE] = cookie
    return request


@pytest.mark.parametrize(
    ("query", "cookie", "operator", "expected"),
    [
        ("", None, None, "en"),
        ("", None, "SW", "sw"),
        ("", None, "EN", "en"),
        ("", "sw", "EN", "sw"),  # the customer's switch beats the operator's default
        ("?lang=en", "sw", "SW", "en"),  # and an explicit ?lang= beats the cookie
        ("?lang=SW", None, "EN", "sw"),
        ("?lang=fr", None, "SW", "sw"),  # unknown choices are ignored, not echoed
        ("?lang=sw-KE", "xx", "EN", "en"),
        ("?lang=" + "s" * 5000, "<script>", None, "en"),
        ("?lang=&lang=", "", "", "en"),
    ],
)
def test_customer_language_precedence(query, cookie, operator, expected):
    assert customer_language(_request(query, cookie), operator) == expected


def test_render_for_customer_renders_in_that_language_only_while_rendering(tmp_path, settings):
    settings.TEMPLATES = [
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(tmp_path)], "APP_DIRS": False}
    ]
    (tmp_path / "lang.html").write_text("{% load i18n %}{% get_current_language as L %}[{{ L }}]")
    response = render_for_customer(_request("?lang=sw"), "lang.html", {}, operator_language="EN")
    assert response.content == b"[sw]" and response["Content-Language"] == "sw"
    # The choice is remembered for the portal and the other customer pages.
    cookie = response.cookies[LANGUAGE_COOKIE]
    assert cookie.value == "sw" and cookie["samesite"] == "Lax" and not cookie["httponly"]
    assert translation.get_language() == "en"  # nothing leaks into the admin or the API

    response = render_for_customer(_request(cookie="sw"), "lang.html", {}, operator_language="EN")
    assert response.content == b"[sw]" and LANGUAGE_COOKIE not in response.cookies  # nothing new to remember


def test_no_locale_middleware_the_api_and_admin_stay_english(settings):
    assert not any("LocaleMiddleware" in name for name in settings.MIDDLEWARE)
    assert [code for code, _ in settings.LANGUAGES] == ["en", "sw"]
