"""`make run` in miniature: seed the demo, start daphne with the simulators on, and pay through them.

Daphne runs with DEBUG off and SIMULATORS_ENABLED=1, and without INTASEND_API_BASE_URL: the gateway
must find the app's own simulator from PORT, as it does under `make run`.
"""

from __future__ import annotations

import re
import sys
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from billing.models import OperatorProfile
from network.models import Package, Router
from tests.documents import INITIATE
from tests.live import Daphne, GraphQLWebSocket, Process, base_env, free_port, running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SUBSCRIBE = """subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) {
  id status intasendState activation { status } } }"""


class DemoServer(Daphne):
    """Daphne on a port chosen up front, passed as PORT (settings derive their own URLs from it)."""

    def __init__(self, env: dict[str, str], log_dir) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"]
        Process.__init__(self, "daphne", argv, {**env, "PORT": str(self.port)}, log_dir)


def test_demo_server_starts_healthy_and_a_payment_goes_through_the_phone(tmp_path, settings):
    router_port = free_port()  # the demo's RouterOS simulator, on a port of this test's own
    settings.ROUTEROS_SIMULATOR_PORT = router_port
    out = StringIO()
    call_command("seed_demo", stdout=out)
    public_key = OperatorProfile.objects.get(user__username="demo").public_key
    router = Router.objects.get(name="Demo router (simulator)")
    package = Package.objects.get(router=router, name="1 hour")

    env = base_env(
        tmp_path, DEBUG="0", SIMULATORS_ENABLED="1", ROUTEROS_SIMULATOR_AUTOSTART="1",
        ROUTEROS_SIMULATOR_PORT=str(router_port),
    )
    env.pop("INTASEND_API_BASE_URL", None)
    server = DemoServer(env, tmp_path)
    with running(server):
        server.wait_healthy()
        assert requests.get(f"{server.url}/simulator/phone/", timeout=5).status_code == 200
        assert requests.get(f"{server.url}/portal/{public_key}/", timeout=5).status_code == 200

        response = requests.post(
            f"{server.url}/graphql/",
            json={
                "query": INITIATE,
                "variables": {
                    "input": {
                        "routerId": str(router.pk),
                        "packageId": str(package.pk),
                        "phoneNumber": "0712345678",
                        "amount": str(package.price),
                    }
                },
            },
            headers={"X-Public-Key": public_key},
            timeout=10,
        )
        payload = response.json()["data"]["initiatePayment"]
        assert payload["errors"] == [], payload
        payment = payload["payment"]
        assert payment["status"] == "PROCESSING"

        with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": public_key}) as portal:
            portal.subscribe(SUBSCRIBE, {"id": payment["id"], "secret": payment["clientSecret"]})
            assert portal.next_data()["paymentUpdates"]["status"] == "PROCESSING"

            phone = requests.Session()
            page = phone.get(f"{server.url}/simulator/phone/", timeout=5)
            assert f'id="prompt-{payment["intasendInvoiceId"]}"' in page.text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            approved = phone.post(
                f"{server.url}/simulator/phone/{payment['intasendInvoiceId']}/approve/",
                data={"csrfmiddlewaretoken": token},
                timeout=10,
            )
            assert approved.status_code == 200

            while True:  # the webhook arrives, the status API confirms it, the router takes the customer
                update = portal.next_data(timeout=15)["paymentUpdates"]
                if update["activation"] and update["activation"]["status"] != "PENDING":
                    break
            assert update["status"] == "COMPLETED" and update["intasendState"] == "COMPLETE"
            assert update["activation"]["status"] == "ACTIVE"
