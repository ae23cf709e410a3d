"""The hotspot's login.html (portal/mikrotik/login.html) in a real browser (Debian's Chromium, Playwright).

A loopback server plays the MikroTik hotspot: it serves login.html with the hotspot's $(...) variables
substituted as RouterOS does (and its $(if ...)...$(endif) blocks), takes the login form's POST, and
stands in for the CloudPilot portal the page sends customers to. Covered: no error and no code → off
to the portal as before (and Back brings the code box); a failed login → the hotspot's message with
the code box; a voucher's QR code (#code=) → the box filled in, and the portal opened with the code in
its fragment; the direct hotspot login when the portal cannot be reached; the Kiswahili switch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.live import REPO

LOGIN_PAGE = REPO / "portal" / "mikrotik" / "login.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PUBLIC_KEY = "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f"
ROUTER_ID = "7"
MAC = "AA:BB:CC:DD:EE:01"
IP = "10.5.50.23"
ORIGINAL_URL = "http://example.com/news?a=1&b=2"
FAILED_LOGIN = "invalid username or password"

pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")


def render_login_page(variables: dict[str, str], portal_url: str) -> str:
    """login.html as RouterOS serves it, with the operator's three values edited in."""
    page = LOGIN_PAGE.read_text()
    for name, value in (("CLOUDPILOT_URL", portal_url), ("PUBLIC_KEY", PUBLIC_KEY), ("ROUTER_ID", ROUTER_ID)):
        page, count = re.subn(rf'var {name} = "[^"]*";', f'var {name} = "{value}";', page)
        assert count == 1, name

    def conditional(match: re.Match) -> str:
        return match.group(2) if variables.get(match.group(1)) else (match.group(3) or "")

    page = re.sub(r"\$\(if ([\w-]+)\)(.*?)(?:\$\(else\)(.*?))?\$\(endif\)", conditional, page, flags=re.S)
    # Every variable the page uses must be one the hotspot has (KeyError otherwise).
    page = re.sub(r"\$\(([\w-]+)\)", lambda match: variables[match.group(1)], page)
    assert "$(" not in page
    return page


class Hotspot:
    """The router's hotspot pages and, under /portal/, the CloudPilot portal, on one loopback server."""

    def __init__(self) -> None:
        self.error = ""
        self.logins: list[dict[str, list[str]]] = []
        hotspot = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.startswith("/login"):
                    self._send(render_login_page(hotspot.variables(), hotspot.url))
                elif self.path.startswith(f"/portal/{PUBLIC_KEY}/"):
                    self._send("<!doctype html><title>portal</title><h1>CloudPilot portal</h1>")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                hotspot.logins.append(parse_qs(body))
                self._send("<!doctype html><title>status</title><h1>You are logged in</h1>")

            def _send(self, html: str) -> None:
                data = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def variables(self) -> dict[str, str]:
        return {
            "mac": MAC,
            "ip": IP,
            "link-login-only": f"{self.url}/login",
            "link-orig": ORIGINAL_URL,
            "link-orig-esc": quote(ORIGINAL_URL, safe=""),
            "error": self.error,
        }


@pytest.fixture
def hotspot() -> Iterator[Hotspot]:
    spot = Hotspot()
    spot.thread.start()
    try:
        yield spot
    finally:
        spot.server.shutdown()
        spot.server.server_close()


@pytest.fixture
def page() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(viewport={"width": 400, "height": 760})
            tab = context.new_page()
            problems: list[str] = []
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}") or dialog.dismiss())
            yield tab
            assert not problems, problems
        finally:
            chromium.close()


def portal_query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert parts.path == f"/portal/{PUBLIC_KEY}/", url
    return {key: values[0] for key, values in parse_qs(parts.query).items()}


def test_no_error_and_no_code_sends_the_customer_to_the_portal_as_before(page, hotspot):
    page.goto(f"{hotspot.url}/login")
    page.wait_for_url(re.compile(r"/portal/"))
    query = portal_query(page.url)
    assert query == {
        "routerId": ROUTER_ID,
        "mac": MAC,
        "ip": IP,
        "link-login-only": f"{hotspot.url}/login",
        "link-orig": ORIGINAL_URL,
    }
    assert "#" not in page.url

    # The way back: Back shows the login page's code box instead of bouncing to the portal again.
    page.go_back()
    page.wait_for_timeout(500)
    assert page.url.endswith("/login")
    assert page.locator("#code").is_visible() and page.locator("#direct").is_visible()


