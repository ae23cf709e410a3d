"""The captive portal in a real browser (headless Chromium, driven by Playwright), against a live server.

Daphne runs as `make run` does (DEBUG off, simulators on, the IntaSend simulator found from PORT) with
its RouterOS simulator on a free port, and the demo data seeded into the test database. A customer
opens the portal the way the hotspot's login.html sends them there, buys a package, approves the
M-Pesa prompt on the simulator's phone page, watches the portal turn "Connected" over the
``paymentUpdates`` subscription, and is then logged in on the (simulated) hotspot; the router's
tables show their hotspot user. The decline path and an invalid phone number end with the portal's
messages. Screenshots of the key steps go to ``test-artifacts/screenshots/``.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package (test extra);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from billing.management.commands.seed_demo import DEMO_IP, DEMO_MAC
from billing.models import OperatorProfile
from network.models import Package, Router
from tests.live import REPO, Daphne, Process, base_env, free_port, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PHONE = "0712345678"
ORIGINAL_URL = "http://example.com/news"
# "Connected until Mon 30 Nov, 18:05": the grant's end, in the operator's time zone
CONNECTED_UNTIL = re.compile(r"^Connected until [A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}, \d\d:\d\d$")

pytestmark = [
    pytest.mark.once,
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")


class DemoServer(Daphne):
    """Daphne on a port chosen up front and passed as PORT, so settings derive their own URLs from it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"]
        Process.__init__(self, "daphne", argv, {**env, "PORT": str(self.port)}, log_dir)


@dataclass
class Demo:
    server: DemoServer
    public_key: str
    router_id: int
    package_id: int  # "1 hour"
    package_profile: str

    @property
    def url(self) -> str:
        return self.server.url

    def portal_url(self, *, login: bool = True) -> str:
        """The portal as the hotspot's login.html opens it for the demo device."""
        query = {"routerId": self.router_id, "mac": DEMO_MAC, "ip": DEMO_IP}
        if login:
            # The hotspot's login URL: the router simulator's login page, told which device this is.
            query["link-login-only"] = f"{self.url}/simulator/router/login?" + urlencode(
                {"mac": DEMO_MAC, "ip": DEMO_IP}
            )
            query["link-orig"] = ORIGINAL_URL
        return f"{self.url}/portal/{self.public_key}/?{urlencode(query)}"

    def router_state(self) -> dict:
        response = requests.get(f"{self.url}/simulator/router/state.json", timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def demo(settings, tmp_path) -> Iterator[Demo]:
    """`make run` in miniature: daphne with its RouterOS simulator on a free port, the demo seeded."""
    router_port = free_port()
    env = base_env(
        tmp_path,
        DEBUG="0",
        SIMULATORS_ENABLED="1",
        ROUTEROS_SIMULATOR_AUTOSTART="1",
        ROUTEROS_SIMULATOR_PORT=str(router_port),
    )
    env.pop("INTASEND_API_BASE_URL", None)
    env.pop("INTASEND_CALLBACK_URL", None)
    server = DemoServer(env, tmp_path)
    with running(server):
        server.wait_healthy()
        # Seeded once the router answers: the packages' profile syncs (run inline here) reach it.
        settings.ROUTEROS_SIMULATOR_PORT = router_port
        settings.SERVER_URL = server.url  # the demo router's hotspotAddress: where the portal may post codes
        call_command("seed_demo", stdout=StringIO())
        router = Router.objects.get(name="Demo router (simulator)")
        assert router.api_port == router_port
        package = Package.objects.get(router=router, name="1 hour")
        public_key = OperatorProfile.objects.get(user__username="demo").public_key
        yield Demo(server, public_key, router.pk, package.pk, package.profile_name)


class Browser:
    """One Chromium for the test; pages record their console errors and JS exceptions."""

    def __init__(self, browser, name: str) -> None:
        self.browser = browser
        self.name = name
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": 420, "height": 860}, locale="en-GB")
        self.context.set_default_timeout(20_000)
        self.step = 0

    def new_page(self, viewport: dict[str, int] | None = None):
        page = self.context.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: JS error: {error}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status} {r.url}"))
        page.on(
            "console",
            lambda message: message.type == "error" and self.problems.append(f"{page.url}: console: {message.text}"),
        )
        return page

    def screenshot(self, page, label: str) -> Path:
        self.step += 1
        path = SCREENSHOTS / f"{self.name}-{self.step:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def orm(work):
    """Run ORM work off the test's thread: Playwright's sync API keeps an event loop running on it."""

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def no_js_errors(browser: Browser) -> None:
    assert not [p for p in browser.problems if "JS error" in p], browser.problems


