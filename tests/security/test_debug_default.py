"""Issue 9, item 23: a production start with one variable forgotten must not open the simulators,
GraphiQL and debug pages; DEBUG is refused on anything but a loopback host."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.live import REPO

PROBE = (
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "print(settings.DEBUG, settings.SIMULATORS_ENABLED, settings.GRAPHIQL_ENABLED, sorted(settings.ALLOWED_HOSTS))\n"
)


def _settings_in_a_clean_process(**env: str) -> subprocess.CompletedProcess:
    # Only what a bare `daphne project.asgi:application` would have: no DEBUG, no ALLOWED_HOSTS.
    environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    environment.update(DJANGO_SETTINGS_MODULE="project.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )


def test_forgotten_debug_variable_leaves_debug_and_simulators_off():
    result = _settings_in_a_clean_process()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 3)[:3] == ["False", "False", "False"]
    assert "'127.0.0.1'" in result.stdout and "'localhost'" in result.stdout  # still answers locally


def test_debug_with_a_public_host_refuses_to_start():
    result = _settings_in_a_clean_process(DEBUG="1", ALLOWED_HOSTS="hotspot.example.com,127.0.0.1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "hotspot.example.com" in result.stderr


def test_debug_on_loopback_still_works_for_development():
    result = _settings_in_a_clean_process(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True True True")
