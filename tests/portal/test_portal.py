"""The reference captive portal: served per public key, self-contained, small, and in step with the API."""

from __future__ import annotations

import ast
import re

import pytest
from graphql import parse, validate

from project.schema import schema
from tests.live import REPO

PORTAL = REPO / "portal"
SCRIPT = PORTAL / "static" / "portal" / "portal.js"
CATALOGUE = PORTAL / "static" / "portal" / "i18n.js"
STYLE = PORTAL / "static" / "portal" / "portal.css"
TEMPLATE = PORTAL / "templates" / "portal" / "portal.html"
LOGIN_PAGE = PORTAL / "mikrotik" / "login.html"

pytestmark = pytest.mark.django_db


def error_code_names() -> list[str]:
    """The ErrorCode members, read from project/errors.py's source (not from the running enum)."""
    tree = ast.parse((REPO / "project" / "errors.py").read_text())
    [enum_class] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ErrorCode"]
    return [t.id for n in enum_class.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]


def script_constants() -> dict[str, str]:
    """The JS string constants built from literals and other constants (the GraphQL documents)."""
    source = SCRIPT.read_text()
    pattern = re.compile(r'var ([A-Z_]+) =\s*((?:"[^"\n]*"|[A-Z_]+)(?:\s*\+\s*(?:"[^"\n]*"|[A-Z_]+))*)\s*;')
    constants: dict[str, str] = {}
    for name, expression in pattern.findall(source):
        parts = re.findall(r'"([^"\n]*)"|([A-Z_]+)', expression)
        if all(not ref or ref in constants for _, ref in parts):  # skip those built from runtime values
            constants[name] = "".join(constants[ref] if ref else literal for literal, ref in parts)
    return constants


def test_portal_renders_for_a_valid_key(client, operator):
    router = operator.add_router()
    response = client.get(f"/portal/{operator.public_key}/?routerId={router.pk}&mac=AA:BB:CC:DD:EE:01")
    assert response.status_code == 200
    html = response.content.decode()
    for element_id in ("packages", "phone", "pay", "status", "access-code", "error", "pay-link", "login-form"):
        assert f'id="{element_id}"' in html, element_id
    assert f'data-public-key="{operator.public_key}"' in html
    assert f'data-router-id="{router.pk}"' in html  # the only router is the default
    assert '<label for="phone" data-i18n="phone_label">' in html
    assert 'role="alert"' in html and 'aria-live="polite"' in html
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_portal_has_no_default_router_when_there_are_several(client, operator):
    operator.add_router(name="A")
    operator.add_router(name="B")
    assert 'data-router-id=""' in client.get(f"/portal/{operator.public_key}/").content.decode()


def assert_friendly_not_found(response, language="en"):
    """A page a customer can read (not Django's bare "Not Found"), naming no key and no operator."""
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert f'<html lang="{language}">' in html and 'rel="icon"' in html and "/static/portal/portal." in html
    assert "<h1>Not Found</h1>" not in html and "<script" not in html
    expected = "This payment page is out of date" if language == "en" else "Ukurasa huu wa malipo umepitwa na wakati"
    assert expected in html
    return html


@pytest.mark.parametrize("key", ["0" * 32, "not-a-key", "ABCDEF0123456789ABCDEF0123456789", "<b onclick=alert(1)>"])
def test_portal_is_a_friendly_404_for_unknown_keys(client, operator, key):
    html = assert_friendly_not_found(client.get(f"/portal/{key}/"))
    assert "alert(1)" not in html  # nothing of the URL is echoed


def test_portal_is_a_friendly_404_for_a_rotated_key(client, operator):
    from billing.services import operator_rotate_public_key

    old = operator.public_key
    operator.user.operator.business_name = "Mama Njeri WiFi"
    operator.user.operator.save()
    operator_rotate_public_key(operator=operator.user)
    html = assert_friendly_not_found(client.get(f"/portal/{old}/"))
    assert old not in html and operator.public_key not in html and "Mama Njeri" not in html  # no oracle
    assert client.get(f"/portal/{operator.public_key}/").status_code == 200


def test_friendly_404_speaks_the_customers_language(client, operator):
    assert_friendly_not_found(client.get(f"/portal/{'0' * 32}/?lang=sw"), "sw")
    client.cookies["cloudpilot_lang"] = "sw"
    assert_friendly_not_found(client.get(f"/portal/{'0' * 32}/"), "sw")


def test_portal_renders_in_the_operators_language_until_the_customer_chooses(client, operator):
    router = operator.add_router()
    operator.user.operator.language = "SW"
    operator.user.operator.save()
    url = f"/portal/{operator.public_key}/?routerId={router.pk}"
    html = client.get(url).content.decode()
    assert '<html lang="sw">' in html and 'data-language="SW"' in html
    assert "Lipa kwa M-Pesa" in html and "Una msimbo?" in html and "Pay with M-Pesa" not in html
    html = client.get(url + "&lang=en").content.decode()  # the customer's switch, remembered in a cookie
    assert '<html lang="en">' in html and 'data-language="EN"' in html and "Pay with M-Pesa" in html
    assert 'data-language="EN"' in client.get(url).content.decode()


def test_operator_text_is_never_put_into_the_page_as_html():
    """Business name, message and phone are typed by operators: the script sets text, never markup."""
    source = SCRIPT.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink
    assert "textContent = info.businessName" in source and "textContent = info.portalMessage" in source
    # The page itself carries nothing of the operator's: it comes from portalInfo, as text.
    assert "business_name" not in TEMPLATE.read_text()


