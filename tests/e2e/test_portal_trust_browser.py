"""The portal customers trust, in a real browser against a live server (the harness of test_portal_browser).

The operator's name, message and support line in the header and on every error, set as text even when
they look like markup; an unknown router; the code at once when the router is slow after a payment;
English and Swahili, by the operator's default and by the customer's switch. Grants and payments are
made with the ORM in the test database; the portal only sees them through the public API.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from billing.models import OperatorProfile, Payment
from network.models import Activation, Package, Router
from tests.e2e import test_portal_browser as harness
from tests.e2e.test_portal_browser import Browser, Demo, no_js_errors, orm, sync_api

# The live server, the seeded demo and Chromium, exactly as the payment walk-through has them.
pytestmark = harness.pytestmark
demo = harness.demo
browser = harness.browser
expect = sync_api.expect
SUPPORT = "254712345678"


def set_profile(demo: Demo, **fields) -> None:
    orm(lambda: OperatorProfile.objects.filter(public_key=demo.public_key).update(**fields))


def test_header_and_errors_carry_the_operators_identity_as_text(demo: Demo, browser: Browser) -> None:
    """Operators type these: markup in them is shown as typed, never run or rendered."""
    name = 'Mama Njeri <img src=x onerror="document.title=1">'
    message = "Karibu!\n<b>Fast WiFi</b> all day"
    set_profile(demo, business_name=name, support_phone=SUPPORT, portal_message=message)
    page = browser.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(demo.portal_url())

    expect(page.locator("#business")).to_have_text(name)
    expect(page.locator("#portal-message")).to_have_text(message)
    expect(page.locator("#support-phone")).to_have_text("0712 345 678")
    expect(page.locator("#support-phone")).to_have_attribute("href", "tel:+254712345678")
    expect(page.locator(".mpesa")).to_have_text("M-PESA")
    assert page.locator("header img, header b, #portal-message b").count() == 0
    assert page.title() == f"{name} · Buy internet time"

    page.wait_for_selector("#packages input[type=radio]")
    page.locator(f"#package-{demo.package_id}").check()
    page.fill("#phone", "12345")
    page.click("#pay")
    expect(page.locator("#error")).to_have_text(
        f"Enter a Safaricom/Airtel number like 0712 345 678. Call {name} on 0712 345 678."
    )
    expect(page.locator("#error a")).to_have_attribute("href", "tel:+254712345678")
    assert page.locator("#error img").count() == 0
    browser.screenshot(page, "header-and-error")
    no_js_errors(browser)


def test_package_cards_say_each_thing_once_and_the_devices_allowed(demo: Demo, browser: Browser) -> None:
    orm(lambda: Package.objects.filter(pk=demo.package_id).update(shared_users=3))
    page = browser.new_page()
    page.goto(demo.portal_url())
    page.wait_for_selector("#packages input[type=radio]")
    metas = page.locator("#packages .meta").all_inner_texts()
    names = page.locator("#packages .name").all_inner_texts()
    cards = dict(zip(names, metas, strict=True))
    assert cards["1 hour"] == "up to 5 Mbps · Up to 3 devices"  # "1 hour" not said twice
    assert cards["1 day (1 GB)"] == "up to 5 Mbps"
    assert cards["30 minutes"] == "up to 2 Mbps"  # nor "30 min"
    browser.screenshot(page, "cards")
    no_js_errors(browser)


def test_an_unknown_router_is_not_set_up_for_payments(demo: Demo, browser: Browser) -> None:
    set_profile(demo, business_name="Mama Njeri WiFi", support_phone=SUPPORT)
    page = browser.new_page()
    page.goto(demo.portal_url().replace(f"routerId={demo.router_id}", "routerId=987654"))
    expect(page.locator("#status")).to_have_text("This hotspot is not set up for payments")
    expect(page.locator("#error")).to_contain_text("Call Mama Njeri WiFi on 0712 345 678.")
    expect(page.locator("#step-order")).to_be_hidden()
    browser.screenshot(page, "unknown-router")
    no_js_errors(browser)


def test_paid_while_the_router_is_slow_shows_the_code_at_once(demo: Demo, browser: Browser) -> None:
    """Not minutes of "Paid, connecting…": the code and the honest reason, then online when the router answers."""
    secret = secrets.token_urlsafe(36)

    def paid_with_a_pending_grant():
        router = Router.objects.get(pk=demo.router_id)
        package = Package.objects.get(pk=demo.package_id)
        grant = Activation.objects.create(
            owner=router.owner,
            router=router,
            package=package,
            status=Activation.Status.PENDING,
            access_code="SLOW2345",
            attempts=1,
            last_error="The router did not answer",
        )
        payment = Payment.objects.create(
            owner=router.owner,
            router=router,
            package=package,
            phone_number=SUPPORT,
            amount=Decimal("20"),
            status=Payment.Status.COMPLETED,
            completed_at=timezone.now(),
            client_secret=secret,
            activation=grant,
            intasend_invoice_id="INV-SLOW",
        )
        return grant, payment

    grant, payment = orm(paid_with_a_pending_grant)
    set_profile(demo, time_zone="Asia/Tokyo")
    page = browser.new_page()
    page.goto(demo.portal_url(login=False))
    saved = {
        "id": str(payment.id),
        "secret": secret,
        "at": int(time.time() * 1000),
        "about": {"pkg": "1 hour", "amount": "KES 20", "phone": "0712***678"},
        "link": False,
    }
    page.evaluate(f"localStorage.setItem('cloudpilot.payment.{demo.public_key}', {json.dumps(json.dumps(saved))})")
    page.reload()

    expect(page.locator("#status")).to_have_text("Paid: use your access code")
    expect(page.locator("#access-code")).to_have_text("SLOW2345")
    expect(page.locator("#done-detail")).to_have_text(
        "Paid. The hotspot is slow to answer; you will be connected automatically, or enter this code later."
    )
    browser.screenshot(page, "paid-router-slow")

    # The router answers: the page, still following the payment, says so, in the operator's time zone.
    ends = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=1)
    orm(
        lambda: Activation.objects.filter(pk=grant.pk).update(
            status=Activation.Status.ACTIVE, activated_at=timezone.now(), expires_at=ends, last_error=""
        )
    )
    local = ends.astimezone(ZoneInfo("Asia/Tokyo"))
    until = f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
    expect(page.locator("#status")).to_have_text(f"Connected until {until}", timeout=40_000)
    assert page.evaluate(f"localStorage.getItem('cloudpilot.code.{demo.public_key}.{demo.router_id}')") == "SLOW2345"
    no_js_errors(browser)


def test_the_portal_speaks_swahili_by_default_and_english_on_request(demo: Demo, browser: Browser) -> None:
    set_profile(demo, language="SW", business_name="Mama Njeri WiFi", support_phone=SUPPORT)
    page = browser.new_page()
    page.goto(demo.portal_url())
    page.wait_for_selector("#packages input[type=radio]")
    expect(page.locator("html")).to_have_attribute("lang", "sw")
    expect(page.locator("#status")).to_have_text("Chagua kifurushi")
    expect(page.locator("#pay")).to_have_text("Lipa kwa M-Pesa")
    expect(page.locator("label[for=code-input]")).to_have_text("Una msimbo?")
    assert "saa 1 · hadi 5 Mbps" in page.locator("#packages .meta").all_inner_texts()
    page.locator(f"#package-{demo.package_id}").check()
    expect(page.locator("#status")).to_have_text("Weka nambari yako ya simu")
    page.fill("#phone", "12345")
    page.click("#pay")
    expect(page.locator("#error")).to_have_text(
        "Weka nambari ya Safaricom/Airtel kama 0712 345 678. Piga simu kwa Mama Njeri WiFi: 0712 345 678."
    )
    browser.screenshot(page, "swahili")

    # The customer switches: every word on the page follows, the error and the status too, and stays.
    page.click("#lang-EN")
    expect(page.locator("#status")).to_have_text("Enter your phone number")
    expect(page.locator("#pay")).to_have_text("Pay with M-Pesa")
    expect(page.locator("#error")).to_have_text(
        "Enter a Safaricom/Airtel number like 0712 345 678. Call Mama Njeri WiFi on 0712 345 678."
    )
    expect(page.locator("#lang-EN")).to_have_attribute("aria-pressed", "true")
    browser.screenshot(page, "switched-to-english")
    page.reload()
    expect(page.locator("#status")).to_have_text("Choose a package")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=code-input]")).to_have_text("Have a code?")

    page.click("#lang-SW")
    expect(page.locator("#status")).to_have_text("Chagua kifurushi")
    no_js_errors(browser)


def test_an_english_operators_portal_switches_to_swahili(demo: Demo, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(demo.portal_url())
    page.wait_for_selector("#packages input[type=radio]")
    expect(page.locator("#status")).to_have_text("Choose a package")
    page.click("#lang-SW")
    expect(page.locator("#status")).to_have_text("Chagua kifurushi")
    expect(page.locator("#phone-hint")).to_have_text("Utapokea ombi kwenye simu hii uweke PIN yako ya M-Pesa.")
    assert re.search(r"Nunua muda wa intaneti", page.title())
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "sw")  # the server rendered it in Swahili too
    expect(page.locator("#pay")).to_have_text("Lipa kwa M-Pesa")
    browser.screenshot(page, "switched-to-swahili")
    no_js_errors(browser)


def test_the_hotspots_error_is_shown_beside_the_code_box(demo: Demo, browser: Browser) -> None:
    """login.html passes the hotspot's $(error) on: next to where a code is typed, not over a spinner."""
    page = browser.new_page()
    page.goto(demo.portal_url() + "&error=" + "invalid+password+%3Cb%3Ex%3C%2Fb%3E")
    page.wait_for_selector("#packages input[type=radio]")
    expect(page.locator("#code-error")).to_have_text("The hotspot said: invalid password <b>x</b>")
    expect(page.locator("#step-order")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    assert page.locator("#code-error b").count() == 0
    browser.screenshot(page, "hotspot-error")
    no_js_errors(browser)
