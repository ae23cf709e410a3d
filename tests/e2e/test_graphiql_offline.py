"""GraphiQL at GET /graphql/ is served whole by this server: nothing from another host, nothing inline.

The page's assets are vendored (scripts/vendor_graphiql.sh) into project/static/graphiql/ and its
Content-Security-Policy allows scripts and styles from this origin only, so it works offline, in a
walled garden and under that policy. In a real Chromium against a live daphne (DEBUG on, so GraphiQL
and the static files are served), every request the page makes stays on the server's origin, a query
runs with the operator's public key typed into the headers editor, and a subscription started from
GraphiQL hears a payment complete (its credentials travel in the WebSocket's ``connection_init``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import AsyncClient, RequestFactory

from project.views import GraphQLView
from tests.live import Daphne, base_env, running

CHROMIUM = Path("/usr/bin/chromium")


class PageParts(HTMLParser):
    """What a policy without 'unsafe-inline' would refuse, and every URL the page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.inline.append("<style>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"<script>{data.strip()[:40]}")


async def test_graphiql_page_refers_only_to_its_own_assets_under_a_strict_policy() -> None:
    from project.schema import schema

    # The view itself: project.urls decides once, at import, whether GraphiQL is on (DEBUG).
    view = GraphQLView.as_view(schema=schema, graphql_ide="graphiql")
    response = await view(RequestFactory().get("/graphql/", HTTP_ACCEPT="text/html"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "GraphiQL" in html
    page = PageParts()
    page.feed(html)
    assert page.inline == []
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9]", html), "an absolute URL: the page would reach another host"
    assets = [url for url in page.urls if not url.startswith("data:")]
    # GraphiQL's own assets, and the site's icon.
    assert assets and all(url.startswith(("/static/graphiql/", "/static/favicon.")) for url in assets), assets

    policy = dict((directive.split(" ", 1) + [""])[:2] for directive in response["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"].startswith("'self'")
    assert policy["connect-src"] == "'self' ws://testserver wss://testserver"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"

    # Each asset is served by the app itself (project.static_files), with its type.
    client = AsyncClient()
    for url in assets:
        served = await client.get(url)
        body = b"".join([part async for part in served.streaming_content])
        assert served.status_code == 200 and body, url
        expected_type = {"css": "text/css", "svg": "image/svg+xml"}.get(url.rsplit(".", 1)[-1], "text/javascript")
        assert served["Content-Type"].startswith(expected_type), (url, served["Content-Type"])


# --- In Chromium ---------------------------------------------------------------------------------

SUBSCRIPTION = """subscription FollowPayment {{
  paymentUpdates(paymentId: "{id}", clientSecret: "{secret}") {{ status }}
}}"""


@contextmanager
def chromium() -> Iterator[object]:
    """Chromium driven by Playwright; entered only once the test is done with the ORM (Playwright's
    sync API runs an event loop in this thread, where Django then refuses database calls)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_portal_browser import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class GraphiQLPage:
    """GraphiQL in a tab, with every request, WebSocket frame, policy violation and error it causes."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.set_default_timeout(20_000)
        self.requests: list[str] = []
        self.sent_frames: list[dict] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", self._watch_socket)
        self.page.on("pageerror", lambda error: self.problems.append(f"JS error: {error}"))
        # Reported by the page itself: a violation of the policy is not a network request.
        self.page.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) => console.error("
            "`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`))"
        )
        self.page.on("console", lambda message: "CSP violation" in message.text and self.problems.append(message.text))
        self.page.goto(url)
        self.page.wait_for_selector(".graphiql-query-editor .CodeMirror")
        # The schema arrived: the Docs explorer lists the root types.
        self.page.get_by_label("Show Documentation Explorer").click()
        self.page.get_by_text("Query", exact=True).first.wait_for()

    def _watch_socket(self, socket) -> None:
        self.requests.append(socket.url)

        def sent(payload) -> None:
            try:
                self.sent_frames.append(json.loads(payload))
            except (TypeError, ValueError):
                pass

        socket.on("framesent", sent)

    def _type_into(self, editor, text: str) -> None:
        """Replace an editor's text by typing (input events, as a paste would)."""
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(text)

    def set_headers(self, text: str) -> None:
        self.page.locator(".graphiql-editor-tools button", has_text="Headers").click()
        self._type_into(self.page.locator('[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror'), text)

    def run(self, operation_name: str, document: str) -> None:
        self._type_into(self.page.locator(".graphiql-query-editor .CodeMirror"), document)
        # GraphiQL reads the operation's name from the text a moment after the last keystroke.
        self.page.wait_for_function(
            "name => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.operationName === name",
            arg=operation_name,
        )
        self.page.locator(".graphiql-execute-button").click()

    def stop(self) -> None:
        self.page.locator(".graphiql-execute-button").click()

    def wait_for_result(self, *needles: str, timeout: float = 30_000) -> str:
        """The result pane's text once it shows every needle."""
        from playwright.sync_api import expect

        result = self.page.locator(".graphiql-response .CodeMirror-code")
        for needle in needles:
            expect(result).to_contain_text(needle, timeout=timeout)
        return self.page.evaluate("document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()")


@pytest.mark.slow
@pytest.mark.once
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_graphiql_runs_a_query_and_a_subscription_without_leaving_its_origin(shop, tmp_path) -> None:
    pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")
    from tests.e2e.test_live_updates import complete_at_intasend, initiate_over_http

    server = Daphne(base_env(tmp_path, GRAPHIQL_ENABLED="1", INTASEND_API_BASE_URL=shop.intasend.base_url), tmp_path)
    with running(server):
        server.wait_healthy()
        public_key, router_id = shop.operator.public_key, shop.router.pk
        payment = initiate_over_http(server, shop)  # a payment to follow, PROCESSING until IntaSend says more
        subscription = SUBSCRIPTION.format(id=payment["id"], secret=payment["clientSecret"])
        with chromium() as browser:
            graphiql = GraphiQLPage(browser, f"{server.url}/graphql/")
            try:
                graphiql.set_headers(json.dumps({"X-Public-Key": public_key}))
                graphiql.run(
                    "Packages",
                    f'query Packages {{ packages(routerId: "{router_id}") {{ name price durationMinutes }} }}',
                )
                result = json.loads(graphiql.wait_for_result('"1 Hour"'))
                assert result == {"data": {"packages": [{"name": "1 Hour", "price": "25.00", "durationMinutes": 60}]}}

                # The same key, from the headers editor, opens the subscription's socket.
                graphiql.run("FollowPayment", subscription)
                graphiql.wait_for_result('"PROCESSING"')
                complete_at_intasend(shop, payment, f"{server.url}/payments/webhook/")
                graphiql.wait_for_result('"COMPLETED"')
                graphiql.stop()
                [init] = [frame for frame in graphiql.sent_frames if frame.get("type") == "connection_init"]
                assert init["payload"] == {"X-Public-Key": public_key}

                # Without credentials the server refuses the socket, and GraphiQL says so at once.
                graphiql.set_headers("{}")
                graphiql.run("FollowPayment", subscription)
                graphiql.wait_for_result("4403", timeout=10_000)
            except BaseException:
                graphiql.page.screenshot(path=str(tmp_path / "graphiql.png"), full_page=True)
                sys.stderr.write(f"\nscreenshot: {tmp_path / 'graphiql.png'}\nproblems: {graphiql.problems}\n")
                raise

    origin = urlsplit(server.url).netloc
    elsewhere = [url for url in graphiql.requests if not url.startswith("data:") and urlsplit(url).netloc != origin]
    assert elsewhere == [], elsewhere
    assert {urlsplit(url).scheme for url in graphiql.requests} <= {"http", "ws", "data"}
    assert any(url.startswith(f"ws://{origin}/graphql") for url in graphiql.requests)
    assert graphiql.problems == []
