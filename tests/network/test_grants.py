"""extendAccess, revokeAccess, activeSessions, disconnectSession: an operator's hand on customers' time and
on who is online, against the fake MikroTik (the product's simulator)."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from network import grants
from network.activation import activation_grant
from network.models import Activation, Router
from network.routeros import parse_uptime
from network.simulator.server import format_uptime
from network.tasks import remove_revoked_user
from project.models import AuditEntry
from tests.network.conftest import IP, MAC

pytestmark = pytest.mark.django_db(transaction=True)

EXTEND = """mutation($id: ID!, $minutes: Int!, $reason: String!) {
  extendAccess(activationId: $id, minutes: $minutes, reason: $reason) {
    activation { id status expiresAt } errors { field code message } } }"""
REVOKE = """mutation($id: ID!, $reason: String!) {
  revokeAccess(activationId: $id, reason: $reason) { activation { id status } errors { field code message } } }"""
SESSIONS = """query($router: ID!) { activeSessions(routerId: $router) {
  user macAddress ipAddress uptimeSeconds bytesIn bytesOut
  activation { id accessCode status source expiresAt package { name router { name } } } } }"""
DISCONNECT = """mutation($router: ID!, $mac: String!) {
  disconnectSession(routerId: $router, macAddress: $mac) { macAddress errors { field code message } } }"""
ACCESS_STATUS = """query($router: ID!, $code: String!) {
  accessStatus(routerId: $router, code: $code) { status errors { code } } }"""


def online(hotspot, *, mac: str = MAC, ip: str = IP) -> Activation:
    """A manual grant put on the fake router, its device logged in (the job runs at commit)."""
    with transaction.atomic():
        activation = activation_grant(
            source=Activation.Source.MANUAL,
            owner=hotspot.operator.user,
            router=hotspot.router,
            package=hotspot.package,
            mac_address=mac,
            ip_address=ip,
        )
    activation.refresh_from_db()
    assert activation.status == Activation.Status.ACTIVE, activation.last_error
    return activation


def router_user(hotspot, code: str) -> dict | None:
    return next((user for user in hotspot.fake.users if user["name"] == code), None)


FAR_FUTURE = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + timedelta(days=3650)


def scheduled_removals() -> list:
    """removeRevokedUser jobs waiting for their retry (taken off the schedule; others put back)."""
    everything = HUEY.read_schedule(FAR_FUTURE)
    mine = [task for task in everything if isinstance(task, remove_revoked_user.task_class)]
    for task in everything:
        if task not in mine:
            HUEY.add_schedule(task)
    return mine


# --- extendAccess --------------------------------------------------------------------------------


def test_extend_moves_the_expiry_and_the_router_limit(gql, hotspot):
    activation = online(hotspot)
    assert router_user(hotspot, activation.access_code)["limit-uptime"] == "3600s"
    body = gql(EXTEND, {"id": str(activation.pk), "minutes": 90, "reason": "Slow network"}, **hotspot.operator.auth)
    result = body["data"]["extendAccess"]
    assert result["errors"] == []
    activation.refresh_from_db()
    assert activation.limit_uptime_seconds == 3600 + 90 * 60
    assert router_user(hotspot, activation.access_code)["limit-uptime"] == f"{3600 + 5400}s"
    [entry] = AuditEntry.objects.filter(action="extendAccess")
    assert entry.object_id == str(activation.pk) and entry.changes["reason"] == "Slow network"
    assert entry.changes["minutes"] == 90 and "expires_at" in entry.changes


def test_extend_refuses_a_grant_at_its_end_which_the_expiry_job_may_be_removing(gql, hotspot):
    activation = online(hotspot)
    Activation.objects.filter(pk=activation.pk).update(expires_at=timezone.now() + timedelta(seconds=60))
    body = gql(EXTEND, {"id": str(activation.pk), "minutes": 30, "reason": "Goodwill"}, **hotspot.operator.auth)
    [error] = body["data"]["extendAccess"]["errors"]
    assert (error["field"], error["code"]) == ("activationId", "INVALID_INPUT") and "grantAccess" in error["message"]
    activation.refresh_from_db()
    assert activation.limit_uptime_seconds == 3600 and not AuditEntry.objects.filter(action="extendAccess").exists()


def test_extensions_stop_two_years_ahead(gql, hotspot):
    """Found from outside: 69 one-year extensions overflowed the router user's 32-bit limit-uptime, and
    every later call answered INTERNAL."""
    activation = online(hotspot)
    year = 365 * 24 * 60
    auth = hotspot.operator.auth
    assert (
        gql(EXTEND, {"id": str(activation.pk), "minutes": year, "reason": "Prepaid"}, **auth)["data"]["extendAccess"][
            "errors"
        ]
        == []
    )
    body = gql(EXTEND, {"id": str(activation.pk), "minutes": year, "reason": "Prepaid"}, **auth)
    [error] = body["data"]["extendAccess"]["errors"]
    assert (error["field"], error["code"]) == ("minutes", "INVALID_INPUT")
    assert AuditEntry.objects.filter(action="extendAccess").count() == 1


def test_extend_reports_every_invalid_argument_at_once(gql, hotspot):
    body = gql(EXTEND, {"id": "999999", "minutes": 0, "reason": "two\nlines"}, **hotspot.operator.auth)
    errors = body["data"]["extendAccess"]["errors"]
    assert {(e["field"], e["code"]) for e in errors} == {
        ("minutes", "INVALID_INPUT"),
        ("reason", "INVALID_INPUT"),
        ("activationId", "ACTIVATION_NOT_FOUND"),
    }
    too_long = gql(EXTEND, {"id": "x", "minutes": 525601, "reason": "x" * 501}, **hotspot.operator.auth)
    assert {e["field"] for e in too_long["data"]["extendAccess"]["errors"]} == {"minutes", "reason", "activationId"}


def test_extend_refuses_a_grant_not_active_and_changes_nothing(gql, hotspot):
    activation = online(hotspot)
    Activation.objects.filter(pk=activation.pk).update(status=Activation.Status.EXPIRED)
    body = gql(EXTEND, {"id": str(activation.pk), "minutes": 5, "reason": "x"}, **hotspot.operator.auth)
    [error] = body["data"]["extendAccess"]["errors"]
    assert error["code"] == "INVALID_INPUT" and "EXPIRED" in error["message"]
    assert not AuditEntry.objects.filter(action="extendAccess").exists()


def test_another_operators_grant_looks_missing(gql, hotspot, other_operator):
    activation = online(hotspot)
    for document, variables in (
        (EXTEND, {"id": str(activation.pk), "minutes": 5, "reason": "x"}),
        (REVOKE, {"id": str(activation.pk), "reason": "x"}),
    ):
        body = gql(document, variables, **other_operator.auth)
        [error] = next(iter(body["data"].values()))["errors"]
        assert (error["code"], error["message"]) == ("ACTIVATION_NOT_FOUND", "Activation not found")
    activation.refresh_from_db()
    assert activation.status == Activation.Status.ACTIVE and activation.limit_uptime_seconds == 3600


# --- revokeAccess --------------------------------------------------------------------------------


def test_revoke_logs_every_device_off_and_the_code_stops_working(gql, hotspot):
    activation = online(hotspot)
    code = activation.access_code
    hotspot.fake.seed_session(code, mac_address="AA:BB:CC:DD:EE:02", address="10.5.50.24")
    body = gql(REVOKE, {"id": str(activation.pk), "reason": "Abusive use"}, **hotspot.operator.auth)
    assert body["data"]["revokeAccess"] == {"activation": {"id": str(activation.pk), "status": "REVOKED"}, "errors": []}
    activation.refresh_from_db()
    assert activation.revoked_at is not None
    assert router_user(hotspot, code) is None
    assert [s for s in hotspot.fake.active if s["user"] == code] == []
    assert [c for c in hotspot.fake.cookies if c["user"] == code] == []
    status = gql(ACCESS_STATUS, {"router": str(hotspot.router.pk), "code": code}, **hotspot.operator.portal)
    assert status["data"]["accessStatus"]["errors"][0]["code"] == "CODE_INVALID"
    [entry] = AuditEntry.objects.filter(action="revokeAccess")
    assert entry.changes == {"status": ["ACTIVE", "REVOKED"], "reason": "Abusive use"}


def test_revoke_while_the_router_is_down_is_immediate_and_retried(gql, hotspot):
    activation = online(hotspot)
    code = activation.access_code
    hotspot.fake.set_down()
    body = gql(REVOKE, {"id": str(activation.pk), "reason": "Refund"}, **hotspot.operator.auth)
    assert body["data"]["revokeAccess"]["errors"] == []
    activation.refresh_from_db()
    assert activation.status == Activation.Status.REVOKED  # the code stops working now
    hotspot.fake.set_down(False)
    assert router_user(hotspot, code) is not None
    tasks = scheduled_removals()
    assert len(tasks) == 1
    HUEY.execute(tasks[0], timestamp=FAR_FUTURE)
    assert router_user(hotspot, code) is None


def test_revoke_reports_every_invalid_argument_and_refuses_an_ended_grant(gql, hotspot):
    body = gql(REVOKE, {"id": "nope", "reason": " "}, **hotspot.operator.auth)
    assert {(e["field"], e["code"]) for e in body["data"]["revokeAccess"]["errors"]} == {
        ("activationId", "ACTIVATION_NOT_FOUND"),
        ("reason", "INVALID_INPUT"),
    }
    activation = online(hotspot)
    grants.grant_revoke(operator=hotspot.operator.user, actor=None, activation_id=activation.pk, reason="once")
    again = gql(REVOKE, {"id": str(activation.pk), "reason": "twice"}, **hotspot.operator.auth)
    assert again["data"]["revokeAccess"]["errors"][0]["code"] == "INVALID_INPUT"
    assert AuditEntry.objects.filter(action="revokeAccess").count() == 1


def test_a_grant_revoked_while_its_attempt_is_at_the_router_stays_revoked(hotspot):
    """The attempt that was putting the user on the router must not turn REVOKED back into ACTIVE."""
    owner = hotspot.operator.user
    revoked: list[int] = []

    def revoke_now() -> None:
        activation = Activation.objects.get(router=hotspot.router, status=Activation.Status.PENDING)
        grants.grant_revoke(operator=owner, actor=None, activation_id=activation.pk, reason="Changed my mind")
        revoked.append(activation.pk)

    hotspot.fake.on_next("/ip/hotspot/user/add", revoke_now)
    with transaction.atomic():
        activation = activation_grant(
            source=Activation.Source.MANUAL, owner=owner, router=hotspot.router, package=hotspot.package
        )
    activation.refresh_from_db()
    assert revoked == [activation.pk]
    assert activation.status == Activation.Status.REVOKED
    assert router_user(hotspot, activation.access_code) is None


# --- activeSessions ------------------------------------------------------------------------------


def test_active_sessions_read_live_and_joined_to_grants(gql, hotspot):
    activation = online(hotspot)
    hotspot.fake.add_traffic(MAC, bytes_in=1500, bytes_out=250_000)
    hotspot.fake.seed_session(
        "admin-guest", mac_address="AA:BB:CC:DD:EE:77", address="10.5.50.77", uptime_seconds=3723, bytes_in=9
    )
    body = gql(SESSIONS, {"router": str(hotspot.router.pk)}, **hotspot.operator.auth)
    mine, stranger = body["data"]["activeSessions"]
    assert mine["user"] == activation.access_code and mine["macAddress"] == MAC and mine["ipAddress"] == IP
    assert (mine["bytesIn"], mine["bytesOut"]) == (1500, 250_000)
    assert mine["activation"] == {
        "id": str(activation.pk),
        "accessCode": activation.access_code,
        "status": "ACTIVE",
        "source": "MANUAL",
        "expiresAt": activation.expires_at.isoformat(),
        "package": {"name": hotspot.package.name, "router": {"name": hotspot.router.name}},
    }
    assert stranger["activation"] is None and stranger["bytesIn"] == 9
    assert 3723 <= stranger["uptimeSeconds"] <= 3730


def test_active_sessions_join_is_one_query_however_many_devices(hotspot, django_assert_num_queries):
    for n in range(5):
        online(hotspot, mac=f"AA:BB:CC:DD:EE:1{n}", ip=f"10.5.50.{30 + n}")
    with django_assert_num_queries(4):  # the router, its health (came back? then contact), the join
        devices = grants.sessions_active(operator=hotspot.operator.user, router_id=hotspot.router.pk)
    assert len(devices) == 5 and all(device.activation is not None for device in devices)


def test_active_sessions_of_a_router_that_does_not_answer_is_an_error_not_a_500(gql, hotspot):
    hotspot.fake.set_down()
    body = gql(SESSIONS, {"router": str(hotspot.router.pk)}, **hotspot.operator.auth)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "ROUTER_UNREACHABLE"


def test_active_sessions_of_another_operators_router_looks_missing(gql, hotspot, other_operator):
    online(hotspot)
    body = gql(SESSIONS, {"router": str(hotspot.router.pk)}, **other_operator.auth)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "ROUTER_NOT_FOUND"
    assert MAC not in repr(body)


# --- disconnectSession ---------------------------------------------------------------------------


def test_disconnect_logs_one_device_off_and_keeps_the_code(gql, hotspot):
    activation = online(hotspot)
    hotspot.fake.seed_session(activation.access_code, mac_address="AA:BB:CC:DD:EE:02", address="10.5.50.24")
    body = gql(DISCONNECT, {"router": str(hotspot.router.pk), "mac": "aa-bb-cc-dd-ee-01"}, **hotspot.operator.auth)
    assert body["data"]["disconnectSession"] == {"macAddress": MAC, "errors": []}
    assert [s["mac-address"] for s in hotspot.fake.active] == ["AA:BB:CC:DD:EE:02"]
    assert [c["mac-address"] for c in hotspot.fake.cookies] == ["AA:BB:CC:DD:EE:02"]
    assert router_user(hotspot, activation.access_code) is not None
    [entry] = AuditEntry.objects.filter(action="disconnectSession")
    assert entry.changes == {"macAddress": MAC} and entry.object_type == "Router"


def test_disconnect_bad_input_and_no_session(gql, hotspot, other_operator):
    online(hotspot)
    body = gql(DISCONNECT, {"router": "0", "mac": "not-a-mac"}, **hotspot.operator.auth)
    assert {(e["field"], e["code"]) for e in body["data"]["disconnectSession"]["errors"]} == {
        ("routerId", "ROUTER_NOT_FOUND"),
        ("macAddress", "INVALID_MAC"),
    }
    nobody = gql(DISCONNECT, {"router": str(hotspot.router.pk), "mac": "AA:BB:CC:DD:EE:55"}, **hotspot.operator.auth)
    [error] = nobody["data"]["disconnectSession"]["errors"]
    assert (error["code"], error["message"]) == ("INVALID_INPUT", grants.NO_SESSION_MESSAGE)
    foreign = gql(DISCONNECT, {"router": str(hotspot.router.pk), "mac": MAC}, **other_operator.auth)
    assert foreign["data"]["disconnectSession"]["errors"][0]["code"] == "ROUTER_NOT_FOUND"
    assert len(hotspot.fake.active) == 1 and not AuditEntry.objects.filter(action="disconnectSession").exists()
    hotspot.fake.set_down()
    down = gql(DISCONNECT, {"router": str(hotspot.router.pk), "mac": MAC}, **hotspot.operator.auth)
    assert down["data"]["disconnectSession"]["errors"][0]["code"] == "ROUTER_UNREACHABLE"


def test_operations_refuse_the_portal_key(gql, hotspot):
    activation = online(hotspot)
    for document, variables in (
        (EXTEND, {"id": str(activation.pk), "minutes": 5, "reason": "x"}),
        (REVOKE, {"id": str(activation.pk), "reason": "x"}),
        (SESSIONS, {"router": str(hotspot.router.pk)}),
        (DISCONNECT, {"router": str(hotspot.router.pk), "mac": MAC}),
    ):
        body = gql(document, variables, **hotspot.operator.portal)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert Router.objects.get(pk=hotspot.router.pk) and len(hotspot.fake.active) == 1


# --- the simulator speaks RouterOS' durations ------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (3723, "1h2m3s"), (90000, "1d1h"), (694861, "1w1d1h1m1s")]
)
def test_uptime_as_routeros_prints_it(seconds, text):
    assert format_uptime(seconds) == text
    assert parse_uptime(text) == seconds


def test_uptime_other_forms():
    assert parse_uptime("5s120ms") == 5 and parse_uptime("01:02:03") == 3723 and parse_uptime("") == 0


def test_live_router_reads_are_throttled_per_operator(gql, hotspot, settings):
    settings.ROUTER_LIVE_RATE_LIMIT = 2
    online(hotspot)
    variables = {"router": str(hotspot.router.pk)}
    for _ in range(2):
        assert gql(SESSIONS, variables, **hotspot.operator.auth)["data"]["activeSessions"]
    body = gql(SESSIONS, variables, **hotspot.operator.auth)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    refused = gql(DISCONNECT, {**variables, "mac": MAC}, **hotspot.operator.auth)["data"]["disconnectSession"]
    assert refused["errors"][0]["code"] == "RATE_LIMITED" and len(hotspot.fake.active) == 1
