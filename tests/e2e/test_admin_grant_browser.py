"""The support desk in a real browser: a payment whose money arrived after it had failed is found with the
admin's "Paid after failure" filter and granted in one click ("Grant the paid package"); the customer's
device is then online on the simulated router. Daphne, its RouterOS simulator and the demo data as in
test_portal_browser (whose fixtures this reuses); screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import time
from decimal import Decimal

from billing.management.commands.seed_demo import DEMO_IP, DEMO_MAC, PASSWORD, USERNAME
from billing.models import Payment, PaymentCredential
from network.models import Activation, Package, Router
from project.models import AuditEntry
from tests.e2e import test_portal_browser as harness
from tests.e2e.test_portal_browser import Browser, Demo, sync_api
from tests.e2e.test_portal_codes_browser import orm

pytestmark = harness.pytestmark
demo = harness.demo
browser = harness.browser


def paid_after_failure(demo: Demo) -> Payment:
    return orm(lambda: _paid_after_failure(demo))


def _paid_after_failure(demo: Demo) -> Payment:
    router = Router.objects.get(pk=demo.router_id)
    package = Package.objects.get(pk=demo.package_id)
    return Payment.objects.create(
        owner=router.owner,
        router=router,
        package=package,
        credential=PaymentCredential.objects.filter(owner=router.owner).first(),
        phone_number="254712345678",
        mac_address=DEMO_MAC,
        ip_address=DEMO_IP,
        amount=Decimal(package.price),
        status=Payment.Status.FAILED,
        failure_reason="Abandoned: no answer from the phone",
        paid_after_failure=True,
        mpesa_reference="SGR7K3L2QX",
    )


def online_as(demo: Demo, code: str, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = [s for s in demo.router_state()["active"] if s["user"] == code]
        if sessions:
            return sessions
        time.sleep(0.3)
    return []


def test_paid_after_failure_payment_granted_from_the_admin(demo: Demo, browser: Browser) -> None:
    expect = sync_api.expect
    payment = paid_after_failure(demo)
    page = browser.new_page({"width": 1280, "height": 900})
    page.goto(f"{demo.url}/admin/login/?next=/admin/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{demo.url}/admin/")

    page.goto(f"{demo.url}/admin/billing/payment/?paid_after_failure__exact=1")
    row = page.locator(f'input[name="_selected_action"][value="{payment.pk}"]')
    expect(row).to_have_count(1)
    browser.screenshot(page, "paid-after-failure-filter")
    row.check()
    page.select_option('select[name="action"]', "grant_paid_package")
    page.click('button[name="index"]')
    expect(page.locator(".messagelist")).to_contain_text("Access granted for 1 payment(s).")
    browser.screenshot(page, "granted")

    activation = orm(lambda: Activation.objects.get(payment=payment))
    assert (activation.source, activation.reason) == ("MANUAL", "Paid after failure")
    deadline = time.monotonic() + 30
    while activation.status != Activation.Status.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.3)
        activation = orm(lambda: Activation.objects.get(payment=payment))
    assert activation.status == Activation.Status.ACTIVE, activation.last_error
    [session] = online_as(demo, activation.access_code)
    assert (session["mac-address"], session["address"]) == (DEMO_MAC, DEMO_IP)
    audited = AuditEntry.objects.filter(action="grantAccess", via="ADMIN", object_id=str(activation.pk))
    assert orm(audited.count) == 1

    router_page = browser.new_page({"width": 1200, "height": 900})
    router_page.goto(f"{demo.url}/simulator/router/")
    expect(router_page.locator(f'#table-active tr[data-key="{activation.access_code}"]')).to_contain_text(DEMO_MAC)
    browser.screenshot(router_page, "router")
    assert not [p for p in browser.problems if "JS error" in p], browser.problems
