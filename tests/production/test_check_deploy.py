"""`manage.py check --deploy` is clean with the production environment docs/production-settings.md
documents; HTTPS is enforced except for probes and scrapes; X-Forwarded-Proto counts from trusted
proxies only; the development SECRET_KEY never reaches a server that answers on a real name."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.live import Daphne, base_env, running

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "production-settings.md"


def documented_production_environment() -> dict[str, str]:
    """The doc's first ```sh block (after "## The production environment"), placeholders filled in."""
    section = DOC.read_text().split("## The production environment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env = dict(line.split("=", 1) for line in block.splitlines() if line.strip())
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    return {name: re.sub(r"<[^>]+>", secrets.token_hex(8), value) for name, value in env.items()}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only what the documented environment gives: nothing inherited from this test run.
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment():
    env = documented_production_environment()
    assert env["DEBUG"] == "0" and env["SECURE_SSL_REDIRECT"] == "1"
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"
    assert result.stderr == ""


def test_check_deploy_names_what_plain_http_defaults_leave_open():
    env = documented_production_environment()
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"):
        del env[name]
    result = manage("check", "--deploy", **env)
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr


def test_the_development_secret_key_is_refused_on_a_real_host_name():
    env = documented_production_environment()
    del env["SECRET_KEY"]
    result = manage("check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
    # Loopback only (make run, tests): the development key is fine.
    assert manage("check", DEBUG="0").returncode == 0


def test_checkout_urls_must_be_configured_on_a_real_host_name():
    """Found from outside: with them derived from the Host header, a payment link created with
    `Host: <our name>:9999` sent IntaSend's webhook (and the operator's challenge) to port 9999."""
    env = documented_production_environment()
    for name in ("INTASEND_CALLBACK_URL", "INTASEND_SUCCESS_URL_BASE", "INTASEND_FAIL_URL_BASE"):
        missing = {key: value for key, value in env.items() if key != name}
        result = manage("check", **missing)
        assert result.returncode != 0
        assert "INTASEND_CALLBACK_URL, INTASEND_SUCCESS_URL_BASE and INTASEND_FAIL_URL_BASE must be set" in (
            result.stderr
        )


# --- Redirect to HTTPS, its exemptions, and whom X-Forwarded-Proto is believed from -----------------


@pytest.fixture
def https_only(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.TRUSTED_PROXIES = ["10.0.0.2/32"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.django_db
def test_plain_http_is_redirected_except_health_probes_and_scrapes(client, https_only):
    admin = client.get("/admin/", REMOTE_ADDR="10.0.0.2")
    assert admin.status_code == 301 and admin["Location"] == "https://testserver/admin/"
    assert client.get("/healthz/", REMOTE_ADDR="10.0.0.2").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.2").status_code != 301
    assert client.get("/metrics/", REMOTE_ADDR="10.0.0.2").status_code != 301


@pytest.mark.django_db
def test_x_forwarded_proto_counts_from_a_trusted_proxy_only(client, https_only):
    from_proxy = client.get("/admin/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert from_proxy.status_code == 302 and from_proxy["Location"].startswith("/admin/login/")
    assert from_proxy["Strict-Transport-Security"] == "max-age=31536000"

    for peer in ("203.0.113.9", "10.0.0.3", "::ffff:203.0.113.9"):
        forged = client.get("/admin/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
        assert forged.status_code == 301 and forged["Location"] == "https://testserver/admin/", peer
        assert "Strict-Transport-Security" not in forged


@pytest.mark.django_db
def test_without_trusted_proxies_the_header_means_nothing(client, settings):
    # The default: no proxy named, so no header names the scheme.
    assert settings.SECURE_PROXY_SSL_HEADER is None
    settings.SECURE_SSL_REDIRECT = True
    forged = client.get("/admin/", HTTP_X_FORWARDED_PROTO="https")
    assert forged.status_code == 301


@pytest.mark.django_db(transaction=True)
def test_daphne_redirects_to_https_and_ignores_a_forged_scheme(tmp_path):
    env = base_env(
        tmp_path,
        DEBUG="0",
        SECURE_SSL_REDIRECT="1",
        # A proxy elsewhere: this test's loopback connections are not from it.
        TRUSTED_PROXIES="192.0.2.10/32",
    )
    server = Daphne(env, tmp_path)
    with running(server):
        server.wait_healthy()
        probe = requests.get(f"{server.url}/healthz/", allow_redirects=False, timeout=10)
        assert probe.status_code == 200 and probe.json()["status"] == "ok"
        scrape = requests.get(f"{server.url}/metrics", allow_redirects=False, timeout=10)
        assert scrape.status_code != 301
        admin = requests.get(f"{server.url}/admin/", allow_redirects=False, timeout=10)
        assert admin.status_code == 301 and admin.headers["Location"] == f"https://127.0.0.1:{server.port}/admin/"
        forged = requests.get(
            f"{server.url}/admin/", headers={"X-Forwarded-Proto": "https"}, allow_redirects=False, timeout=10
        )
        assert forged.status_code == 301 and "Strict-Transport-Security" not in forged.headers
