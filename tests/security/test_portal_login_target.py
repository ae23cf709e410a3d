"""Issue 9, item 20: the portal posted the paid access code to whatever ``link-login-only`` its URL carried.

A crafted portal link (``...&link-login-only=http://attacker/``) collected payers' codes. Now the server
renders the one login URL the portal may post to, built on the router's registered ``hotspotAddress``
(portal.views.login_url), and portal.js reads nothing else.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest

from network.models import Activation, Router
from tests.grants import grant_for

PORTAL_JS = Path(__file__).resolve().parents[2] / "portal" / "static" / "portal" / "portal.js"
CHROMIUM = Path("/usr/bin/chromium")


def login_url_of(client, operator, **query: str) -> str:
    response = client.get(f"/portal/{operator.public_key}/?{urlencode(query)}")
    assert response.status_code == 200
    return html.unescape(re.search(r'data-login-url="([^"]*)"', response.content.decode()).group(1))


@pytest.mark.django_db
def test_portal_login_url_is_only_ever_the_registered_hotspot_address(client, operator):
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(hotspot_address="hotspot.lan")
    rid = str(router.pk)

    def target(link: str | None) -> str:
        return login_url_of(client, operator, routerId=rid, **({"link-login-only": link} if link else {}))

    for foreign in (
        "http://evil.example/login",
        "https://evil.example/hotspot.lan/login",
        "http://hotspot.lan@evil.example/login",
        "http://evil.example\\@hotspot.lan/login",
        "http://hotspot.lan.evil.example/login",
        "http://hotspot.lan:8080/login",  # another port is another service
        "javascript:alert(document.cookie)",
        "//evil.example/login",
    ):
        assert target(foreign) == "", foreign
    assert target("http://HOTSPOT.lan/login") == "http://hotspot.lan/login"
    assert target("https://hotspot.lan:443/login?dst=x") == "https://hotspot.lan/login?dst=x"
    assert target(None) == "http://hotspot.lan/login"  # MikroTik's standard login path

    Router.objects.filter(pk=router.pk).update(hotspot_address="")
    assert target("http://hotspot.lan/login") == ""  # no registered address: nowhere


@pytest.mark.django_db
def test_portal_script_never_reads_link_login_only_itself():
    script = PORTAL_JS.read_text()
    assert 'params.get("link-login-only")' not in script
    assert "root.dataset.loginUrl" in script


# --- in a real browser ------------------------------------------------------------------------------


class LoginPage:
    """A recording HTTP server standing in for a hotspot's login page (or an attacker's)."""

    def __init__(self) -> None:
        posts: list[dict[str, list[str]]] = []
        self.posts = posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                posts.append(parse_qs(body))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<p>logged in</p>")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chromium(monkeypatch) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.e2e.test_portal_browser import CHROMIUM_ARGS

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def paid(operator):
    """A payment with an ACTIVE access code, as the page that started it knows it (id and clientSecret)."""
    hotspot = LoginPage()
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(hotspot_address=hotspot.address)
    package = operator.add_package(router)
    payment = operator.add_paid_payment(router, package, client_secret="s" * 43)
    grant_for(payment, status=Activation.Status.ACTIVE, access_code="K7P2MX9Q",
        activated_at=payment.completed_at, expires_at=payment.package_expiry_time,
    )  # fmt: skip
    yield type("Paid", (), {"router": router, "payment": payment, "hotspot": hotspot})
    hotspot.close()


def open_portal(chromium, live_server, operator, paid, link: str):
    context = chromium.new_context()
    saved = {"id": str(paid.payment.pk), "secret": paid.payment.client_secret, "at": int(time.time() * 1000)}
    store = f"cloudpilot.payment.{operator.public_key}"
    context.add_init_script(f"localStorage.setItem({store!r}, {str(saved).replace(chr(39), chr(34))!r});")
    page = context.new_page()
    query = urlencode({"routerId": paid.router.pk, "link-login-only": link, "link-orig": "http://example.com/"})
    page.goto(f"{live_server.url}/portal/{operator.public_key}/?{query}")
    return page


@pytest.mark.django_db(transaction=True)
@pytest.mark.once
def test_portal_never_posts_the_code_to_a_foreign_link_login_only_host(chromium, live_server, operator, paid):
    attacker = LoginPage()
    try:
        page = open_portal(chromium, live_server, operator, paid, f"http://{attacker.address}/collect")
        page.wait_for_selector("#access-code:has-text('K7P2MX9Q')", timeout=20_000)
        time.sleep(4)  # the portal posts 3 s after "Connected"

        assert attacker.posts == [] and paid.hotspot.posts == []
        assert "type this code on the hotspot's login page" in page.inner_text("#done-detail")
    finally:
        attacker.close()


@pytest.mark.django_db(transaction=True)
def test_portal_posts_the_code_to_the_registered_hotspot(chromium, live_server, operator, paid):
    page = open_portal(chromium, live_server, operator, paid, f"http://{paid.hotspot.address}/login?mac=02:00")
    page.wait_for_url(re.compile(re.escape(paid.hotspot.address)), timeout=20_000)

    assert [(p["username"], p["password"]) for p in paid.hotspot.posts] == [(["K7P2MX9Q"], ["K7P2MX9Q"])]
