"""The per-process live RouterOS connections (network.routeros_pool): reused across jobs, checked, closed
when the router changes or goes, and always opened through the destination check."""

from __future__ import annotations

import os
import socket
import time

import pytest

from network.models import Activation, Router
from network.routeros import RouterAddress, RouterNotAllowed, RouterOSDriver
from network.routeros_pool import RouterConnectionPool, pool
from network.services import RouterUpdate, router_delete, router_driver, router_update
from tests.fakes.routeros_server import USER
from tests.network.conftest import IP, ROUTER_PASSWORD, ROUTER_USER, pay

pytestmark = pytest.mark.django_db(transaction=True)

MAC_2 = "AA:BB:CC:DD:EE:02"
MAC_3 = "AA:BB:CC:DD:EE:03"


def _logins(fake) -> int:
    return fake.command_paths().count("/login")


def _eventually(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_connection_serves_every_activation(gql, client, hotspot):
    first = pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    hotspot.fake.clear_commands()
    second = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")
    third = pay(gql, client, hotspot, macAddress=MAC_3, ipAddress="10.5.50.25")

    # No connect, no login: two commands a completion.
    assert hotspot.fake.command_paths() == ["/ip/hotspot/user/add", "/ip/hotspot/active/login"] * 2
    assert hotspot.fake.connection_count == 1 and hotspot.fake.open_connections == 1
    for payment in (first, second, third):
        assert Activation.objects.get(payment=payment).status == "ACTIVE"
    assert len(hotspot.fake.users) == 3 and len(hotspot.fake.active) == 3


def test_a_connection_the_router_closed_is_reopened_before_use(gql, client, hotspot):
    pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    hotspot.fake.set_down()  # the router cuts every open connection (a reboot)
    hotspot.fake.set_down(False)
    hotspot.fake.clear_commands()

    payment = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")

    # Seen closed without a round trip: a new login, then the two commands, each once.
    assert hotspot.fake.command_paths() == ["/login", "/ip/hotspot/user/add", "/ip/hotspot/active/login"]
    activation = Activation.objects.get(payment=payment)
    assert activation.status == "ACTIVE" and activation.attempts == 1


def test_a_pooled_connection_dying_mid_add_is_retried_on_a_new_one_without_doubling(gql, client, hotspot):
    pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    hotspot.fake.clear_commands()
    # The add reaches the router and takes effect; the answer is lost with the connection.
    hotspot.fake.drop_next("/ip/hotspot/user/add", after_apply=True)

    payment = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")

    activation = Activation.objects.get(payment=payment)
    assert activation.status == "ACTIVE" and activation.attempts == 1 and activation.last_error == ""
    assert hotspot.fake.command_paths() == [
        "/ip/hotspot/user/add",  # lost with the connection
        "/login",
        "/ip/hotspot/user/add",  # "already have": our own, as the print shows
        "/ip/hotspot/user/print",
        "/ip/hotspot/active/login",
    ]
    assert [u["name"] for u in hotspot.fake.users].count(activation.access_code) == 1
    assert [s["mac-address"] for s in hotspot.fake.active if s["user"] == activation.access_code] == [MAC_2]


def test_a_foreign_user_with_the_code_is_overwritten_as_before(gql, client, hotspot):
    # Someone made a user by that name between our claim and our add (an operator by hand).
    def foreign_user() -> None:
        code = Activation.objects.get(status="PENDING").access_code
        hotspot.fake.seed_row(USER, name=code, password="not-the-code", profile="default", comment="by hand")

    hotspot.fake.on_next("/ip/hotspot/user/add", foreign_user)
    payment = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")

    activation = Activation.objects.get(payment=payment)
    assert activation.status == "ACTIVE"
    [user] = [u for u in hotspot.fake.users if u["name"] == activation.access_code]
    assert user["password"] == activation.access_code and user["profile"] == hotspot.package.profile_name
    assert user["comment"].startswith(f"cloudpilot pay:{payment.pk};")
    assert "/ip/hotspot/user/set" in hotspot.fake.command_paths()


def test_an_idle_connection_is_proven_alive_with_one_command(gql, client, hotspot, settings):
    settings.ROUTER_POOL_PING_AFTER_SECONDS = 0
    pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    hotspot.fake.clear_commands()
    pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")
    assert hotspot.fake.command_paths() == [
        "/system/identity/print",
        "/ip/hotspot/user/add",
        "/ip/hotspot/active/login",
    ]


def test_changed_credentials_get_a_new_connection_and_the_old_one_is_closed(gql, client, hotspot):
    pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    assert hotspot.fake.open_connections == 1
    hotspot.fake.password = "rotated-pass-456"
    # Changed behind the service's back (another process): the fingerprint alone must tell.
    router = Router.objects.get(pk=hotspot.router.pk)
    router.set_password("rotated-pass-456")
    router.save()
    hotspot.fake.clear_commands()

    payment = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")

    assert Activation.objects.get(payment=payment).status == "ACTIVE"
    login = hotspot.fake.commands[0]
    assert login.path == "/login" and login.args["password"] == "rotated-pass-456"
    assert hotspot.fake.connection_count == 2
    assert _eventually(lambda: hotspot.fake.open_connections == 1)  # the old login's connection is gone


def test_update_router_closes_the_connection_at_once(hotspot):
    with router_driver(hotspot.router):
        pass
    assert pool.router_ids() == [hotspot.router.pk]
    hotspot.fake.password = "rotated-pass-456"
    hotspot.fake.clear_commands()
    router_update(
        operator=hotspot.operator.user, data=RouterUpdate(router_id=hotspot.router.pk, password="rotated-pass-456")
    )
    # The old login is closed after commit; the profile sync that follows logs in with the new password.
    assert hotspot.fake.commands[0].path == "/login"
    assert hotspot.fake.commands[0].args["password"] == "rotated-pass-456"
    assert hotspot.fake.connection_count == 2
    assert _eventually(lambda: hotspot.fake.open_connections == 1)


def test_reopening_checks_the_destination_again(gql, client, hotspot, settings, monkeypatch):
    # The router is known by name; the name first leads to the (allowed) router...
    real_getaddrinfo = socket.getaddrinfo
    answers = {"router.example": "127.0.0.1"}

    def dns(host, port, *args, **kwargs):
        return real_getaddrinfo(answers.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    Router.objects.filter(pk=hotspot.router.pk).update(host="router.example")
    hotspot.router.refresh_from_db()
    pay(gql, client, hotspot, macAddress="AA:BB:CC:DD:EE:01", ipAddress=IP)
    assert hotspot.fake.connection_count == 1

    # ...then inside (loopback other than the allowed address), and the pooled connection dies.
    answers["router.example"] = "127.0.0.2"
    hotspot.fake.set_down()
    hotspot.fake.set_down(False)
    with pytest.raises(RouterNotAllowed):
        with router_driver(hotspot.router):
            pass
    payment = pay(gql, client, hotspot, macAddress=MAC_2, ipAddress="10.5.50.24")

    activation = Activation.objects.get(payment=payment)
    assert activation.status == "PENDING" and "not allowed" in activation.last_error
    assert hotspot.fake.connection_count == 1  # nothing was opened anywhere
    assert pool.router_ids() == []


def test_a_deleted_router_keeps_no_connection(hotspot):
    with router_driver(hotspot.router):
        pass
    assert hotspot.fake.open_connections == 1
    router_delete(operator=hotspot.operator.user, router_id=hotspot.router.pk, force=True)
    assert pool.router_ids() == []
    assert _eventually(lambda: hotspot.fake.open_connections == 0)

    # Whatever still works on it (expiry of its grants) gets a connection of its own, closed after use.
    router = Router.objects.get(pk=hotspot.router.pk)
    with router_driver(router) as driver:
        driver.ping()
    assert pool.router_ids() == []
    assert _eventually(lambda: hotspot.fake.open_connections == 0)


def test_a_busy_connection_is_never_shared(hotspot):
    with router_driver(hotspot.router) as first:
        with router_driver(hotspot.router) as second:
            assert first is not second
            assert hotspot.fake.open_connections == 2
        assert _eventually(lambda: hotspot.fake.open_connections == 1)  # the extra one is closed after use
    with router_driver(hotspot.router) as again:
        assert again is first


def test_a_forked_child_forgets_the_parents_connections(hotspot):
    with router_driver(hotspot.router):
        pass
    pid = os.fork()
    if pid == 0:  # the child: nothing inherited is used or shut down
        os._exit(0 if pool.router_ids() == [] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    hotspot.fake.clear_commands()
    with router_driver(hotspot.router) as driver:  # the parent's connection still works
        driver.ping()
    assert hotspot.fake.command_paths() == ["/system/identity/print"]


def test_the_pool_is_bounded(hotspot, settings, fake_router):
    from tests.fakes.routeros_server import FakeRouterOS
    from tests.network.conftest import ROUTER_PASSWORD, ROUTER_USER

    settings.ROUTER_POOL_SIZE = 1
    other = hotspot.operator.add_router()
    with FakeRouterOS(username=ROUTER_USER, password=ROUTER_PASSWORD) as other_fake:
        Router.objects.filter(pk=other.pk).update(host=other_fake.host, api_port=other_fake.port)
        other.refresh_from_db()
        with router_driver(hotspot.router):
            pass
        with router_driver(other):
            pass
        assert pool.router_ids() == [other.pk]  # the least recently used one was closed
        assert _eventually(lambda: hotspot.fake.open_connections == 0)


def test_idle_connections_are_closed_without_any_further_job(hotspot, settings):
    settings.ROUTER_POOL_IDLE_SECONDS = 0.2
    with router_driver(hotspot.router):
        pass
    assert hotspot.fake.open_connections == 1
    # Nothing else talks to a router in this process: the sweeper closes it (it wakes at least every second).
    assert _eventually(lambda: hotspot.fake.open_connections == 0, timeout=5)
    assert pool.router_ids() == []


def _driver_for(fake) -> RouterOSDriver:
    return RouterOSDriver(RouterAddress(fake.host, fake.port, ROUTER_USER, ROUTER_PASSWORD))


def test_idle_connections_are_kept_alive_off_the_critical_path(hotspot):
    """The keepalive pings an idle connection in the background, so the next job sends no ping first."""
    now = [0.0]
    local = RouterConnectionPool(ping_after=30, clock=lambda: now[0])
    with local.lease(1, "fp", lambda: _driver_for(hotspot.fake)):
        pass
    hotspot.fake.clear_commands()
    now[0] = 10.0
    local.keep_alive()
    assert hotspot.fake.command_paths() == []  # heard from 10 s ago: not due
    now[0] = 16.0
    local.keep_alive()
    assert hotspot.fake.command_paths() == ["/system/identity/print"]
    hotspot.fake.clear_commands()
    now[0] = 40.0  # 40 s after the last job, 24 s after the keepalive: no ping before the loan
    with local.lease(1, "fp", lambda: _driver_for(hotspot.fake)) as lease:
        assert lease.reused
        lease.driver.find_user("nobody")
    assert "/system/identity/print" not in hotspot.fake.command_paths()
    local.close_all()


def test_a_connection_that_fails_its_keepalive_is_dropped(hotspot):
    now = [0.0]
    local = RouterConnectionPool(ping_after=30, clock=lambda: now[0])
    with local.lease(1, "fp", lambda: _driver_for(hotspot.fake)):
        pass
    hotspot.fake.drop_next("/system/identity/print")  # the path died: the keepalive gets no answer
    now[0] = 20.0
    local.keep_alive()
    assert local.router_ids() == []
    assert _eventually(lambda: hotspot.fake.open_connections == 0)