def test_a_failed_login_shows_the_hotspots_message_with_the_code_box(page, hotspot):
    hotspot.error = FAILED_LOGIN
    page.goto(f"{hotspot.url}/login")
    page.wait_for_timeout(500)
    assert page.url.endswith("/login")  # no redirect over the message
    alert = page.locator("[role=alert]")
    assert alert.is_visible() and alert.inner_text() == f"The hotspot said: {FAILED_LOGIN}"
    assert page.locator("#code").is_visible()

    page.fill("#code", " abcd-efgh jklm ")
    page.press("#code", "Enter")  # Enter means the main button: the portal, which redeems any kind of code
    page.wait_for_url(re.compile(r"/portal/"))
    assert page.url.endswith("#code=ABCDEFGHJKLM")
    assert portal_query(page.url)["link-login-only"] == f"{hotspot.url}/login"
    assert "error" not in portal_query(page.url)  # already shown here
    assert hotspot.logins == []


def test_a_voucher_qr_code_fills_the_box_and_opens_the_portal_with_the_code_in_the_fragment(page, hotspot):
    page.goto(f"{hotspot.url}/login#code=abcd-efgh-jklm")
    page.wait_for_timeout(500)
    assert page.url.endswith("/login#code=abcd-efgh-jklm")
    assert page.input_value("#code") == "ABCDEFGHJKLM"
    assert page.locator("#ready").is_visible()
    page.click("#connect")
    page.wait_for_url(re.compile(r"/portal/"))
    assert page.url == (
        f"{hotspot.url}/portal/{PUBLIC_KEY}/?routerId={ROUTER_ID}&mac={quote(MAC, safe='')}&ip={IP}"
        f"&link-login-only={quote(hotspot.url + '/login', safe='')}&link-orig={quote(ORIGINAL_URL, safe='')}"
        "#code=ABCDEFGHJKLM"
    )


def test_the_hotspots_own_login_when_the_portal_cannot_be_reached(page, hotspot):
    hotspot.error = FAILED_LOGIN
    page.goto(f"{hotspot.url}/login")
    page.fill("#code", "k7pq-2mxa")
    page.click("#direct")
    page.wait_for_selector("text=You are logged in")
    [login] = hotspot.logins
    assert login == {"username": ["K7PQ2MXA"], "password": ["K7PQ2MXA"], "dst": [ORIGINAL_URL]}


def test_an_empty_box_goes_nowhere(page, hotspot):
    hotspot.error = FAILED_LOGIN
    page.goto(f"{hotspot.url}/login")
    page.click("#connect")
    page.fill("#code", " - ")
    page.click("#connect")
    page.click("#direct")
    page.wait_for_timeout(300)
    assert page.url.endswith("/login") and hotspot.logins == []


def test_an_empty_code_in_the_fragment_is_no_code(page, hotspot):
    page.goto(f"{hotspot.url}/login#code=")
    page.wait_for_url(re.compile(r"/portal/"))
    assert "#" not in page.url


@pytest.mark.parametrize("fragment", ["code=%E0%A4%A", "code=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "x=1&code=ab"])
def test_odd_fragments_stay_harmless(page, hotspot, fragment):
    page.goto(f"{hotspot.url}/login#{fragment}")
    page.wait_for_timeout(300)
    if fragment == "code=%E0%A4%A":  # malformed: no code, so off to the portal as usual
        page.wait_for_url(re.compile(r"/portal/"))
        return
    assert page.url.endswith("/login#" + fragment)
    assert page.input_value("#code") in {"<IMGSRC=XONERROR=ALERT(1)>", "AB"}


def test_kiswahili_switch(page, hotspot):
    hotspot.error = FAILED_LOGIN
    page.goto(f"{hotspot.url}/login")
    page.click("#lang")
    assert page.evaluate("document.documentElement.lang") == "sw"
    assert page.locator("label[for=code]").inner_text() == "Una msimbo?"
    assert page.locator("[role=alert]").inner_text() == f"Hotspot imesema: {FAILED_LOGIN}"
    assert page.inner_text("#connect") == "Unganisha" and page.inner_text("#lang") == "English"
    page.fill("#code", "SGL4ABC123")
    page.click("#connect")
    page.wait_for_url(re.compile(r"/portal/"))
    assert portal_query(page.url)["lang"] == "sw" and page.url.endswith("#code=SGL4ABC123")
