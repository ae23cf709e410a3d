"""Browsers on other origins (issue 10, item 1): CORS on /graphql/ from CORS_ALLOWED_ORIGINS (`*` by
default), the same list for WebSocket origins, and a server that will not start on a list it
cannot read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.test import override_settings
from websockets.exceptions import InvalidStatus

from project.origins import InvalidOrigins, allowed_origins_from_environment, parse_allowed_origins
from tests.live import REPO, Daphne, GraphQLWebSocket, base_env, running

PORTAL = "https://portal.example.com"
EVIL = "https://evil.example.com"
HOTSPOT = "http://10.5.50.1"  # a portal served from a router's hotspot folder


def preflight(client, origin: str, path: str = "/graphql/"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-public-key",
        },
    )


def post_typename(client, origin: str):
    return client.post(
        "/graphql/",
        data=json.dumps({"query": "{ __typename }"}),
        content_type="application/json",
        headers={"Origin": origin},
    )


only_the_portal = override_settings(CORS_ALLOW_ALL_ORIGINS=False, CORS_ALLOWED_ORIGINS=[PORTAL])


# --- HTTP (Django's test client through the whole middleware stack) ----------------------------------


@pytest.mark.parametrize("origin", [PORTAL, HOTSPOT, "http://localhost:5173"])
def test_by_default_a_preflight_from_any_origin_succeeds(client, origin):
    response = preflight(client, origin)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed_headers = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-public-key", "content-type", "accept"} <= allowed_headers
    assert {"GET", "POST"} <= {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert int(response["Access-Control-Max-Age"]) >= 600
    assert "Access-Control-Allow-Credentials" not in response  # no cookie is ever honoured


def test_by_default_an_actual_post_from_another_origin_gets_the_header(client, db):
    response = post_typename(client, HOTSPOT)
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == "*"
    assert "origin" in response["Vary"].lower()


@only_the_portal
def test_with_a_list_the_listed_origin_is_allowed(client, db):
    response = preflight(client, PORTAL)
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == PORTAL
    assert "x-public-key" in response["Access-Control-Allow-Headers"]
    assert post_typename(client, PORTAL)["Access-Control-Allow-Origin"] == PORTAL


@only_the_portal
def test_with_a_list_another_origin_gets_no_allow_origin(client, db):
    assert "Access-Control-Allow-Origin" not in preflight(client, EVIL)
    refused = post_typename(client, EVIL)
    # The server answers (CORS is the browser's to enforce); the browser hides the answer.
    assert "Access-Control-Allow-Origin" not in refused


def test_only_graphql_gets_cors(client, db):
    for path in ("/healthz/", "/admin/login/", "/payments/webhook/"):
        assert "Access-Control-Allow-Origin" not in preflight(client, PORTAL, path=path), path


def test_refusals_carry_cors_headers_so_the_page_can_read_them(client, db):
    response = client.get("/graphql/", {"query": "mutation { __typename }"}, headers={"Origin": HOTSPOT})
    assert response.status_code == 405 and response["Access-Control-Allow-Origin"] == "*"


# --- The origin list itself -------------------------------------------------------------------------


def test_origins_are_normalized_as_browsers_send_them():
    parsed = parse_allowed_origins(" HTTPS://Portal.Example.com:443/ , http://10.5.50.1:80,http://[::1]:8080 ")
    assert parsed.origins == ("https://portal.example.com", "http://10.5.50.1", "http://[::1]:8080")
    assert not parsed.allow_all
    assert parse_allowed_origins("*").allow_all
    assert parse_allowed_origins("").origins == ()  # none: only same-origin pages and non-browsers


@pytest.mark.parametrize(
    ("environment", "chosen"),
    [
        ({}, "*"),
        ({"CORS_ALLOWED_ORIGINS": PORTAL}, PORTAL),
        ({"GRAPHQL_WS_ALLOWED_ORIGINS": PORTAL}, PORTAL),  # the older name alone still works
        ({"CORS_ALLOWED_ORIGINS": PORTAL, "GRAPHQL_WS_ALLOWED_ORIGINS": PORTAL + "/"}, PORTAL),
    ],
)
def test_alias_and_default(environment, chosen):
    assert allowed_origins_from_environment(environment).for_websockets() == [chosen]


@pytest.mark.parametrize(
    "environment",
    [
        {"CORS_ALLOWED_ORIGINS": "portal.example.com"},
        {"CORS_ALLOWED_ORIGINS": "https://portal.example.com/login.html"},
        {"CORS_ALLOWED_ORIGINS": "https://*.example.com"},
        {"CORS_ALLOWED_ORIGINS": "*, https://portal.example.com"},
        {"CORS_ALLOWED_ORIGINS": "https://user:pass@portal.example.com"},
        {"CORS_ALLOWED_ORIGINS": "https://portal.example.com:99999"},
        {"CORS_ALLOWED_ORIGINS": "null"},
        {"GRAPHQL_WS_ALLOWED_ORIGINS": "portal.example.com"},
        {"CORS_ALLOWED_ORIGINS": PORTAL, "GRAPHQL_WS_ALLOWED_ORIGINS": EVIL},
    ],
)
def test_a_list_that_cannot_be_meant_is_refused(environment):
    with pytest.raises(InvalidOrigins):
        allowed_origins_from_environment(environment)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CORS_ALLOWED_ORIGINS", "portal.example.com"), ("GRAPHQL_WS_ALLOWED_ORIGINS", "https://a.example.com/path")],
)
def test_the_server_does_not_start_with_an_invalid_origin(tmp_path, variable, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        {
            variable: value,
            "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "project.settings",
        }
    )
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr and variable in started.stderr and value in started.stderr


# --- A real server: HTTP and WebSockets from the same list ----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_live_server_applies_one_list_to_http_and_websockets(operator, tmp_path):
    server = Daphne(base_env(tmp_path, CORS_ALLOWED_ORIGINS=PORTAL), tmp_path)
    portal_credentials = {"X-Public-Key": operator.public_key}
    with running(server):
        server.wait_healthy()
        headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-public-key"}
        allowed = requests.options(f"{server.url}/graphql/", headers={"Origin": PORTAL, **headers}, timeout=10)
        assert allowed.headers["Access-Control-Allow-Origin"] == PORTAL
        other = requests.options(f"{server.url}/graphql/", headers={"Origin": EVIL, **headers}, timeout=10)
        assert "Access-Control-Allow-Origin" not in other.headers

        with pytest.raises(InvalidStatus) as refused:
            with GraphQLWebSocket.connect(server.ws_url, portal_credentials, origin=EVIL):
                pass
        assert refused.value.response.status_code == 403
        with GraphQLWebSocket.connect(server.ws_url, portal_credentials, origin=PORTAL):
            pass
        with GraphQLWebSocket.connect(server.ws_url, portal_credentials):  # no Origin: not a browser
            pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_live_server_by_default_accepts_websockets_from_any_origin(operator, tmp_path):
    server = Daphne(base_env(tmp_path), tmp_path)
    with running(server):
        server.wait_healthy()
        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": operator.public_key}, origin=HOTSPOT):
            pass
        response = requests.post(
            f"{server.url}/graphql/",
            json={"query": "{ __typename }"},
            headers={"Origin": HOTSPOT, "X-Public-Key": operator.public_key},
            timeout=10,
        )
        assert response.headers["Access-Control-Allow-Origin"] == "*"


# --- A real browser on two other origins ------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_CALLS = """async ({api, ws, key}) => {
  const result = {};
  try {
    const response = await fetch(api, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Public-Key": key,
                "Accept": "application/graphql-response+json, application/json;q=0.9"},
      body: JSON.stringify({query: "{ __typename }"}),
    });
    result.http = {status: response.status, type: response.headers.get("content-type"), body: await response.json()};
  } catch (error) {
    result.http = {blocked: String(error)};
  }
  result.ws = await new Promise((resolve) => {
    const socket = new WebSocket(ws, "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify({type: "connection_init", payload: {"X-Public-Key": key}}));
    socket.onmessage = (event) => { socket.close(); resolve(JSON.parse(event.data).type); };
    socket.onerror = () => resolve("refused");
    setTimeout(() => resolve("timeout"), 8000);
  });
  return result;
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>portal</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def page_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.once
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_chromium_on_an_allowed_origin_calls_the_api_and_another_origin_is_blocked(operator, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    public_key = operator.public_key  # the ORM is off limits inside Playwright's event loop
    with page_server() as allowed_origin, page_server() as other_origin:
        server = Daphne(base_env(tmp_path, CORS_ALLOWED_ORIGINS=allowed_origin), tmp_path)
        with running(server), sync_api.sync_playwright() as playwright:
            server.wait_healthy()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"])
            try:
                calls = {"api": f"{server.url}/graphql/", "ws": server.ws_url, "key": public_key}
                page = browser.new_page()
                page.goto(allowed_origin)
                allowed = page.evaluate(BROWSER_CALLS, calls)
                page.goto(other_origin)
                other = page.evaluate(BROWSER_CALLS, calls)
            finally:
                browser.close()
    assert allowed["http"]["status"] == 200
    assert allowed["http"]["type"].startswith("application/graphql-response+json")
    assert allowed["http"]["body"] == {"data": {"__typename": "Query"}}
    assert allowed["ws"] == "connection_ack"
    assert "blocked" in other["http"]
    assert other["ws"] == "refused"
