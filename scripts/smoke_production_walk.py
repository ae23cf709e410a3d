"""The production smoke's walk (scripts/smoke_production.sh starts the processes, then runs this).

Everything a customer's portal does goes through nginx over HTTPS: the package list, the STK push
(initiatePayment with the public key) and the paymentUpdates subscription over the proxied
WebSocket. The simulators stand in for the outside world and are reached directly: the phone
approves the prompt on the IntaSend simulator, whose webhook comes back through nginx; the RouterOS
simulator must then hold the customer's hotspot user. Then one daphne process is killed and a second
payment must go through the other one (nginx's proxy_next_upstream).

Plain Python with the venv's requests and websockets; exits non-zero with the reason on the first
failure, and prints how long each step took.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect

PAYMENT_FIELDS = "id status intasendInvoiceId intasendState clientSecret activation { status accessCode }"
INITIATE = (
    "mutation($input: PaymentInput!) { initiatePayment(input: $input) {"
    " errors { field code message } payment { " + PAYMENT_FIELDS + " } } }"
)
PACKAGES = "query($routerId: ID!) { packages(routerId: $routerId) { id name price } }"
SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) { paymentUpdates(paymentId: $id, clientSecret: $secret) {"
    " id status intasendState activation { status accessCode } } }"
)
SETTLE_SECONDS = 30  # webhook, status confirmation, queued activation on a loaded 2-core machine


class SmokeFailure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


@contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"  ok  {time.monotonic() - started:6.2f} s  {name}", flush=True)


class Walk:
    def __init__(self, args: argparse.Namespace) -> None:
        self.base = args.base.rstrip("/")
        self.plain = args.plain.rstrip("/")
        self.simulator = args.simulator.rstrip("/")
        self.direct = args.direct.rstrip("/")
        self.public_key = args.public_key
        self.router_id = args.router_id
        self.metrics_token = args.metrics_token
        self.require_metrics = args.require_metrics
        self.require_static = args.require_static
        self.tls = ssl.create_default_context(cafile=args.ca)
        self.https = requests.Session()
        self.https.verify = args.ca
        self.https.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment beats `verify`
        self.package: dict[str, Any] = {}

    # -- the pieces -------------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.https.post(
            f"{self.base}/graphql/",
            json={"query": query, "variables": variables},
            headers={"X-Public-Key": self.public_key},
            timeout=20,
        )
        check(response.status_code == 200, f"/graphql/ answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        check(not body.get("errors"), f"GraphQL errors: {body.get('errors')}")
        return body["data"]

    @contextmanager
    def portal_socket(self) -> Iterator[ClientConnection]:
        ws_url = "wss://" + self.base.split("://", 1)[1] + "/graphql/"
        with connect(ws_url, subprotocols=["graphql-transport-ws"], ssl=self.tls, open_timeout=15) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": self.public_key}}))
            check(self.receive(ws, 10)["type"] == "connection_ack", "no connection_ack over the proxied WebSocket")
            yield ws

    @staticmethod
    def receive(ws: ClientConnection, timeout: float) -> dict[str, Any]:
        while True:
            message = json.loads(ws.recv(timeout=timeout))
            if message["type"] == "ping":
                ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    def approve_on_phone(self, invoice_id: str) -> None:
        phone = requests.Session()
        page = phone.get(f"{self.simulator}/simulator/phone/", timeout=10)
        check(f'id="prompt-{invoice_id}"' in page.text, f"the phone shows no prompt {invoice_id}")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        check(token is not None, "the phone page has no CSRF token")
        approved = phone.post(
            f"{self.simulator}/simulator/phone/{invoice_id}/approve/",
            data={"csrfmiddlewaretoken": token.group(1)},
            timeout=10,
        )
        check(approved.status_code == 200, f"approving on the phone answered {approved.status_code}")

    def router_users(self) -> set[str]:
        state = requests.get(f"{self.simulator}/simulator/router/state.json", timeout=10).json()
        check(state["running"], f"the RouterOS simulator is not running: {state.get('error')}")
        return {row.get("name", "") for row in state["users"]}

    # -- the walk ---------------------------------------------------------------------------------

    def edges(self) -> None:
        with step("HTTPS /healthz/ through nginx"):
            response = self.https.get(f"{self.base}/healthz/", timeout=10)
            check(response.status_code == 200, f"/healthz/ over HTTPS answered {response.status_code}")
        with step("plain-HTTP /healthz/ answered (no redirect), anything else moved to HTTPS"):
            response = requests.get(f"{self.plain}/healthz/", timeout=10, allow_redirects=False)
            check(response.status_code == 200, f"/healthz/ over HTTP answered {response.status_code}")
            response = requests.get(f"{self.plain}/graphql/", timeout=10, allow_redirects=False)
            check(
                response.status_code == 301 and response.headers.get("Location", "").startswith("https://"),
                f"HTTP /graphql/ answered {response.status_code} {response.headers.get('Location')}",
            )
        with step("the app redirects plain HTTP itself, and believes nginx's X-Forwarded-Proto: https"):
            response = requests.get(f"{self.direct}/admin/login/", timeout=10, allow_redirects=False)
            check(
                response.status_code == 301 and response.headers.get("Location", "").startswith("https://"),
                f"plain HTTP straight to daphne answered {response.status_code} (SECURE_SSL_REDIRECT off?)",
            )
            response = self.https.get(f"{self.base}/admin/login/", timeout=10, allow_redirects=False)
            check(response.status_code == 200, f"/admin/login/ through nginx answered {response.status_code}")
            check("Strict-Transport-Security" in response.headers, "no HSTS header over HTTPS")
        with step("a webhook body over the limit stopped by nginx (413)"):
            response = self.https.post(f"{self.base}/payments/webhook/", data=b"x" * (65 * 1024), timeout=10)
            check(response.status_code == 413, f"a 65 KiB webhook answered {response.status_code}")
        self.metrics()
        self.static_files()

    def metrics(self) -> None:
        probe = requests.get(f"{self.plain}/metrics", timeout=10, allow_redirects=False)
        if probe.status_code == 404 and not self.require_metrics:
            print("  --  /metrics not served by this build: skipped", flush=True)
            return
        with step("/metrics: 401 without the token, 200 with it (plain HTTP, as Prometheus scrapes)"):
            check(probe.status_code == 401, f"/metrics without a token answered {probe.status_code}")
            scraped = requests.get(
                f"{self.plain}/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"}, timeout=10
            )
            check(scraped.status_code == 200, f"/metrics with the token answered {scraped.status_code}")

    def static_files(self) -> None:
        login = self.https.get(f"{self.base}/admin/login/", timeout=10)
        check(login.status_code == 200, f"/admin/login/ answered {login.status_code}")
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', login.text)
        check(stylesheet is not None, "the admin login page links no stylesheet")
        response = self.https.get(self.base + stylesheet.group(1), timeout=10)
        if response.status_code == 404 and not self.require_static:
            print("  --  static files not served by the app in this build: skipped", flush=True)
            return
        with step(f"the admin's stylesheet served with DEBUG off ({stylesheet.group(1)})"):
            check(response.status_code == 200, f"{stylesheet.group(1)} answered {response.status_code}")
            check("css" in response.headers.get("Content-Type", ""), "the stylesheet is not served as CSS")

    def choose_package(self) -> None:
        with step("the portal's package list through nginx (X-Public-Key)"):
            packages = self.graphql(PACKAGES, {"routerId": self.router_id})["packages"]
            check(bool(packages), "the demo router has no packages")
            self.package = packages[0]

    def pay(self, label: str, phone_number: str, device: int) -> None:
        with self.portal_socket() as ws:
            with step(f"{label}: STK push (initiatePayment through nginx)"):
                payload = self.graphql(
                    INITIATE,
                    {
                        "input": {
                            "routerId": self.router_id,
                            "packageId": self.package["id"],
                            "phoneNumber": phone_number,
                            "amount": self.package["price"],
                            "macAddress": f"02:00:00:00:00:{device:02x}",
                            "ipAddress": f"10.5.50.{device}",
                        }
                    },
                )["initiatePayment"]
                check(payload["errors"] == [], f"initiatePayment refused: {payload['errors']}")
                payment = payload["payment"]
                check(payment["status"] == "PROCESSING", f"the new payment is {payment['status']}")
            with step(f"{label}: paymentUpdates subscribed over the proxied WebSocket"):
                ws.send(
                    json.dumps(
                        {
                            "id": "1",
                            "type": "subscribe",
                            "payload": {
                                "query": SUBSCRIBE,
                                "variables": {"id": payment["id"], "secret": payment["clientSecret"]},
                            },
                        }
                    )
                )
                first = self.next_update(ws, 15)
                check(first["status"] == "PROCESSING", f"the subscription starts at {first['status']}")
            with step(f"{label}: approved on the phone, webhook through nginx, COMPLETED and ACTIVE"):
                self.approve_on_phone(payment["intasendInvoiceId"])
                deadline = time.monotonic() + SETTLE_SECONDS
                update = first
                while not (update["activation"] and update["activation"]["status"] != "PENDING"):
                    remaining = deadline - time.monotonic()
                    check(remaining > 0, f"no activation within {SETTLE_SECONDS} s; last update {update}")
                    update = self.next_update(ws, remaining)
                check(update["status"] == "COMPLETED", f"the payment ended {update['status']}")
                check(update["intasendState"] == "COMPLETE", f"IntaSend state {update['intasendState']}")
                check(update["activation"]["status"] == "ACTIVE", f"the activation ended {update['activation']}")
        with step(f"{label}: the customer's hotspot user is on the router simulator"):
            code = update["activation"]["accessCode"]
            check(code in self.router_users(), f"no hotspot user {code!r} on the router simulator")

    def next_update(self, ws: ClientConnection, timeout: float) -> dict[str, Any]:
        message = self.receive(ws, timeout)
        check(message["type"] == "next", f"subscription message {message}")
        check(not message["payload"].get("errors"), f"subscription errors {message['payload'].get('errors')}")
        return message["payload"]["data"]["paymentUpdates"]

    def kill(self, pid: int) -> None:
        with step(f"daphne {pid} killed (SIGKILL), nginx still answers"):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            # Several requests, so that nginx's round robin certainly offers some to the dead one.
            for _ in range(4):
                response = self.https.get(f"{self.base}/healthz/", timeout=15)
                check(response.status_code == 200, f"/healthz/ answered {response.status_code} after the kill")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="nginx over HTTPS, e.g. https://127.0.0.1:8443")
    parser.add_argument("--plain", required=True, help="nginx over plain HTTP, e.g. http://127.0.0.1:8080")
    parser.add_argument("--simulator", required=True, help="the simulators' server (not behind nginx)")
    parser.add_argument("--direct", required=True, help="one daphne process over plain HTTP, not through nginx")
    parser.add_argument("--ca", required=True, help="the certificate nginx serves (self-signed)")
    parser.add_argument("--public-key", required=True)
    parser.add_argument("--router-id", required=True)
    parser.add_argument("--metrics-token", required=True)
    parser.add_argument("--kill-pid", type=int, required=True, help="the daphne process to kill half-way")
    parser.add_argument("--require-metrics", action="store_true", help="fail when /metrics is missing")
    parser.add_argument("--require-static", action="store_true", help="fail when static files are missing")
    args = parser.parse_args()
    walk = Walk(args)
    try:
        walk.edges()
        walk.choose_package()
        walk.pay("payment 1", "0712345678", device=11)
        walk.kill(args.kill_pid)
        walk.pay("payment 2 (one daphne left)", "0722345678", device=12)
    except (SmokeFailure, requests.RequestException, OSError, TimeoutError) as error:
        print(f"smoke_production_walk: FAILED: {error!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
