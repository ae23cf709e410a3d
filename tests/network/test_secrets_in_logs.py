"""Neither the router's API password nor a customer's access code ever reaches a log record."""

from __future__ import annotations

import logging

import pytest

from network.models import Activation, Router
from network.tasks import expire_activations
from tests.fakes.routeros_server import HOTSPOT_LOGIN_FAILED
from tests.network.conftest import IP, MAC, ROUTER_PASSWORD, pay, run_due_retries

pytestmark = pytest.mark.django_db(transaction=True)

WRONG_PASSWORD = "Wr0ng-Router-Pass-42"


def _everything_logged(caplog) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)  # includes tracebacks


def test_router_password_and_access_codes_never_appear_in_logs(gql, client, hotspot, caplog):
    caplog.set_level(logging.DEBUG)
    check = "mutation($id: ID!) { checkRouterConnection(routerId: $id) { ok error } }"

    # Online with a device login; then a failed device login; then the router down and back.
    first = pay(gql, client, hotspot, macAddress=MAC, ipAddress=IP)
    hotspot.fake.fail_hotspot_logins(HOTSPOT_LOGIN_FAILED)
    second = pay(gql, client, hotspot, phoneNumber="0722000111", macAddress="AA:BB:CC:DD:EE:02", ipAddress="10.5.50.24")
    hotspot.fake.fail_hotspot_logins(None)
    hotspot.fake.set_down()
    third = pay(gql, client, hotspot, phoneNumber="0733000222")
    gql(check, {"id": str(hotspot.router.pk)}, **hotspot.operator.auth)
    hotspot.fake.set_down(False)
    run_due_retries()
    # Expiry, with a refusal on the way.
    Activation.objects.update(expires_at=first.completed_at)
    hotspot.fake.trap_next("/ip/hotspot/user/remove", "failure: item is busy")
    expire_activations()
    expire_activations()
    # Wrong credentials, for the activation and the connection check.
    router = Router.objects.get(pk=hotspot.router.pk)
    router.set_password(WRONG_PASSWORD)
    router.save()
    fourth = pay(gql, client, hotspot, phoneNumber="0744000333")
    gql(check, {"id": str(hotspot.router.pk)}, **hotspot.operator.auth)

    codes = [Activation.objects.get(payment=p).access_code for p in (first, second, third, fourth)]
    assert all(codes) and len(set(codes)) == 4
    assert Activation.objects.get(payment=fourth).status == "FAILED"
    logged = _everything_logged(caplog)
    assert "routeros 127.0.0.1 /ip/hotspot/user/add ok" in logged  # the driver did log its commands
    assert "Could not connect to router" in logged  # and the failures
    for secret in (ROUTER_PASSWORD, WRONG_PASSWORD, *codes):
        assert secret not in logged, secret
