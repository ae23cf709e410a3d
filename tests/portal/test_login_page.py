"""The hotspot's login.html without a browser (tests/e2e/test_login_page_browser.py drives it): small
enough for a router's storage, self-contained, and using only variables RouterOS fills in."""

from __future__ import annotations

import re

from tests.live import REPO

LOGIN_PAGE = REPO / "portal" / "mikrotik" / "login.html"
# RouterOS hotspot servlet variables this page may use (MikroTik's documentation, "Hotspot customisation").
KNOWN_VARIABLES = {"mac", "ip", "link-login-only", "link-orig", "link-orig-esc", "error"}


def test_login_page_is_small_and_loads_nothing():
    page = LOGIN_PAGE.read_text()
    assert len(page.encode()) < 10_000
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # no other host: the client is not online yet
    assert "<script src" not in page and "<link" not in page


def test_login_page_uses_only_hotspot_variables():
    page = LOGIN_PAGE.read_text()
    used = set(re.findall(r"\$\((?:if |elif )?([\w-]+)\)", page)) - {"endif", "else"}
    assert used <= KNOWN_VARIABLES, used - KNOWN_VARIABLES
    # Every $( is one of those: RouterOS would eat any other (a jQuery-style $( call in the script).
    assert page.count("$(") == len(re.findall(r"\$\((?:if |elif )?[\w-]+\)", page))
    assert page.count("$(if ") == page.count("$(endif)")
