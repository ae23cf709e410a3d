"""Getting back online with a code, in a real browser against a live server (the harness of test_portal_browser).

A voucher (typed, or from its QR code's #code= fragment) puts the device online on the simulated router;
its code then logs in further devices until the package's sharedUsers, and the next one is told the code
is in use on that many devices; an M-Pesa receipt reconnects a second device; a returning device sees
"Connected until …" from the code it kept, and forgets a code whose time is over. Vouchers are made with
the ORM in the test database; everything else goes through the portal.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.utils import timezone

from billing.management.commands.seed_demo import DEMO_IP, DEMO_MAC
from billing.models import OperatorProfile, Payment, Voucher, VoucherBatch
from network.models import Activation, Package, Router
from network.services import package_profile_sync
from tests.e2e import test_portal_browser as harness
from tests.e2e.test_portal_browser import (
    CONNECTED_UNTIL,
    PHONE,
    Browser,
    Demo,
    approve_or_decline_on_phone,
    choose_package_and_pay,
    no_js_errors,
    orm,
    sync_api,
)

pytestmark = harness.pytestmark
demo = harness.demo
browser = harness.browser
expect = sync_api.expect

DEVICES = [(DEMO_MAC, DEMO_IP), ("02:00:00:00:00:02", "10.5.50.3"), ("02:00:00:00:00:03", "10.5.50.4")]


def make_voucher(demo: Demo, code: str, *, shared_users: int = 1) -> None:
    def make():
        router = Router.objects.get(pk=demo.router_id)
        package = Package.objects.get(pk=demo.package_id)
        if package.shared_users != shared_users:
            package.shared_users = shared_users
            package.save(update_fields=["shared_users"])
            package_profile_sync(package_id=package.pk)  # as updatePackage's job does: activation leaves profiles be
        batch = VoucherBatch.objects.create(
            owner=router.owner, router=router, package=package, price=package.price, count=1
        )
        Voucher.objects.create(batch=batch, router=router, code=code)

    orm(make)


def device_url(demo: Demo, device: int) -> str:
    """The portal as the hotspot's login.html opens it for one of three devices."""
    mac, ip = DEVICES[device]
    login = f"{demo.url}/simulator/router/login?" + urlencode({"mac": mac, "ip": ip})
    query = {"routerId": demo.router_id, "mac": mac, "ip": ip, "link-login-only": login}
    return f"{demo.url}/portal/{demo.public_key}/?{urlencode(query)}"


def new_device(browser: Browser):
    """Another phone: its own browser context, so nothing of the first device's storage."""
    context = browser.browser.new_context(viewport={"width": 420, "height": 860}, locale="en-GB")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("pageerror", lambda error: browser.problems.append(f"{page.url}: JS error: {error}"))
    return page


def type_code(page, code: str) -> None:
    page.wait_for_selector("#packages input[type=radio]")
    page.fill("#code-input", code)
    page.click("#code-submit")


def logged_in_on_hotspot(page, code: str) -> None:
    page.wait_for_url(re.compile(r"/simulator/router/login"), timeout=15_000)
    expect(page.locator("#hotspot-status")).to_have_attribute("data-state", "logged-in")
    expect(page.locator("#hotspot-user")).to_have_text(code)


def sessions(demo: Demo, code: str) -> list[str]:
    return sorted(s["mac-address"] for s in demo.router_state()["active"] if s["user"] == code)