@pytest.fixture
def browser(request) -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name.removeprefix("test_")).strip("-")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        session = Browser(chromium, name)
        try:
            yield session
        finally:
            if session.problems:
                sys.stderr.write("\n----- browser console -----\n" + "\n".join(session.problems) + "\n")
            chromium.close()


def choose_package_and_pay(browser: Browser, page, demo: Demo, phone: str) -> None:
    page.wait_for_selector("#packages input[type=radio]")
    assert page.locator("#packages .package").count() == 3
    expect = sync_api.expect
    expect(page.locator("#status")).to_have_text("Choose a package")
    browser.screenshot(page, "packages")
    page.locator(f"#package-{demo.package_id}").check()
    expect(page.locator("#status")).to_have_text("Enter your phone number")
    page.fill("#phone", phone)
    page.click("#pay")


def websocket_frames(page) -> list[dict]:
    """Every graphql-transport-ws message the page receives (JSON-decoded), as it arrives."""
    frames: list[dict] = []

    def on_socket(socket) -> None:
        def received(payload) -> None:
            try:
                frames.append(json.loads(payload))
            except (TypeError, ValueError):
                pass

        socket.on("framereceived", received)

    page.on("websocket", on_socket)
    return frames


def graphql_posts(page) -> list[str]:
    """The bodies of the page's GraphQL POSTs (to tell the subscription from the polling fallback)."""
    bodies: list[str] = []
    page.on(
        "request", lambda req: req.method == "POST" and "/graphql/" in req.url and bodies.append(req.post_data or "")
    )
    return bodies


def approve_or_decline_on_phone(browser: Browser, demo: Demo, action: str) -> None:
    """The customer's phone: the STK prompt for the demo number, answered."""
    phone = browser.new_page({"width": 420, "height": 760})
    phone.goto(f"{demo.url}/simulator/phone/")
    prompt = phone.locator(".prompt")
    sync_api.expect(prompt).to_have_count(1)
    assert prompt.get_attribute("data-phone") == "254712345678"
    sync_api.expect(prompt.locator(".amount")).to_have_text("Pay KES 20")
    browser.screenshot(phone, "phone")
    prompt.locator(f"button.{action}").click()
    sync_api.expect(phone.locator(".messages li")).to_contain_text("approved" if action == "approve" else "declined")
    browser.screenshot(phone, f"phone-{action}d")
    phone.close()