def catalogue() -> dict[str, dict[str, str]]:
    """i18n.js's two languages, read as data (keys and plain double-quoted strings)."""
    text = CATALOGUE.read_text()
    languages = {}
    for name, body in re.findall(r"\n  (EN|SW): \{\n(.*?)\n  \},", text, re.S):
        languages[name] = dict(re.findall(r'^    (\w+): "((?:[^"\\]|\\.)*)",$', body, re.M))
        assert len(languages[name]) == body.count("\n") + 1, f'{name}: a line that is not `key: "text",`'
    return languages


def test_swahili_says_everything_english_says_with_the_same_placeholders():
    words = catalogue()
    assert set(words) == {"EN", "SW"} and len(words["EN"]) > 80
    assert set(words["SW"]) == set(words["EN"])
    for key, english in words["EN"].items():
        assert sorted(re.findall(r"\{\w+\}", words["SW"][key])) == sorted(re.findall(r"\{\w+\}", english)), key
    assert words["SW"]["have_code"] == "Una msimbo?" and words["SW"]["pay"] == "Lipa kwa M-Pesa"
    # Every key the script asks for is in the catalogue.
    used = set(re.findall(r'\b(?:t|tr\([^,]+,|setStatus\(|fillError\([^,]+,|showError\() ?"(\w+)"', SCRIPT.read_text()))
    used |= set(re.findall(r'data-i18n="(\w+)"', TEMPLATE.read_text()))
    assert used and not used - set(words["EN"]), used - set(words["EN"])


def test_portal_assets_are_static_files_with_hashed_names(client, operator):
    page = client.get(f"/portal/{operator.public_key}/").content.decode()
    script = re.search(r'src="(/static/portal/portal\.[0-9a-f]{12}\.js)"', page)
    style = re.search(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"', page)
    catalogue = re.search(r'src="(/static/portal/i18n\.[0-9a-f]{12}\.js)"', page)
    assert script and style and catalogue, page
    assert client.get(catalogue[1])["Content-Type"].startswith("text/javascript")
    served = client.get(script[1])
    assert served.status_code == 200 and served["Content-Type"].startswith("text/javascript")
    assert served["Cache-Control"] == "max-age=315360000, public, immutable"
    assert client.get(script[1], headers={"If-None-Match": served["ETag"]}).status_code == 304
    assert client.get(style[1])["Content-Type"].startswith("text/css")
    assert client.get("/static/portal/settings.py").status_code == 404


def test_portal_loads_nothing_from_other_hosts(client, operator):
    page = client.get(f"/portal/{operator.public_key}/").content.decode()
    sources = (("page", page), ("js", SCRIPT.read_text()), ("i18n", CATALOGUE.read_text()), ("css", STYLE.read_text()))
    for name, text in sources:
        assert not re.findall(r"https?://", text), name
        assert not re.findall(r"(?:src|href)=[\"']//", text), name  # protocol-relative URLs
        assert "@import" not in text and "url(" not in text.replace("url(data:", ""), name


def test_portal_is_small():
    # Two languages' words included: still a fraction of one photo on a slow hotspot.
    assert sum(path.stat().st_size for path in (SCRIPT, CATALOGUE, STYLE, TEMPLATE)) < 60_000


def test_portal_has_a_message_for_every_error_code_in_both_languages():
    names = error_code_names()
    assert "INVALID_PHONE" in names and len(names) >= 17
    words = catalogue()
    for language in ("EN", "SW"):
        missing = [name for name in names + ["UNAUTHENTICATED", "NETWORK"] if not words[language].get(name)]
        assert not missing, language
    assert words["EN"]["INVALID_PHONE"] == "Enter a Safaricom/Airtel number like 0712 345 678."


def test_portal_graphql_documents_are_valid_against_the_schema():
    constants = script_constants()
    documents = {name: text for name, text in constants.items() if name.startswith(("Q_", "M_", "S_"))}
    assert set(documents) >= {
        "Q_INFO",
        "Q_PACKAGES",
        "Q_PAYMENT",
        "M_CHECK",
        "S_UPDATES",
        "M_INITIATE",
        "M_LINK",
        "M_REDEEM",
        "Q_ACCESS",
    }
    for name, document in documents.items():
        errors = validate(schema._schema, parse(document))
        assert not errors, (name, errors)
    # The payment input the portal sends uses PaymentInput's fields only.
    sent = re.search(r"var input = \{(.*?)\};", SCRIPT.read_text(), re.S).group(1)
    keys = set(re.findall(r"(\w+):", sent))
    assert keys <= set(schema._schema.type_map["PaymentInput"].fields)
    assert {"idempotencyKey", "macAddress", "ipAddress", "phoneNumber", "amount"} <= keys
    sent = re.search(r"var request = \{(.*?)\};", SCRIPT.read_text(), re.S).group(1)
    assert set(re.findall(r"(\w+):", sent)) == set(schema._schema.type_map["RedeemCodeInput"].fields)


def test_portal_speaks_graphql_transport_ws_with_the_public_key():
    source = SCRIPT.read_text()
    for needle in ('"graphql-transport-ws"', '"connection_init"', '"X-Public-Key": KEY', '"pong"', '"subscribe"'):
        assert needle in source, needle


def test_mikrotik_login_page_hands_the_client_over_to_the_portal():
    page = LOGIN_PAGE.read_text()
    for variable in ("$(mac)", "$(ip)", "$(link-login-only)", "$(link-orig-esc)"):
        assert variable in page, variable
    assert '"/portal/"' in page and "routerId=" in page and "link-login-only=" in page and "link-orig=" in page
    for value in ("CLOUDPILOT_URL", "PUBLIC_KEY", "ROUTER_ID"):
        assert re.search(rf"var {value} = \"[^\"]+\";", page), value
