"""The health probe: status, lastContactAt and lastError, a bounded batch with backoff, and a router
coming back starting its FAILED activations again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from network import health
from network.models import Activation, Router
from network.tasks import probe_routers
from tests.grants import grant_for

pytestmark = pytest.mark.django_db(transaction=True)

ROUTERS = "{ routers { id status lastContactAt lastError } }"


@pytest.fixture(autouse=True)
def _fresh_schedule():
    cache.clear()


def _router(hotspot) -> Router:
    return Router.objects.get(pk=hotspot.router.pk)


def test_a_router_that_answers_is_online(gql, hotspot):
    assert _router(hotspot).status == Router.Status.UNKNOWN
    hotspot.fake.clear_commands()
    assert probe_routers.call_local() == 1
    router = _router(hotspot)
    assert router.status == Router.Status.ONLINE and router.last_contact_at is not None and router.last_error == ""
    # Login only: no command beyond it.
    assert [c.path for c in hotspot.fake.commands if c.path != "/login"] == []
    listed = gql(ROUTERS, **hotspot.operator.auth)["data"]["routers"][0]
    assert listed["status"] == "ONLINE" and listed["lastError"] is None and listed["lastContactAt"]


def test_a_router_that_does_not_answer_is_offline_with_a_generic_reason(gql, hotspot):
    hotspot.fake.set_down()
    health.routers_probe()
    router = _router(hotspot)
    assert router.status == Router.Status.OFFLINE and router.last_contact_at is None
    assert router.last_error == "The router's API did not answer (unreachable or timed out)"
    assert hotspot.fake.host not in router.last_error and str(hotspot.fake.port) not in router.last_error
    portal = gql("query($id: ID!) { packages(routerId: $id) { router { status lastError } } }",
                 {"id": str(router.pk)}, **hotspot.operator.portal)["data"]["packages"][0]["router"]  # fmt: skip
    assert portal == {"status": "OFFLINE", "lastError": None}


def test_wrong_credentials_are_reported_as_such(hotspot):
    router = _router(hotspot)
    router.set_password("wrong")
    router.save()
    health.routers_probe()
    assert _router(hotspot).last_error == "The router refused the API login"


def test_unreachable_routers_back_off_and_runs_are_bounded(hotspot, operator):
    hotspot.fake.set_down()
    now = timezone.now()
    assert health.routers_probe(now=now).probed == 1
    # Not due again at the normal interval's end... but after twice as long.
    assert health.routers_probe(now=now + timedelta(seconds=1)).probed == 0
    assert health.routers_probe(now=now + timedelta(minutes=6)).probed == 0
    assert health.routers_probe(now=now + timedelta(minutes=11)).probed == 1
    for number in range(3):
        operator.add_router(name=f"Extra {number}")
    assert health.routers_probe(now=now + timedelta(minutes=12), limit=2).probed == 2


def test_deleted_routers_are_not_probed(hotspot):
    Router.objects.filter(pk=hotspot.router.pk).update(deleted_at=timezone.now())
    assert health.routers_probe().probed == 0


def test_coming_back_retries_failed_activations(hotspot):
    payment = hotspot.operator.add_paid_payment(hotspot.router, hotspot.package, mac_address="AA:BB:CC:DD:EE:01",
                                                ip_address="10.5.50.23")  # fmt: skip
    activation = grant_for(payment, status=Activation.Status.FAILED, attempts=4, last_error="Could not connect")
    hotspot.fake.set_down()
    health.routers_probe()
    assert Activation.objects.get(pk=activation.pk).status == Activation.Status.FAILED
    hotspot.fake.set_down(False)
    cache.clear()
    health.routers_probe()
    assert _router(hotspot).status == Router.Status.ONLINE
    assert Activation.objects.get(pk=activation.pk).status != Activation.Status.FAILED


def test_any_contact_counts(gql, hotspot):
    result = gql('mutation($id: ID!) { checkRouterConnection(routerId: $id) { ok } }', {"id": str(hotspot.router.pk)},
                 **hotspot.operator.auth)  # fmt: skip
    assert result["data"]["checkRouterConnection"]["ok"] is True
    assert _router(hotspot).status == Router.Status.ONLINE


def test_a_new_address_makes_the_status_unknown_and_probes_it_next(gql, hotspot):
    hotspot.fake.set_down()
    health.routers_probe()
    assert _router(hotspot).status == Router.Status.OFFLINE
    hotspot.fake.set_down(False)
    result = gql(
        'mutation($id: ID!) { updateRouter(input: {routerId: $id, username: "cloudpilot"}) { router { status } } }',
        {"id": str(hotspot.router.pk)},
        **hotspot.operator.auth,
    )
    assert result["data"]["updateRouter"]["router"]["status"] == "OFFLINE"  # same login: nothing changed
    Router.objects.filter(pk=hotspot.router.pk).update(username="someone")
    result = gql(
        'mutation($id: ID!) { updateRouter(input: {routerId: $id, username: "cloudpilot"}) { router { status } } }',
        {"id": str(hotspot.router.pk)},
        **hotspot.operator.auth,
    )
    # The profile re-sync reached the router at once (jobs run immediately here): ONLINE again.
    assert result["data"]["updateRouter"]["router"]["status"] == "UNKNOWN"
    assert _router(hotspot).status == Router.Status.ONLINE
    assert health.routers_probe().probed == 1


def test_the_probe_works_against_the_products_simulator_runtime(operator, settings):
    from network.simulator import runtime
    from tests.live import free_port

    runtime.stop_router_simulator()
    settings.SIMULATORS_ENABLED = True
    settings.ROUTER_ALLOWED_NETWORKS = []  # the demo's own rule lets 127.0.0.1 through on that port only
    settings.ROUTEROS_SIMULATOR_PORT = free_port()
    simulator = runtime.start_router_simulator()
    try:
        router = operator.add_router(port=simulator.port, password=runtime.PASSWORD)
        Router.objects.filter(pk=router.pk).update(username=runtime.USERNAME)
        assert health.routers_probe().online == 1
        assert Router.objects.get(pk=router.pk).status == Router.Status.ONLINE
    finally:
        runtime.stop_router_simulator()
