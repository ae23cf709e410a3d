"""The IntaSend simulator as the app serves it: Django's live server, the real SDK, a browser-like session."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from billing.models import Payment
from billing.simulator import runtime
from billing.simulator.runtime import IntaSendSimulator


@pytest.fixture
def simulator(settings, live_server) -> Iterator[IntaSendSimulator]:
    """The app's own simulator, reset, with the gateway pointed at it through the live server."""
    runtime.reset()
    settings.SIMULATORS_ENABLED = True
    settings.INTASEND_API_BASE_URL = f"{live_server.url}/simulator/intasend/api/v1/"
    # Where our server tells IntaSend to post (checkouts carry it): reachable, unlike the test client's host.
    settings.INTASEND_CALLBACK_URL = f"{live_server.url}/payments/webhook/"
    settings.INTASEND_CONNECT_TIMEOUT = 2
    settings.INTASEND_READ_TIMEOUT = 5
    yield runtime.intasend()
    runtime.intasend().webhooks.wait(10)
    runtime.reset()


@pytest.fixture
def sim_shop(operator):
    """Alice's hotspot, with her IntaSend credential working against the simulator (open accounts)."""
    router = operator.add_router()
    package = operator.add_package(router)
    credential = operator.add_credential()  # ISPubKey_test_…, challenge "webhook-challenge-1"
    return type("SimShop", (), {"operator": operator, "router": router, "package": package, "credential": credential})


class Browser:
    """A customer's browser session on the simulator's pages (cookies, CSRF tokens, forms)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        response = self.session.get(url, timeout=10)
        response.raise_for_status()
        return response

    def submit(self, page: requests.Response, target: str, **fields: str) -> requests.Response:
        """POST a form of ``page`` to ``target`` with the page's CSRF token."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        url = target if target.startswith("http") else self.base_url + target
        return self.session.post(url, data={"csrfmiddlewaretoken": token, **fields}, timeout=10)


@pytest.fixture
def browser(live_server) -> Browser:
    return Browser(live_server.url)


def wait_for(predicate: Callable[[], object], timeout: float = 15, message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def wait_for_status(payment_id: str, status: str, timeout: float = 15) -> Payment:
    def reached():
        payment = Payment.objects.get(pk=payment_id)
        return payment if payment.status == status else None

    return wait_for(reached, timeout, f"payment {payment_id} to be {status}")  # type: ignore[return-value]
