"""The reference React portal (examples/react-portal/) in Chromium, served from another origin than the API.

Its production build (`make react-portal`) is served by a small static server on its own port with a
config.json written for this run, while daphne runs the API with its simulators as `make run` does. A
customer opens it as the hotspot's login.html sends them there, picks a package, pays by STK push,
approves on the simulator's phone, sees the access code and "Connected", and is logged in on the
(simulated) hotspot: once over the graphql-ws subscription, once with WebSockets blocked, by polling.

Runs only where CI asks for it (CLOUDPILOT_REACT_PORTAL_TESTS=1, on one of its passes): it needs node's
build, and three passes running it would prove nothing more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from billing.management.commands.seed_demo import DEMO_IP, DEMO_MAC
from tests.live import REPO, free_port

pytestmark = [
    pytest.mark.once,
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CLOUDPILOT_REACT_PORTAL_TESTS") != "1",
        reason="set CLOUDPILOT_REACT_PORTAL_TESTS=1 (CI's sqlite pass does) after `make react-portal`",
    ),
]

DIST = REPO / "examples" / "react-portal" / "dist"
if os.environ.get("CLOUDPILOT_REACT_PORTAL_TESTS") == "1":
    if shutil.which("npm") is None:
        pytest.skip("needs node and npm to build examples/react-portal", allow_module_level=True)
    if not (DIST / "index.html").exists():
        pytest.skip(f"{DIST}/index.html is missing: build it with `make react-portal`", allow_module_level=True)

# The built-in portal's browser test owns the live demo server and the Chromium set-up; reused as they are.
from tests.e2e import test_portal_browser as builtin_portal  # noqa: E402

Browser = builtin_portal.Browser
Demo = builtin_portal.Demo
PHONE = builtin_portal.PHONE
approve_or_decline_on_phone = builtin_portal.approve_or_decline_on_phone
sync_api = builtin_portal.sync_api
demo = builtin_portal.demo  # fixtures
browser = builtin_portal.browser

ORIGINAL_URL = "http://example.com/news"


class StaticSite(SimpleHTTPRequestHandler):
    """dist/ as a CDN would serve it, plus this run's config.json (dist itself is left untouched)."""

    def __init__(self, *args, config: bytes, **kwargs) -> None:
        self.config = config
        super().__init__(*args, directory=str(DIST), **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if urlsplit(self.path).path == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        pass


@dataclass
class Site:
    url: str
    api_origin: str

    def portal_url(self, demo: Demo) -> str:
        """The portal as the hotspot's login.html opens it (router, device, the hotspot's login URL)."""
        login = f"{demo.url}/simulator/router/login?" + urlencode({"mac": DEMO_MAC, "ip": DEMO_IP})
        query = {"router": demo.router_id, "mac": DEMO_MAC, "ip": DEMO_IP, "link-login-only": login}
        return f"{self.url}/?{urlencode(query)}&link-orig={ORIGINAL_URL}"


@pytest.fixture
def site(demo: Demo) -> Iterator[Site]:
    """The build on a port of its own, its config.json pointing at the demo's API."""
    api = urlsplit(demo.url)
    config = {
        "apiUrl": f"{demo.url}/graphql/",
        "publicKey": demo.public_key,
        "hotspotAddresses": [api.netloc],  # the demo router's hotspotAddress: the simulated hotspot
    }
    handler = partial(StaticSite, config=json.dumps(config).encode())
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(url=f"http://127.0.0.1:{server.server_port}", api_origin=f"{api.scheme}://{api.netloc}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Traffic:
    """What the page sent to the API and heard back on its WebSockets."""

    api_requests: list = field(default_factory=list)  # playwright Requests to the API's /graphql/
    sockets: list = field(default_factory=list)  # playwright WebSockets
    frames_sent: list[dict] = field(default_factory=list)  # graphql-ws messages, JSON-decoded
    frames_received: list[dict] = field(default_factory=list)

    def operations(self, name: str) -> list[dict]:
        bodies = [json.loads(r.post_data) for r in self.api_requests if r.method == "POST" and r.post_data]
        return [body for body in bodies if body.get("operationName") == name]


def record_traffic(page, api_origin: str) -> Traffic:
    traffic = Traffic()

    def decoded(into: list, payload) -> None:
        try:
            into.append(json.loads(payload))
        except (TypeError, ValueError):
            pass

    def on_socket(socket) -> None:
        traffic.sockets.append(socket)
        socket.on("framesent", partial(decoded, traffic.frames_sent))
        socket.on("framereceived", partial(decoded, traffic.frames_received))

    page.on("websocket", on_socket)
    page.on("request", lambda r: r.url.startswith(api_origin + "/graphql/") and traffic.api_requests.append(r))
    return traffic


def pay_and_get_connected(browser: Browser, page, demo: Demo, site: Site, watched: str) -> str:
    """The whole pay flow in the portal, up to "Connected" (the payment `watched` "live" or by "polling")."""
    expect = sync_api.expect
    page.goto(site.portal_url(demo))
    assert page.evaluate("location.origin") == site.url
    page.wait_for_selector("#step-order input[type=radio]")
    assert page.locator("#step-order .package").count() == 3
    expect(page.locator("#status")).to_have_text("Choose a package")
    browser.screenshot(page, "packages")
    page.locator(f"#package-{demo.package_id}").check()
    expect(page.locator("#status")).to_have_text("Enter your phone number")
    page.fill("#phone", PHONE)
    page.click("#pay")
    expect(page.locator("#status")).to_have_text("Check your phone")
    expect(page.locator("#wait-detail")).to_contain_text(f"We sent a payment request to {PHONE}")
    browser.screenshot(page, "waiting-for-phone")

    approve_or_decline_on_phone(browser, demo, "approve")

    expect(page.locator("#status")).to_have_text("Connected", timeout=30_000)
    code = page.locator("#access-code").inner_text().strip()
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", code), code
    expect(page.locator("#done-detail")).to_contain_text("Keep this code")
    expect(page.locator("#errors")).to_have_count(0)
    expect(page.locator("main")).to_have_attribute("data-watch-mode", watched)
    browser.screenshot(page, "connected")
    return code


def assert_logged_in_on_the_hotspot(browser: Browser, page, demo: Demo, code: str) -> None:
    """A few seconds after "Connected" the portal posts the code to the hotspot's login URL."""
    expect = sync_api.expect
    page.wait_for_url(re.compile(r"/simulator/router/login"), timeout=15_000)
    expect(page.locator("#hotspot-status")).to_have_attribute("data-state", "logged-in")
    expect(page.locator("#hotspot-user")).to_have_text(code)
    expect(page.get_by_role("link", name=re.compile("Continue to"))).to_have_attribute("href", ORIGINAL_URL)
    browser.screenshot(page, "hotspot-login")
    [session] = [s for s in demo.router_state()["active"] if s["user"] == code]
    assert (session["mac-address"], session["address"]) == (DEMO_MAC, DEMO_IP)


def assert_cross_origin_with_the_secret(traffic: Traffic, site: Site) -> str:
    """Every API call came from the portal's own origin; the payment was read only with its clientSecret."""
    assert site.url != site.api_origin
    assert traffic.api_requests
    assert {urlsplit(r.url).netloc for r in traffic.api_requests} == {urlsplit(site.api_origin).netloc}
    assert {r.header_value("origin") for r in traffic.api_requests} == {site.url}
    [initiate] = traffic.operations("InitiatePayment")
    variables = initiate["variables"]["input"]
    assert len(variables["idempotencyKey"]) >= 32
    assert (variables["macAddress"], variables["ipAddress"]) == (DEMO_MAC, DEMO_IP)
    [answer] = [r for r in traffic.api_requests if '"operationName":"InitiatePayment"' in (r.post_data or "")]
    payment = answer.response().json()["data"]["initiatePayment"]["payment"]
    assert len(payment["clientSecret"]) >= 40
    reads = traffic.operations("Payment") + traffic.operations("CheckPaymentStatus")
    assert all(read["variables"]["clientSecret"] == payment["clientSecret"] for read in reads)
    return payment["clientSecret"]


def test_pay_by_stk_push_followed_live_over_graphql_ws(demo: Demo, site: Site, browser: Browser) -> None:
    page = browser.new_page()
    traffic = record_traffic(page, site.api_origin)

    code = pay_and_get_connected(browser, page, demo, site, watched="live")

    secret = assert_cross_origin_with_the_secret(traffic, site)
    [socket] = traffic.sockets
    assert socket.url == f"ws://{urlsplit(site.api_origin).netloc}/graphql/"
    [init] = [f for f in traffic.frames_sent if f.get("type") == "connection_init"]
    assert init["payload"] == {"X-Public-Key": demo.public_key}
    [subscribe] = [f for f in traffic.frames_sent if f.get("type") == "subscribe"]
    assert subscribe["payload"]["variables"]["clientSecret"] == secret
    updates = [
        f["payload"]["data"]["paymentUpdates"]
        for f in traffic.frames_received
        if f.get("type") == "next" and (f.get("payload") or {}).get("data")
    ]
    assert [u["status"] for u in updates][0] == "PROCESSING"
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["activation"]["status"] == "ACTIVE"
    assert updates[-1]["activation"]["accessCode"] == code
    assert not traffic.operations("Payment"), "the portal polled although its subscription worked"

    assert_logged_in_on_the_hotspot(browser, page, demo, code)
    assert not [p for p in browser.problems if "JS error" in p], browser.problems


def test_with_websockets_blocked_it_completes_by_polling(demo: Demo, site: Site, browser: Browser) -> None:
    page = browser.new_page()
    traffic = record_traffic(page, site.api_origin)
    # What a proxy or firewall that drops WebSockets does: every socket is closed before the server sees it.
    blocked: list[str] = []

    def block(socket) -> None:
        blocked.append(socket.url)
        socket.close()

    page.route_web_socket(re.compile(".*"), block)

    code = pay_and_get_connected(browser, page, demo, site, watched="polling")

    assert_cross_origin_with_the_secret(traffic, site)
    assert blocked == [f"ws://{urlsplit(site.api_origin).netloc}/graphql/"]  # tried once, then polled
    assert not [f for f in traffic.frames_received if f.get("type") in ("connection_ack", "next")]
    assert len(traffic.operations("Payment")) >= 2  # polled until the activation answered

    assert_logged_in_on_the_hotspot(browser, page, demo, code)


def test_pay_by_link_on_the_checkout_page(demo: Demo, site: Site, browser: Browser) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    traffic = record_traffic(page, site.api_origin)
    page.goto(site.portal_url(demo))
    page.locator(f"#package-{demo.package_id}").check()
    page.click("#pay-link")
    expect(page.locator("#status")).to_have_text("Waiting for your payment")
    link = page.locator("#payment-link")
    [created] = [r for r in traffic.api_requests if '"operationName":"CreatePaymentLink"' in (r.post_data or "")]
    payment_url = created.response().json()["data"]["createPaymentLink"]["payment"]["paymentUrl"]
    expect(link).to_have_attribute("href", payment_url)
    browser.screenshot(page, "link")

    with page.context.expect_page() as opened:
        link.click()
    checkout = opened.value
    checkout.fill("#phone_number", PHONE)
    checkout.click("#pay")
    expect(checkout.get_by_text("Payment complete")).to_be_visible()
    checkout.close()

    expect(page.locator("#status")).to_have_text("Connected", timeout=30_000)
    expect(page.locator("main")).to_have_attribute("data-watch-mode", "live")
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", page.locator("#access-code").inner_text().strip())


def test_an_invalid_phone_number_shows_the_error_and_sends_no_prompt(demo: Demo, site: Site, browser: Browser) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    page.goto(site.portal_url(demo))
    page.locator(f"#package-{demo.package_id}").check()
    page.fill("#phone", "12345")
    page.click("#pay")

    error = page.locator("#errors li")
    expect(error).to_have_count(1)
    expect(error).to_have_attribute("data-code", "INVALID_PHONE")
    expect(error).to_have_text("Enter a Safaricom/Airtel number like 0712 345 678.")
    expect(page.locator("#step-order")).to_be_visible()
    expect(page.locator("#pay")).to_be_enabled()
    browser.screenshot(page, "invalid-phone")
    phone_page = requests.get(f"{demo.url}/simulator/phone/", timeout=5).text
    assert 'id="no-prompts"' in phone_page  # no STK push was sent