def test_pay_approve_on_phone_and_go_online(demo: Demo, browser: Browser) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    frames = websocket_frames(page)
    posts = graphql_posts(page)
    page.goto(demo.portal_url())

    choose_package_and_pay(browser, page, demo, PHONE)
    expect(page.locator("#status")).to_have_text("Check your phone")
    expect(page.locator("#step-wait")).to_be_visible()
    expect(page.locator("#wait-detail")).to_have_text(
        "We sent a request for KES 20 (1 hour) to 0712***678. Enter your M-Pesa PIN to pay."
    )
    browser.screenshot(page, "waiting-for-phone")

    approve_or_decline_on_phone(browser, demo, "approve")

    # The webhook arrives, IntaSend's status API confirms it, the activation job puts the customer on
    # the router: the portal hears each step over its subscription.
    expect(page.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    code = page.locator("#access-code").inner_text().strip()
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", code), code
    expect(page.locator("#done-detail")).to_contain_text("Keep this code")
    expect(page.locator("#error")).to_be_hidden()
    browser.screenshot(page, "connected")

    updates = [
        f["payload"]["data"]["paymentUpdates"]
        for f in frames
        if f.get("type") == "next" and (f.get("payload") or {}).get("data")
    ]
    assert updates, f"no subscription updates reached the page: {frames}"
    assert updates[0]["status"] == "PROCESSING"
    assert updates[-1]["status"] == "COMPLETED"
    assert updates[-1]["activation"] == {
        "status": "ACTIVE",
        "accessCode": code,
        "lastError": None,
        "expiresAt": updates[-1]["activation"]["expiresAt"],
    }
    assert not any("payment(id:" in body for body in posts), "the portal fell back to polling"

    # The router: a hotspot user named by the code, on the package's profile, online with the device.
    state = demo.router_state()
    [user] = [u for u in state["users"] if u["name"] == code]
    assert user["profile"] == demo.package_profile
    assert user["limit-uptime"] == "3600s"
    assert "password" not in user
    profiles = {p["name"]: p.get("rate-limit") for p in state["profiles"]}
    assert profiles[demo.package_profile] == "2048k/5120k"
    assert len(profiles) == 4  # "default" and the three packages' (synced when they were created)
    [session] = [s for s in state["active"] if s["user"] == code]
    assert (session["mac-address"], session["address"]) == (DEMO_MAC, DEMO_IP)

    router_page = browser.new_page({"width": 1200, "height": 900})
    router_page.goto(f"{demo.url}/simulator/router/")
    expect(router_page.locator(f'#table-users tr[data-key="{code}"]')).to_contain_text(demo.package_profile)
    expect(router_page.locator(f'#table-active tr[data-key="{code}"]')).to_contain_text(DEMO_MAC)
    browser.screenshot(router_page, "router")

    # Three seconds after "Connected" the portal posts the code to the hotspot's login URL.
    page.wait_for_url(re.compile(r"/simulator/router/login"), timeout=15_000)
    expect(page.locator("#hotspot-status")).to_have_attribute("data-state", "logged-in")
    expect(page.locator("#hotspot-user")).to_have_text(code)
    expect(page.get_by_role("link", name=re.compile("Continue to"))).to_have_attribute("href", ORIGINAL_URL)
    browser.screenshot(page, "hotspot-login")
    assert [s["user"] for s in demo.router_state()["active"]] == [code]  # the re-login replaced the session

    no_js_errors(browser)


def test_declined_prompt_shows_the_failure(demo: Demo, browser: Browser) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    page.goto(demo.portal_url())
    choose_package_and_pay(browser, page, demo, "+254 712 345 678")
    expect(page.locator("#status")).to_have_text("Check your phone")

    approve_or_decline_on_phone(browser, demo, "decline")

    expect(page.locator("#status")).to_have_text("Payment failed", timeout=30_000)
    expect(page.locator("#step-failed")).to_be_visible()
    expect(page.locator("#failure-reason")).to_have_text("The M-Pesa request was cancelled, so nothing was charged.")
    browser.screenshot(page, "declined")
    assert demo.router_state()["users"] == []

    page.click("#retry")  # back to the order form, the package still chosen
    expect(page.locator("#status")).to_have_text("Enter your phone number")
    expect(page.locator("#step-order")).to_be_visible()
    no_js_errors(browser)


@pytest.mark.parametrize("phone", ["12345", "0812345678"])
def test_invalid_phone_number_shows_the_message_and_sends_nothing(demo: Demo, browser: Browser, phone: str) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    page.goto(demo.portal_url())
    choose_package_and_pay(browser, page, demo, phone)

    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_have_text("Enter a Safaricom/Airtel number like 0712 345 678.")
    expect(error).to_have_attribute("data-code", "INVALID_PHONE")
    expect(page.locator("#step-order")).to_be_visible()
    expect(page.locator("#pay")).to_be_enabled()
    assert page.evaluate("document.activeElement.id") == "phone"
    browser.screenshot(page, "invalid-phone")

    phone_page = requests.get(f"{demo.url}/simulator/phone/", timeout=5).text
    assert 'id="no-prompts"' in phone_page  # no STK push was sent
    no_js_errors(browser)


def test_a_reload_while_waiting_follows_the_payment_with_its_client_secret(demo: Demo, browser: Browser) -> None:
    """The public key proves nothing: the portal keeps the payment's clientSecret (localStorage, so a
    reload, a second tab or the trip to a checkout page keeps it) and sends it with every read."""
    expect = sync_api.expect
    page = browser.new_page()
    posts = graphql_posts(page)
    page.goto(demo.portal_url())
    choose_package_and_pay(browser, page, demo, PHONE)
    expect(page.locator("#status")).to_have_text("Check your phone")
    [initiate] = [json.loads(body) for body in posts if "initiatePayment" in body]
    assert len(initiate["variables"]["input"]["idempotencyKey"]) >= 32
    saved = json.loads(page.evaluate(f"localStorage.getItem('cloudpilot.payment.{demo.public_key}')"))
    assert len(saved["secret"]) >= 40
    # What to say on the way back: never the whole phone number.
    assert saved["about"] == {"pkg": "1 hour", "amount": "KES 20", "phone": "0712***678"}

    posts.clear()
    page.reload()
    expect(page.locator("#status")).to_have_text("Check your phone")
    reads = [json.loads(body) for body in posts if "payment(id:" in body]
    assert reads and all(read["variables"]["s"] == saved["secret"] for read in reads)
    expect(page.locator("#wait-detail")).to_contain_text("KES 20 (1 hour) to 0712***678")

    # A second tab follows the same payment, with the same explanation.
    second = browser.new_page()
    second.goto(demo.portal_url(login=False))
    expect(second.locator("#status")).to_have_text("Check your phone")
    expect(second.locator("#wait-detail")).to_contain_text("KES 20 (1 hour) to 0712***678")

    approve_or_decline_on_phone(browser, demo, "approve")
    expect(second.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    expect(page.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", page.locator("#access-code").inner_text().strip())
    no_js_errors(browser)
