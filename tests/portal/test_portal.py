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
    assert '<label for="phone">' in html and 'role="alert"' in html and 'aria-live="polite"' in html
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_portal_has_no_default_router_when_there_are_several(client, operator):
    operator.add_router(name="A")
    operator.add_router(name="B")
    assert 'data-router-id=""' in client.get(f"/portal/{operator.public_key}/").content.decode()


@pytest.mark.parametrize("key", ["0" * 32, "not-a-key", "ABCDEF0123456789ABCDEF0123456789"])
def test_portal_is_404_for_unknown_keys(client, operator, key):
    assert client.get(f"/portal/{key}/").status_code == 404


def test_portal_is_404_for_a_rotated_key(client, operator):
    from billing.services import operator_rotate_public_key

    old = operator.public_key
    operator_rotate_public_key(operator=operator.user)
    assert client.get(f"/portal/{old}/").status_code == 404
    assert client.get(f"/portal/{operator.public_key}/").status_code == 200


def test_portal_assets_are_static_files_with_hashed_names(client, operator):
    page = client.get(f"/portal/{operator.public_key}/").content.decode()
    script = re.search(r'src="(/static/portal/portal\.[0-9a-f]{12}\.js)"', page)
    style = re.search(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"', page)
    assert script and style, page
    served = client.get(script[1])
    assert served.status_code == 200 and served["Content-Type"].startswith("text/javascript")
    assert served["Cache-Control"] == "max-age=315360000, public, immutable"
    assert client.get(script[1], headers={"If-None-Match": served["ETag"]}).status_code == 304
    assert client.get(style[1])["Content-Type"].startswith("text/css")
    assert client.get("/static/portal/settings.py").status_code == 404


def test_portal_loads_nothing_from_other_hosts(client, operator):
    page = client.get(f"/portal/{operator.public_key}/").content.decode()
    for name, text in (("page", page), ("js", SCRIPT.read_text()), ("css", STYLE.read_text())):
        assert not re.findall(r"https?://", text), name
        assert not re.findall(r"(?:src|href)=[\"']//", text), name  # protocol-relative URLs
        assert "@import" not in text and "url(" not in text.replace("url(data:", ""), name


def test_portal_is_small():
    assert sum(path.stat().st_size for path in (SCRIPT, STYLE, TEMPLATE)) < 30_000


def test_portal_has_a_message_for_every_error_code():
    names = error_code_names()
    assert "INVALID_PHONE" in names and len(names) >= 17
    source = SCRIPT.read_text()
    missing = [name for name in names + ["UNAUTHENTICATED", "NETWORK"] if not re.search(rf"\b{name}: \"", source)]
    assert not missing
    assert 'INVALID_PHONE: "Enter a Safaricom/Airtel number like 0712 345 678."' in source


def test_portal_graphql_documents_are_valid_against_the_schema():
    constants = script_constants()
    documents = {name: text for name, text in constants.items() if name.startswith(("Q_", "M_", "S_"))}
    assert set(documents) >= {"Q_PACKAGES", "Q_PAYMENT", "M_CHECK", "S_UPDATES", "M_INITIATE", "M_LINK"}
    for name, document in documents.items():
        errors = validate(schema._schema, parse(document))
        assert not errors, (name, errors)
    # The payment input the portal sends uses PaymentInput's fields only.
    sent = re.search(r"var input = \{(.*?)\};", SCRIPT.read_text(), re.S).group(1)
    keys = set(re.findall(r"(\w+):", sent))
    assert keys <= set(schema._schema.type_map["PaymentInput"].fields)
    assert {"idempotencyKey", "macAddress", "ipAddress", "phoneNumber", "amount"} <= keys


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
