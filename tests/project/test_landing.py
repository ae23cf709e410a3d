"""`/`: the place to start. With DEBUG on it links to GraphiQL, the admin, the simulators and the demo
portal, and every link answers; with DEBUG off it names the product and gives nothing away. The icon
is served (also at /favicon.ico, which browsers ask for) and the portal and GraphiQL link it."""

from __future__ import annotations

from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from billing.management.commands.seed_demo import DEMO_MAC, USERNAME
from billing.models import OperatorProfile
from network.models import Router
from project.urls import urlpatterns as project_urlpatterns
from project.views import GraphQLView

pytestmark = pytest.mark.django_db


def _graphiql_view():
    from project.schema import schema

    return csrf_exempt(GraphQLView.as_view(schema=schema, graphql_ide="graphiql"))


# project.urls decides at import whether GraphiQL is served (DEBUG, off in the suite): as `make run`
# serves it, this module's URLs put it first.
urlpatterns = [path("graphql/", _graphiql_view()), *project_urlpatterns]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[str] = []
        self.icons: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.anchors.append(attributes["href"])
        if tag == "link" and attributes.get("rel") == "icon":
            self.icons.append(attributes["href"])
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.styles.append(attributes["href"])


def links(html: str) -> Links:
    parsed = Links()
    parsed.feed(html)
    return parsed


def seed_demo() -> None:
    call_command("seed_demo", stdout=StringIO())


def assert_svg_icon(client, url: str) -> None:
    served = client.get(url, follow=True)
    assert served.status_code == 200, url
    assert served["Content-Type"].startswith("image/svg+xml"), served["Content-Type"]
    assert b"<svg" in b"".join(served.streaming_content)


@pytest.mark.urls(__name__)
def test_with_debug_the_landing_page_links_everything_and_every_link_answers(client, settings) -> None:
    settings.DEBUG = True
    settings.GRAPHIQL_ENABLED = True
    settings.SIMULATORS_ENABLED = True
    seed_demo()

    response = client.get("/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    page = links(response.content.decode())
    anchors = page.anchors
    for expected in ("/graphql/", "/admin/", "/simulator/", "/simulator/phone/", "/simulator/router/", "/healthz/"):
        assert expected in anchors, (expected, anchors)
    public_key = OperatorProfile.objects.get(user__username=USERNAME).public_key
    router = Router.objects.get(owner__username=USERNAME)
    [portal] = [href for href in anchors if href.startswith("/portal/")]
    assert portal.startswith(f"/portal/{public_key}/?routerId={router.pk}&")
    assert "mac=" + DEMO_MAC.replace(":", "%3A") in portal and "link-login-only=" in portal

    for href in anchors:
        headers = {"Accept": "text/html"}
        answer = client.get(href, headers=headers, follow=True)
        assert answer.status_code == 200, (href, answer.status_code)
    assert "GraphiQL" in client.get("/graphql/", headers={"Accept": "text/html"}).content.decode()
    # The simulators' index links back here.
    assert "/" in links(client.get("/simulator/").content.decode()).anchors

    # Its stylesheet and icon are static files, served.
    assert page.styles and all(client.get(url).status_code == 200 for url in page.styles)
    assert page.icons
    for icon in page.icons:
        assert_svg_icon(client, icon)


def test_with_debug_and_no_demo_the_page_says_how_to_seed_it(client, settings) -> None:
    settings.DEBUG = True
    settings.SIMULATORS_ENABLED = False
    html = client.get("/").content.decode()
    assert "seed_demo" in html
    assert not any(href.startswith(("/portal/", "/simulator/")) for href in links(html).anchors)


def test_without_debug_the_landing_page_names_the_product_and_nothing_else(client, settings) -> None:
    seed_demo()  # demo data exists, yet none of it shows
    settings.DEBUG = False
    settings.GRAPHIQL_ENABLED = False
    settings.SIMULATORS_ENABLED = False

    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "CloudPilot" in html
    assert links(html).anchors == []
    public_key = OperatorProfile.objects.get(user__username=USERNAME).public_key
    router = Router.objects.get(owner__username=USERNAME)
    for secret in (public_key, USERNAME, "demo", "graphql", "admin", "simulator", "/portal/", "healthz", "DEBUG"):
        assert secret not in html, secret
    assert f"routerId={router.pk}" not in html
    assert client.post("/").status_code == 405


def test_favicon_ico_is_the_svg_icon(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].startswith("/static/favicon.")
    assert_svg_icon(client, "/favicon.ico")


def test_the_portal_and_graphiql_link_the_icon(client, operator) -> None:
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    portal = links(client.get(f"/portal/{operator.public_key}/").content.decode())
    graphiql = links(render_to_string("graphiql/graphiql.html", request=RequestFactory().get("/graphql/")))
    for page in (portal, graphiql):
        [icon] = page.icons
        assert icon.startswith("/static/favicon.")
        assert_svg_icon(client, icon)


def test_the_demo_hotspots_login_page_takes_a_voucher_qr_code_to_the_portal(client, settings) -> None:
    """Found from outside: the demo router's QR codes (`http://<hotspotAddress>/login#code=…`) opened a 404.
    The demo hotspot's /login sends the browser to the portal; the fragment rides along by itself."""
    settings.SIMULATORS_ENABLED = True
    assert client.get("/login").status_code == 404  # nothing seeded yet
    seed_demo()
    response = client.get("/login")
    assert response.status_code == 302
    public_key = OperatorProfile.objects.get(user__username=USERNAME).public_key
    assert response["Location"].startswith(f"/portal/{public_key}/?routerId=")
