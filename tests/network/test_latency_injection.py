"""The stand-ins' optional per-round-trip delay (for the PIN-to-online benchmark), off by default."""

from __future__ import annotations

import time

import requests

from network.routeros import RouterAddress, RouterOSDriver
from tests.fakes.intasend_server import FakeIntaSend
from tests.fakes.routeros_server import FakeRouterOS

ACCOUNTS = {"ISPubKey_test_latency000001": "ISSecretKey_test_latency0001"}


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_the_router_holds_each_answer_back():
    with FakeRouterOS(username="api", password="pw", reply_delay=0.05) as router:
        driver = RouterOSDriver(RouterAddress(router.host, router.port, "api", "pw"))
        assert _timed(driver.connect) >= 0.05  # the login's answer
        assert _timed(driver.ping) >= 0.05
        driver.close()
    with FakeRouterOS(username="api", password="pw") as router:
        assert router.reply_delay == 0


def test_intasend_holds_each_response_back():
    with FakeIntaSend(accounts=ACCOUNTS, response_delay=0.05) as fake:
        assert _timed(lambda: requests.get(f"{fake.base_url}/nowhere/", timeout=5)) >= 0.05
    assert FakeIntaSend(accounts=ACCOUNTS).response_delay == 0
