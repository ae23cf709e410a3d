"""Static files with DEBUG off, served by the app itself (project.static_files: WhiteNoise).

After `manage.py collectstatic` (docs/production-settings.md), pages name the admin's, the portal's
and GraphiQL's files by content-hashed names, answered with ten years of immutable caching and gzip
when asked. In-process through Django's test client, then from `daphne project.asgi:application`
alone over real HTTP: with DEBUG off from the collected files, and with DEBUG on (`make run`) from
the apps' folders with nothing collected.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import RequestFactory, override_settings

from tests.live import Daphne, base_env, running

FOREVER = "max-age=315360000, public, immutable"
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


class AssetLinks(HTMLParser):
    """Every stylesheet and script a page refers to."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"])
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.urls.append(values["href"])


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """STATIC_ROOT as `manage.py collectstatic --noinput` leaves it in production."""
    root = tmp_path_factory.mktemp("collected-static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_served_forever_and_gzipped(client, url: str, collected: Path, content_type: str) -> None:
    assert HASHED.search(url), f"{url} is not a hashed name"
    on_disk = (collected / url.removeprefix("/static/")).read_bytes()

    plain = client.get(url)
    assert plain.status_code == 200, url
    assert plain["Cache-Control"] == FOREVER
    assert plain["Content-Type"].startswith(content_type)
    assert "Content-Encoding" not in plain
    assert _body(plain) == on_disk

    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200 and zipped["Content-Encoding"] == "gzip"
    assert zipped["Vary"] == "Accept-Encoding" and zipped["Cache-Control"] == FOREVER
    assert gzip.decompress(_body(zipped)) == on_disk

    assert client.get(url, headers={"If-None-Match": plain["ETag"]}).status_code == 304


def test_the_admin_is_styled_with_debug_off(client, collected, settings):
    assert settings.DEBUG is False
    html = client.get("/admin/login/").content.decode()
    stylesheets = [url for url in AssetLinks(html).urls if url.startswith("/static/admin/css/")]
    base = [url for url in stylesheets if re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", url)]
    assert base, stylesheets
    for url in stylesheets:
        assert_served_forever_and_gzipped(client, url, collected, "text/css")


def test_the_portal_names_and_gets_its_hashed_script_and_stylesheet(client, collected, operator):
    html = client.get(f"/portal/{operator.public_key}/").content.decode()
    urls = AssetLinks(html).urls
    script = [url for url in urls if url.startswith("/static/portal/portal.") and url.endswith(".js")]
    style = [url for url in urls if url.startswith("/static/portal/portal.") and url.endswith(".css")]
    assert len(script) == 1 and len(style) == 1, urls
    assert_served_forever_and_gzipped(client, script[0], collected, "text/javascript")
    assert_served_forever_and_gzipped(client, style[0], collected, "text/css")


def test_an_unhashed_name_is_served_but_only_briefly_cached(client, collected):
    response = client.get("/static/portal/portal.js")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=60, public"


def test_the_hand_written_asset_route_is_gone(client, collected):
    assert client.get("/portal/assets/portal.js").status_code == 404


def test_graphiql_assets_are_hashed_and_served_with_debug_off(client, collected, settings):
    from project.schema import schema
    from project.views import GraphQLView

    settings.GRAPHIQL_ENABLED = True
    view = GraphQLView.as_view(schema=schema, graphql_ide="graphiql")
    page = async_to_sync(view)(RequestFactory().get("/graphql/", HTTP_ACCEPT="text/html"))
    urls = AssetLinks(page.content.decode()).urls
    assert len(urls) == 9 and all(url.startswith("/static/graphiql/") for url in urls), urls
    for url in urls:
        assert_served_forever_and_gzipped(
            client, url, collected, "text/css" if url.endswith(".css") else "text/javascript"
        )


def test_static_files_keep_the_asgi_middleware_chain_asynchronous(settings, caplog):
    # WhiteNoise's own middleware is synchronous: Django would then run every request in its one
    # thread for synchronous code. Django says so (with DEBUG on) when it adapts a handler.
    from django.core.handlers.asgi import ASGIHandler

    settings.DEBUG = True
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()
    assert "project.static_files.StaticFilesMiddleware" in settings.MIDDLEWARE
    assert not [record.getMessage() for record in caplog.records if "adapted" in record.getMessage()]


# --- daphne project.asgi:application alone, over real HTTP ---------------------------------------


def _fetch(session: requests.Session, url: str, **headers: str) -> requests.Response:
    # Undecoded bytes, as they travelled.
    response = session.get(url, headers=headers, stream=True, timeout=30)
    response.raw.decode_content = False
    response._content = response.raw.read()
    return response


@pytest.mark.django_db(transaction=True)
def test_daphne_alone_serves_the_portal_admin_and_graphiql_with_debug_off(tmp_path, collected, operator):
    env = base_env(tmp_path, DEBUG="0", GRAPHIQL_ENABLED="1", STATIC_ROOT=str(collected))
    server = Daphne(env, tmp_path)
    with running(server), requests.Session() as session:
        server.wait_healthy()
        portal = session.get(f"{server.url}/portal/{operator.public_key}/", timeout=10)
        graphiql = session.get(f"{server.url}/graphql/", headers={"Accept": "text/html"}, timeout=10)
        admin = session.get(f"{server.url}/admin/login/", timeout=10)
        assert portal.status_code == graphiql.status_code == admin.status_code == 200
        urls = [
            *AssetLinks(portal.text).urls,
            *AssetLinks(graphiql.text).urls,
            *[url for url in AssetLinks(admin.text).urls if url.endswith(".css")],
        ]
        assert any("graphiql.min." in url for url in urls) and any("portal." in url for url in urls), urls
        for url in urls:
            assert HASHED.search(url), url
            on_disk = (collected / url.removeprefix("/static/")).read_bytes()
            zipped = _fetch(session, server.url + url, **{"Accept-Encoding": "gzip"})
            assert zipped.status_code == 200 and zipped.headers["Cache-Control"] == FOREVER, url
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(zipped.content) == on_disk, url
            assert int(zipped.headers["Content-Length"]) == len(zipped.content)
            plain = _fetch(session, server.url + url, **{"Accept-Encoding": "identity"})
            assert plain.content == on_disk, url
            not_modified = _fetch(session, server.url + url, **{"If-None-Match": plain.headers["ETag"]})
            assert not_modified.status_code == 304 and not_modified.content == b""
        assert session.head(server.url + urls[0], timeout=10).status_code == 200
    log = server.output()
    assert "StreamingHttpResponse must consume" not in log
    assert "Traceback" not in log and " ERROR " not in log, log


def test_make_run_serves_static_files_without_collecting(tmp_path):
    # DEBUG on, as `make run` starts it: plain names, read from the apps' folders.
    never_collected = tmp_path / "never-collected"
    server = Daphne(base_env(tmp_path, DEBUG="1", STATIC_ROOT=str(never_collected)), tmp_path)
    repo = Path(__file__).resolve().parents[2]
    with running(server):
        server.wait_healthy()
        response = requests.get(f"{server.url}/static/portal/portal.js", timeout=10)
        assert response.status_code == 200
        assert response.content == (repo / "portal" / "static" / "portal" / "portal.js").read_bytes()
        assert response.headers["Cache-Control"] == "max-age=0, public"
        assert requests.get(f"{server.url}/static/admin/css/base.css", timeout=10).status_code == 200
    assert not never_collected.exists()
    assert "StreamingHttpResponse must consume" not in server.output()
