"""The checkout's return page (billing.views.payment_result) as the payer sees it: the code once paid,
an honest word while the hotspot is slow, a page that refreshes itself while the answer may still
change, the operator's name, number and time zone, English or Swahili; nothing secret without the
client secret, and no input that makes it fail."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from billing.models import OperatorProfile, Payment
from network.models import Activation
from project.i18n import LANGUAGE_COOKIE
from tests.documents import CREATE_LINK
from tests.grants import grant_for

pytestmark = pytest.mark.django_db

REFRESH = b'<meta http-equiv="refresh" content="5">'
PAID_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)  # a Monday
EXPIRES_AT = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


@pytest.fixture
def link_payment(gql, shop) -> Payment:
    link = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["createPaymentLink"]
    return Payment.objects.get(pk=link["payment"]["id"])


def profile(shop, **fields) -> None:
    OperatorProfile.objects.filter(user=shop.operator.user).update(**fields)


def paid(payment: Payment, grant_status: str | None = None, **grant_fields) -> Payment:
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.COMPLETED, completed_at=PAID_AT)
    payment.refresh_from_db()
    if grant_status is not None:
        grant_for(payment, status=grant_status, access_code="K7PQ2MXA", **grant_fields)
    return payment


def page(client, payment: Payment, *, secret: bool = True, outcome: str = "success", query: str = ""):
    params = f"client_secret={payment.client_secret}&" if secret else ""
    response = client.get(f"/payment/{outcome}/{payment.pk}/?{params}{query}")
    assert response.status_code == 200
    return response, response.content.decode()


def test_while_the_payment_is_unconfirmed_the_page_refreshes_itself_and_says_so(client, link_payment):
    response, html = page(client, link_payment)
    assert "Payment in progress" in html and "refreshes itself" in html
    assert REFRESH.decode() in html
    assert "K7PQ2MXA" not in html and "Your access code" not in html
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    Payment.objects.filter(pk=link_payment.pk).update(status=Payment.Status.PROCESSING)
    assert REFRESH in page(client, link_payment)[0].content


def test_paid_and_connected_shows_the_code_package_amount_and_times_in_the_operators_zone(client, link_payment):
    paid(link_payment, Activation.Status.ACTIVE, expires_at=EXPIRES_AT)
    response, html = page(client, link_payment)
    assert "You are connected" in html and "Payment received" in html
    assert "<strong>K7PQ2MXA</strong>" in html and "log in again" in html
    assert "1 Hour" in html and "KES 25<" in html
    # Africa/Nairobi (the default) is UTC+3, in words a person reads.
    assert "Monday 5 January 2026, 12:30" in html and "Monday 5 January 2026, 13:30" in html
    assert REFRESH not in response.content  # nothing left to wait for


def test_times_follow_the_operators_time_zone(client, shop, link_payment):
    profile(shop, time_zone="Europe/London")
    paid(link_payment, Activation.Status.ACTIVE, expires_at=EXPIRES_AT)
    assert "Monday 5 January 2026, 10:30" in page(client, link_payment)[1]
    profile(shop, time_zone="Mars/Olympus")  # a row edited by hand: the default zone, not a 500
    assert "Monday 5 January 2026, 13:30" in page(client, link_payment)[1]


def test_paid_while_the_router_is_slow_gives_the_code_at_once_with_an_honest_word(client, link_payment):
    paid(link_payment, Activation.Status.PENDING)
    response, html = page(client, link_payment)
    assert "Payment received" in html and "<strong>K7PQ2MXA</strong>" in html
    assert "The hotspot is slow to answer; you will be connected automatically, or enter this code later." in html
    assert REFRESH in response.content  # turns to "connected" by itself once the router confirms
    assert "Connected until" not in html

    Activation.objects.filter(pk=link_payment.activation.pk).update(status=Activation.Status.FAILED)
    response, html = page(client, link_payment)
    assert "slow to answer" in html and "<strong>K7PQ2MXA</strong>" in html
    assert REFRESH not in response.content  # retried in the background; this page can stop asking


def test_paid_before_the_grant_exists_refreshes_until_it_does(client, link_payment):
    paid(link_payment)
    response, html = page(client, link_payment)
    assert "being set up" in html and REFRESH in response.content


@pytest.mark.parametrize(("status", "says"), [("EXPIRED", "has ended"), ("REVOKED", "ended this access")])
def test_an_ended_grant_shows_no_code(client, link_payment, status, says):
    paid(link_payment, status)
    html = page(client, link_payment)[1]
    assert says in html and "K7PQ2MXA" not in html


@pytest.mark.parametrize("query", ["", "client_secret=guess", "client_secret=", "client_secret=" + "x" * 5000])
def test_without_the_secret_only_the_status_shows(client, link_payment, query):
    paid(link_payment, Activation.Status.ACTIVE, expires_at=EXPIRES_AT)
    response, html = page(client, link_payment, secret=False, query=query)
    assert "Payment received" in html
    for secret in ("K7PQ2MXA", "2026", link_payment.client_secret, "254712345678", "guess", "xxxxx"):
        assert secret not in html, secret
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"


def test_a_failed_payment_says_so_and_stops(client, link_payment):
    Payment.objects.filter(pk=link_payment.pk).update(status=Payment.Status.FAILED, failure_reason="ds_timeout 2547")
    response, html = page(client, link_payment, outcome="failed")
    assert "Payment not completed" in html and "did not go through" in html
    assert "ds_timeout" not in html and REFRESH not in response.content


def test_operator_name_and_support_number_are_shown_and_escaped(client, shop, link_payment):
    profile(shop, business_name='<script>alert("x")</script> & Co', support_phone="254712345678")
    html = page(client, link_payment)[1]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert '<a href="tel:+254712345678">0712 345 678</a>' in html
    profile(shop, business_name="", support_phone="")
    html = page(client, link_payment)[1]
    assert "WiFi" in html and "tel:" not in html


def test_favicon_and_stylesheet_are_the_apps_own_hashed_static_files(client, link_payment):
    html = page(client, link_payment)[1]
    icon = re.search(r'<link rel="icon" href="(/static/favicon\.[0-9a-f]{12}\.svg)"', html)
    style = re.search(r'<link rel="stylesheet" href="(/static/billing/payment_result\.[0-9a-f]{12}\.css)"', html)
    assert icon and style, html
    assert "<script" not in html  # the policy allows none


def test_swahili_by_the_operators_default(client, shop, link_payment):
    profile(shop, language="SW")
    paid(link_payment, Activation.Status.ACTIVE, expires_at=EXPIRES_AT)
    response, html = page(client, link_payment)
    assert '<html lang="sw">' in html and response["Content-Language"] == "sw"
    assert "Umeunganishwa" in html and "Msimbo wako wa kuingia" in html and "Kifurushi" in html
    assert "Jumatatu 5 Januari 2026, 13:30" in html
    assert "You are connected" not in html


def test_swahili_slow_router_message(client, shop, link_payment):
    profile(shop, language="SW")
    paid(link_payment, Activation.Status.PENDING)
    html = page(client, link_payment)[1]
    assert "Malipo yamepokelewa" in html
    assert "Hotspot inachelewa kujibu; utaunganishwa moja kwa moja, au weka msimbo huu baadaye." in html


def test_the_customer_chooses_the_language_and_the_switch_keeps_the_secret(client, shop, link_payment):
    profile(shop, language="SW")
    response, html = page(client, link_payment, query="lang=en")
    assert '<html lang="en">' in html and "Payment in progress" in html
    assert response.cookies[LANGUAGE_COOKIE].value == "en"
    # The switch links carry the client secret (the page's own URL) and nothing else from the query.
    assert f'href="?client_secret={link_payment.client_secret}&amp;lang=sw"' in html

    client.cookies[LANGUAGE_COOKIE] = "sw"
    assert "Malipo yanaendelea" in page(client, link_payment)[1]
    assert "Payment in progress" in page(client, link_payment, query="lang=en")[1]

    bare = page(client, link_payment, secret=False, query="lang=en&client_secret=guess")[1]
    assert 'href="?lang=sw"' in bare and "guess" not in bare


@pytest.mark.parametrize(
    "query",
    ["lang=<script>", "lang=" + "sw" * 3000, "lang=s%0Aw", "lang=sw&lang=en", "client_secret=%F0%9F%98%80"],
)
def test_junk_in_the_query_changes_nothing(client, link_payment, query):
    response, html = page(client, link_payment, secret=False, query=query)
    assert "Payment in progress" in html and "<script>" not in html and "swsw" not in html


def test_an_unknown_payment_is_a_friendly_404(client):
    response = client.get("/payment/success/00000000-0000-0000-0000-000000000000/?lang=sw")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Malipo hayakupatikana" in html and "mmiliki wa hotspot" in html
    assert response["Cache-Control"] == "no-store"
    assert client.get("/payment/success/not-a-uuid/").status_code == 404
