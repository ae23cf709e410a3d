"""The RouterOS simulator as the app runs it: one per process, its page and JSON, the hotspot login page."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from billing.management.commands import seed_demo
from network.routeros import HotspotProfileSpec, HotspotUserSpec, RouterAddress, RouterOSDriver
from network.simulator import runtime
from network.simulator.server import RouterOSSimulator
from tests.live import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def simulator(settings) -> Iterator[RouterOSSimulator]:
    """This process's simulator, started on a free port (and stopped again)."""
    runtime.stop_router_simulator()
    settings.SIMULATORS_ENABLED = True
    settings.ROUTEROS_SIMULATOR_PORT = free_port()
    started = runtime.start_router_simulator()
    assert started is not None
    yield started
    runtime.stop_router_simulator()


def driver_for(simulator: RouterOSSimulator, password: str = runtime.PASSWORD) -> RouterOSDriver:
    address = RouterAddress(host="127.0.0.1", port=simulator.port, username=runtime.USERNAME, password=password)
    return RouterOSDriver(address, timeout=2)


def put_customer_online(simulator: RouterOSSimulator, code: str = "ABCD2345", *, shared_users: int = 1) -> None:
    with driver_for(simulator) as driver:
        driver.ensure_profile(
            HotspotProfileSpec(name="cloudpilot-pkg-7", rate_limit="1024k/2048k", shared_users=shared_users)
        )
        driver.ensure_user(
            HotspotUserSpec(
                name=code,
                password=code,
                profile="cloudpilot-pkg-7",
                limit_uptime_seconds=3600,
                limit_bytes_total=None,
                comment="cloudpilot pay:x;exp:1",
            )
        )
        driver.login_active(user=code, password=code, mac_address="AA:BB:CC:DD:EE:01", ip_address="10.5.50.9")


def test_demo_router_login_matches_seed_demo() -> None:
    assert (runtime.USERNAME, runtime.PASSWORD) == (seed_demo.ROUTER_USERNAME, seed_demo.ROUTER_PASSWORD)


def test_started_once_per_process_on_the_configured_port(simulator, settings) -> None:
    assert simulator.port == settings.ROUTEROS_SIMULATOR_PORT
    assert runtime.start_router_simulator() is simulator
    assert runtime.router_simulator() is simulator
    with driver_for(simulator) as driver:
        assert driver.identity().identity == runtime.IDENTITY


def test_wrong_password_is_refused_like_a_router(simulator) -> None:
    from network.routeros import RouterAuthFailed

    with pytest.raises(RouterAuthFailed), driver_for(simulator, password="nope"):
        pass


def test_a_taken_port_is_a_warning_not_a_crash(settings, caplog) -> None:
    runtime.stop_router_simulator()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.ROUTEROS_SIMULATOR_PORT = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="network.simulator.runtime"):
            assert runtime.start_router_simulator() is None
            assert runtime.start_router_simulator() is None  # tried once per process
    assert "RouterOS simulator not started" in caplog.text
    assert str(settings.ROUTEROS_SIMULATOR_PORT) in (runtime.start_error() or "")
    runtime.stop_router_simulator()


def test_the_test_process_never_autostarts_it(settings) -> None:
    """tests/conftest.py turns autostart off, so importing project.asgi in a test binds nothing."""
    import project.asgi  # noqa: F401

    assert settings.ROUTEROS_SIMULATOR_AUTOSTART is False
    assert runtime.router_simulator() is None


def test_state_json_shows_the_tables_without_secrets(simulator, client) -> None:
    put_customer_online(simulator)
    state = client.get("/simulator/router/state.json").json()
    assert state["running"] is True
    assert state["address"] == f"127.0.0.1:{simulator.port}"
    [user] = state["users"]
    assert (user["name"], user["profile"], user["limit-uptime"]) == ("ABCD2345", "cloudpilot-pkg-7", "3600s")
    assert "password" not in user
    assert [p["name"] for p in state["profiles"]] == ["default", "cloudpilot-pkg-7"]
    assert [(s["user"], s["mac-address"], s["address"]) for s in state["active"]] == [
        ("ABCD2345", "AA:BB:CC:DD:EE:01", "10.5.50.9")
    ]
    assert [c["user"] for c in state["cookies"]] == ["ABCD2345"]
    logins = [c for c in state["commands"] if c["path"] == "/login"]
    assert logins and all(c["args"]["password"] == "***" for c in logins)
    added = next(c for c in state["commands"] if c["path"] == "/ip/hotspot/user/add")
    assert added["args"]["password"] == "***"
    assert runtime.PASSWORD not in str(state) and "=password=ABCD2345" not in str(state)


def test_router_page_and_its_partial_refresh(simulator, client) -> None:
    put_customer_online(simulator)
    page = client.get("/simulator/router/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="table-users"' in html and 'data-key="ABCD2345"' in html
    assert "1024k/2048k" in html and "AA:BB:CC:DD:EE:01" in html
    assert "?partial=1" in html and "<script src=" not in html  # inline, nothing from elsewhere
    partial = client.get("/simulator/router/?partial=1").content.decode()
    assert 'data-key="ABCD2345"' in partial and "<html" not in partial


def test_router_page_says_when_the_simulator_is_not_running(settings, client) -> None:
    runtime.stop_router_simulator()
    settings.SIMULATORS_ENABLED = True
    html = client.get("/simulator/router/").content.decode()
    assert "not running in this process" in html
    assert client.get("/simulator/router/state.json").json()["running"] is False


def test_hotspot_login_page_logs_the_device_in(simulator, client) -> None:
    put_customer_online(simulator, shared_users=2)
    response = client.post(
        "/simulator/router/login?mac=aa:bb:cc:dd:ee:02&ip=10.5.50.10",
        {"username": "ABCD2345", "password": "ABCD2345", "dst": "http://example.com/"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-state="logged-in"' in html and 'href="http://example.com/"' in html
    sessions = {(s["user"], s["mac-address"]) for s in simulator.active}
    assert ("ABCD2345", "AA:BB:CC:DD:EE:02") in sessions


def test_hotspot_login_page_refuses_a_device_beyond_shared_users(simulator, client) -> None:
    put_customer_online(simulator)  # one device allowed, and it is online
    response = client.post(
        "/simulator/router/login?mac=aa:bb:cc:dd:ee:02&ip=10.5.50.10",
        {"username": "ABCD2345", "password": "ABCD2345", "dst": "http://example.com/"},
    )
    html = response.content.decode()
    assert 'data-state="login"' in html and "no more sessions are allowed for user" in html
    assert [s["mac-address"] for s in simulator.active] == ["AA:BB:CC:DD:EE:01"]


def test_hotspot_login_page_refuses_a_wrong_code(simulator, client) -> None:
    put_customer_online(simulator)
    response = client.post(
        "/simulator/router/login", {"username": "ABCD2345", "password": "WRONG", "dst": "javascript:alert(1)"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'data-state="login"' in html
    assert "invalid username or password" in html
    assert "javascript:" not in html
    assert len(simulator.active) == 1


def test_off_means_absent(settings, client) -> None:
    settings.SIMULATORS_ENABLED = False
    for path in ("/simulator/router/", "/simulator/router/state.json", "/simulator/router/login"):
        assert client.get(path).status_code == 404