def test_a_vouchers_qr_code_puts_the_device_online(demo: Demo, browser: Browser) -> None:
    """The sheet's QR code opens login.html with #code=…, which hands it to the portal: no typing."""
    make_voucher(demo, "ABCDEFGHJKLM")
    page = browser.new_page()
    page.goto(device_url(demo, 0) + "#code=abcd-efgh-jklm")  # as printed, in any case

    expect(page.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    expect(page.locator("#access-code")).to_have_text("ABCDEFGHJKLM")
    assert "#code" not in page.url  # a reload does not redeem it again
    browser.screenshot(page, "voucher-connected")
    assert orm(lambda: Voucher.objects.get(code="ABCDEFGHJKLM").status) == Voucher.Status.REDEEMED

    logged_in_on_hotspot(page, "ABCDEFGHJKLM")
    assert sessions(demo, "ABCDEFGHJKLM") == [DEMO_MAC]
    [user] = [u for u in demo.router_state()["users"] if u["name"] == "ABCDEFGHJKLM"]
    assert user["profile"] == demo.package_profile
    browser.screenshot(page, "voucher-hotspot-login")
    no_js_errors(browser)


def test_one_code_logs_in_devices_up_to_shared_users_then_says_it_is_in_use(demo: Demo, browser: Browser) -> None:
    make_voucher(demo, "23456789ABCD", shared_users=2)
    first = new_device(browser)
    first.goto(device_url(demo, 0))
    type_code(first, " 2345 6789 abcd ")  # spaces and lower case, as people type
    expect(first.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    logged_in_on_hotspot(first, "23456789ABCD")

    second = new_device(browser)
    second.goto(device_url(demo, 1))
    type_code(second, "2345-6789-ABCD")
    expect(second.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    browser.screenshot(second, "second-device")
    logged_in_on_hotspot(second, "23456789ABCD")
    assert sessions(demo, "23456789ABCD") == sorted([DEVICES[0][0], DEVICES[1][0]])

    third = new_device(browser)
    third.goto(device_url(demo, 2))
    type_code(third, "23456789ABCD")
    error = third.locator("#code-error")
    expect(error).to_have_text("This code is already in use on 2 devices, as many as its package allows.")
    expect(error).to_have_attribute("data-code", "DEVICE_LIMIT_REACHED")
    expect(third.locator("#step-order")).to_be_visible()  # buying is right there
    browser.screenshot(third, "device-limit")
    assert len(sessions(demo, "23456789ABCD")) == 2
    no_js_errors(browser)


def test_an_mpesa_receipt_reconnects_another_device(demo: Demo, browser: Browser) -> None:
    # A package for two devices: the phone that paid stays online while the laptop joins.
    orm(lambda: Package.objects.filter(pk=demo.package_id).update(shared_users=2))
    orm(lambda: package_profile_sync(package_id=demo.package_id))  # as updatePackage's job does
    page = browser.new_page()
    page.goto(demo.portal_url())
    choose_package_and_pay(browser, page, demo, PHONE)
    approve_or_decline_on_phone(browser, demo, "approve")
    expect(page.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    code = page.locator("#access-code").inner_text().strip()
    receipt = orm(lambda: Payment.objects.get(activation__access_code=code).mpesa_reference)
    assert re.fullmatch(r"[A-Z][A-Z0-9]{9}", receipt), receipt

    # The customer's laptop: no storage, only the SMS from M-Pesa.
    laptop = new_device(browser)
    laptop.goto(device_url(demo, 1))
    type_code(laptop, receipt.lower())
    expect(laptop.locator("#status")).to_have_text(CONNECTED_UNTIL, timeout=30_000)
    expect(laptop.locator("#access-code")).to_have_text(code)  # the grant's code, to keep
    browser.screenshot(laptop, "receipt-connected")
    logged_in_on_hotspot(laptop, code)
    assert sessions(demo, code) == sorted([DEVICES[0][0], DEVICES[1][0]])
    no_js_errors(browser)


def test_a_returning_device_sees_connected_until_and_forgets_an_expired_code(demo: Demo, browser: Browser) -> None:
    make_voucher(demo, "MNPQRSTUVWXY")
    page = browser.new_page()
    page.goto(device_url(demo, 0))
    type_code(page, "MNPQ-RSTU-VWXY")
    logged_in_on_hotspot(page, "MNPQRSTUVWXY")

    # Later: the hotspot sends the device to the portal again.
    page.goto(device_url(demo, 0))
    expect(page.locator("#status")).to_have_text(CONNECTED_UNTIL)
    expect(page.locator("#held-code")).to_have_text("MNPQRSTUVWXY")
    expect(page.locator("#step-home")).to_be_visible()
    browser.screenshot(page, "returning-device")
    page.click("#buy-more")  # buying more stays one tap away
    expect(page.locator("#step-order")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Choose a package")

    page.goto(device_url(demo, 0))
    page.click("#go-online")
    logged_in_on_hotspot(page, "MNPQRSTUVWXY")

    # The time is over: the code is forgotten and the device sees the buy page.
    orm(
        lambda: Activation.objects.filter(access_code="MNPQRSTUVWXY").update(
            status=Activation.Status.EXPIRED, expires_at=timezone.now()
        )
    )
    page.goto(device_url(demo, 0))
    expect(page.locator("#status")).to_have_text("Choose a package")
    expect(page.locator("#step-order")).to_be_visible()
    key = f"cloudpilot.code.{demo.public_key}.{demo.router_id}"
    assert page.evaluate(f"localStorage.getItem('{key}')") is None
    no_js_errors(browser)


def test_a_wrong_code_in_swahili(demo: Demo, browser: Browser) -> None:
    orm(lambda: OperatorProfile.objects.filter(public_key=demo.public_key).update(language="SW"))
    page = browser.new_page()
    page.goto(device_url(demo, 0))
    type_code(page, "ZZZZ-ZZZZ-ZZZZ")
    expect(page.locator("#code-error")).to_have_text(
        "Msimbo huo si halali kwenye hotspot hii. Uangalie kisha ujaribu tena."
    )
    expect(page.locator("#code-error")).to_have_attribute("data-code", "CODE_INVALID")
    browser.screenshot(page, "wrong-code-swahili")
    assert demo.router_state()["active"] == []
    no_js_errors(browser)


def router_goes_down(demo: Demo) -> None:
    """The router stops answering: its API port now leads nowhere."""
    orm(lambda: Router.objects.filter(pk=demo.router_id).update(api_port=harness.free_port()))


def test_a_good_code_while_the_router_is_down_is_shown_to_type_on_the_hotspot(demo: Demo, browser: Browser) -> None:
    make_voucher(demo, "QRSTUVWXYZ23", shared_users=2)
    first = new_device(browser)
    first.goto(device_url(demo, 0))
    type_code(first, "QRSTUVWXYZ23")
    logged_in_on_hotspot(first, "QRSTUVWXYZ23")

    router_goes_down(demo)
    second = new_device(browser)
    second.goto(device_url(demo, 1))
    type_code(second, "qrst-uvwx-yz23")
    expect(second.locator("#code-error")).to_have_text(
        "The hotspot is not answering right now. Type your code QRSTUVWXYZ23 on the hotspot's login page, "
        "or try again shortly."
    )
    expect(second.locator("#code-error")).to_have_attribute("data-code", "ROUTER_UNREACHABLE")
    browser.screenshot(second, "router-down")
    key = f"cloudpilot.code.{demo.public_key}.{demo.router_id}"
    assert second.evaluate(f"localStorage.getItem('{key}')") == "QRSTUVWXYZ23"  # a good code, kept
    no_js_errors(browser)


def test_a_voucher_while_the_router_is_down_shows_its_code_at_once(demo: Demo, browser: Browser) -> None:
    make_voucher(demo, "RSTUVWXYZ234")
    router_goes_down(demo)
    page = browser.new_page()
    page.goto(device_url(demo, 0) + "#code=RSTU-VWXY-Z234")
    expect(page.locator("#done-detail")).to_have_text(
        "The hotspot is slow to answer; you will be connected automatically, or enter this code later.",
        timeout=15_000,
    )
    expect(page.locator("#access-code")).to_have_text("RSTUVWXYZ234")
    expect(page.locator("#step-done")).to_be_visible()
    browser.screenshot(page, "voucher-router-down")
    no_js_errors(browser)
