"""RouterOSDriver against a fake router that speaks the real RouterOS API wire protocol.

The real ``routeros-api`` client runs over a loopback socket; only the router is fake.
"""

from __future__ import annotations

import datetime
import logging
import socket
import ssl
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import routeros_api
from routeros_api import base_api, query
from routeros_api import exceptions as ros_exc

from network.routeros import (
    AUTH_FAILED_TEXT,
    HotspotProfileSpec,
    HotspotUserSpec,
    RouterAddress,
    RouterAuthFailed,
    RouterError,
    RouterOSDriver,
    RouterUnreachable,
    format_limit_uptime,
    format_rate_limit,
)
from tests.fakes.routeros_server import (
    ACTIVE,
    COOKIE,
    HOTSPOT_NO_MORE_SESSIONS,
    PROFILE,
    USER,
    FakeRouterOS,
    decode_length,
    encode_length,
    encode_sentence,
)

API_USER = "cloudpilot"
API_PASSWORD = "Api-Secret-9f3c"
# In production the access code is both the hotspot user's name and its password.
CODE = "K7PX4TQM"
MAC = "AA:BB:CC:DD:EE:01"
IP = "10.5.50.23"


@pytest.fixture
def router() -> Iterator[FakeRouterOS]:
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, identity="shop-1") as fake:
        yield fake


def address_of(fake: FakeRouterOS, password: str = API_PASSWORD, **kw: object) -> RouterAddress:
    return RouterAddress(host=fake.host, port=fake.port, username=API_USER, password=password, **kw)  # type: ignore[arg-type]


@pytest.fixture
def driver(router: FakeRouterOS) -> Iterator[RouterOSDriver]:
    with RouterOSDriver(address_of(router), timeout=2.0) as drv:
        yield drv


def profile_spec(**kw: object) -> HotspotProfileSpec:
    values: dict[str, object] = {"name": "cp-1h", "rate_limit": "2M/5M", "shared_users": 1}
    values.update(kw)
    return HotspotProfileSpec(**values)  # type: ignore[arg-type]


def user_spec(**kw: object) -> HotspotUserSpec:
    values: dict[str, object] = {
        "name": CODE,
        "password": CODE,
        "profile": "cp-1h",
        "limit_uptime_seconds": 5400,
        "limit_bytes_total": 1_000_000_000,
        "comment": "pay:7d1c;exp:1767225600",
    }
    values.update(kw)
    return HotspotUserSpec(**values)  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on (connect gets ECONNREFUSED)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- connecting -------------------------------------------------------------------------------------


def test_plaintext_login_then_identity(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    info = driver.identity()

    assert (info.identity, info.version, info.board) == ("shop-1", "7.14.3 (stable)", "hAP ac^2")
    logins = [c for c in router.commands if c.path == "/login"]
    assert len(logins) == 1  # post-6.43 login: one round trip, no challenge
    assert logins[0].args["name"] == API_USER and "response" not in logins[0].args


def test_identity_board_is_none_when_router_has_no_board_name() -> None:
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, board=None) as fake:
        with RouterOSDriver(address_of(fake)) as drv:
            assert drv.identity().board is None


def test_legacy_router_falls_back_to_md5_challenge_login() -> None:
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, legacy_login_only=True) as fake:
        with RouterOSDriver(address_of(fake)) as drv:
            assert drv.identity().identity == "MikroTik"
        logins = [c for c in fake.commands if c.path == "/login"]
    # Plaintext attempt (ignored by the old router, which answers =ret=), then the MD5 response.
    assert len(logins) == 2
    assert "password" in logins[0].args
    assert logins[1].args["response"].startswith("00") and len(logins[1].args["response"]) == 34


@pytest.mark.parametrize("legacy", [False, True], ids=["plaintext", "legacy-md5"])
def test_wrong_api_password_raises_auth_failed_with_clear_message(legacy: bool) -> None:
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, legacy_login_only=legacy) as fake:
        with pytest.raises(RouterAuthFailed) as caught:
            with RouterOSDriver(address_of(fake, password="wrong")):
                pass  # pragma: no cover

    assert str(caught.value) == AUTH_FAILED_TEXT == "Router rejected the API username or password"
    assert caught.value.message in ("invalid user name or password (6)", "cannot log in")
    assert isinstance(caught.value, RouterError)
    # No library exception chained on: its text embeds the login sentence, password included.
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_api_ssl_accepts_the_routers_self_signed_certificate(tmp_path: Path) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*self_signed_cert(tmp_path))
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, ssl_context=server_ctx) as fake:
        with RouterOSDriver(address_of(fake, use_ssl=True)) as drv:
            assert drv.identity().version == "7.14.3 (stable)"


def test_driver_used_outside_with_block_is_a_programming_error(router: FakeRouterOS) -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        RouterOSDriver(address_of(router)).identity()


# ---- profiles and users -------------------------------------------------------------------------------


def test_ensure_profile_adds_then_updates_the_same_row(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_profile(profile_spec())  # idempotent
    driver.ensure_profile(profile_spec(rate_limit="512k/1M", shared_users=2))

    rows = [p for p in router.profiles if p["name"] == "cp-1h"]
    assert len(rows) == 1
    assert rows[0]["rate-limit"] == "512k/1M" and rows[0]["shared-users"] == "2"

    driver.ensure_profile(profile_spec(rate_limit=None))  # unlimited: the property is cleared
    (row,) = [p for p in router.profiles if p["name"] == "cp-1h"]
    assert "rate-limit" not in row


def test_ensure_user_twice_leaves_one_user_with_the_spec(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())

    first = driver.ensure_user(user_spec())
    second = driver.ensure_user(user_spec())

    assert first == second and first.startswith("*")
    (user,) = router.users
    assert user[".id"] == first
    assert user["name"] == CODE and user["password"] == CODE and user["profile"] == "cp-1h"
    assert user["limit-uptime"] == "5400s"
    assert user["limit-bytes-total"] == "1000000000"
    assert user["comment"] == "pay:7d1c;exp:1767225600"
    assert [c.path for c in router.commands].count(f"{USER}/add") == 1


def test_ensure_user_update_changes_limits_and_clears_the_data_cap(
    router: FakeRouterOS, driver: RouterOSDriver
) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_profile(profile_spec(name="cp-1d"))
    driver.ensure_user(user_spec())

    driver.ensure_user(user_spec(profile="cp-1d", limit_uptime_seconds=86400, limit_bytes_total=None))

    (user,) = router.users
    assert user["profile"] == "cp-1d" and user["limit-uptime"] == "86400s"
    assert "limit-bytes-total" not in user


def test_ensure_user_treats_already_have_on_add_as_set(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    # Another job creates the same user between our print and our add.
    router.on_next(f"{USER}/add", lambda: router.seed_row(USER, name=CODE, password="old", profile="default"))

    user_id = driver.ensure_user(user_spec())

    (user,) = router.users
    assert user[".id"] == user_id and user["password"] == CODE and user["profile"] == "cp-1h"


def test_ensure_user_with_missing_profile_is_a_router_error_with_category(
    router: FakeRouterOS, driver: RouterOSDriver
) -> None:
    with pytest.raises(RouterError) as caught:
        driver.ensure_user(user_spec(profile="nope"))

    assert not isinstance(caught.value, RouterUnreachable)
    assert caught.value.message == "input does not match any value of profile"
    assert caught.value.category == 1
    assert caught.value.command == f"{USER}/add"
    driver.identity()  # a !trap leaves the connection usable


def test_find_user_returns_row_without_password(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    assert driver.find_user(CODE) is None
    driver.ensure_profile(profile_spec())
    user_id = driver.ensure_user(user_spec())

    row = driver.find_user(CODE)

    assert row is not None
    assert row[".id"] == user_id and row["name"] == CODE and row["limit-uptime"] == "5400s"
    assert "password" not in row


def test_long_comment_round_trips_with_a_three_byte_length(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    comment = "x" * 20_000  # 0x4000 <= len < 0x200000: 3-byte length prefix both ways

    driver.ensure_user(user_spec(comment=comment))

    assert router.users[0]["comment"] == comment
    row = driver.find_user(CODE)
    assert row is not None and row["comment"] == comment


def test_router_7_18_empty_replies_are_understood() -> None:
    with FakeRouterOS(username=API_USER, password=API_PASSWORD, empty_replies=True) as fake:
        with RouterOSDriver(address_of(fake)) as drv:
            assert drv.find_user(CODE) is None
            drv.ensure_profile(profile_spec())
            drv.ensure_user(user_spec())
            drv.remove_user("someone-else")
        assert [u["name"] for u in fake.users] == [CODE]


# ---- logging devices in and out ----------------------------------------------------------------------


def test_login_active_creates_session_and_cookie(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_user(user_spec())

    driver.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)

    (session,) = router.active
    assert (session["user"], session["mac-address"], session["address"]) == (CODE, MAC, IP)
    (cookie,) = router.cookies
    assert (cookie["user"], cookie["mac-address"]) == (CODE, MAC)


def test_login_active_trap_raises_router_error(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_user(user_spec())
    router.fail_hotspot_logins("your device is not on the hotspot")

    with pytest.raises(RouterError) as caught:
        driver.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)

    assert type(caught.value) is RouterError
    assert caught.value.message == "your device is not on the hotspot"
    assert "/ip/hotspot/active/login" in str(caught.value)
    assert router.active == []


def test_login_active_with_wrong_password_is_refused(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_user(user_spec())

    with pytest.raises(RouterError, match="invalid username or password"):
        driver.login_active(user=CODE, password="guess", mac_address=MAC, ip_address=IP)


def test_shared_users_caps_devices_as_a_router_does(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec(shared_users=2))
    driver.ensure_user(user_spec())
    driver.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)
    driver.login_active(user=CODE, password=CODE, mac_address="AA:BB:CC:DD:EE:02", ip_address="10.5.50.24")

    with pytest.raises(RouterError, match="no more sessions are allowed for user"):
        driver.login_active(user=CODE, password=CODE, mac_address="AA:BB:CC:DD:EE:03", ip_address="10.5.50.25")
    refused = router.hotspot_login(user=CODE, password=CODE, mac_address="AA:BB:CC:DD:EE:03", address="10.5.50.25")
    assert refused == HOTSPOT_NO_MORE_SESSIONS

    # A device already logged in as that user logs in again (a new address, say), on both paths.
    driver.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address="10.5.50.99")
    assert router.hotspot_login(user=CODE, password=CODE, mac_address=MAC, address="10.5.50.98") is None
    sessions = driver.active_sessions(CODE)
    assert sorted((s.mac_address, s.address) for s in sessions) == [
        (MAC, "10.5.50.98"),
        ("AA:BB:CC:DD:EE:02", "10.5.50.24"),
    ]
    assert {s.user for s in sessions} == {CODE}
    assert driver.active_sessions("NOBODY99") == []


def test_remove_user_removes_session_cookie_and_user_and_is_idempotent(
    router: FakeRouterOS, driver: RouterOSDriver
) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_user(user_spec())
    driver.ensure_user(user_spec(name="OTHER234", password="OTHER234"))
    driver.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)
    # A second device of the same customer that logged in on its own, and another customer.
    router.seed_session(CODE, mac_address="AA:BB:CC:DD:EE:02", address="10.5.50.24")
    router.seed_session("OTHER234", mac_address="AA:BB:CC:DD:EE:03", address="10.5.50.25")

    driver.remove_user(CODE)

    assert [u["name"] for u in router.users] == ["OTHER234"]
    assert [s["user"] for s in router.active] == ["OTHER234"]
    assert [c["user"] for c in router.cookies] == ["OTHER234"]

    router.clear_commands()
    driver.remove_user(CODE)  # nothing left: not an error, and nothing removed
    assert not [c for c in router.commands if c.path.endswith("/remove")]
    assert [u["name"] for u in router.users] == ["OTHER234"]


def test_remove_user_tolerates_rows_vanishing_meanwhile(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    driver.ensure_user(user_spec())
    router.seed_session(CODE, mac_address=MAC, address=IP)
    # The session ends by itself between our print and our remove.
    router.trap_next(f"{ACTIVE}/remove", "no such item", category=0)

    driver.remove_user(CODE)

    assert router.users == [] and router.cookies == []


# ---- failures --------------------------------------------------------------------------------------


def test_router_refusing_connections_is_unreachable_fast() -> None:
    start = time.monotonic()
    with pytest.raises(RouterUnreachable) as caught:
        with RouterOSDriver(RouterAddress("127.0.0.1", free_port(), API_USER, API_PASSWORD), timeout=2.0):
            pass  # pragma: no cover

    assert time.monotonic() - start < 2.0 + 1.0
    assert "Could not connect to router 127.0.0.1" in str(caught.value)


def test_router_down_is_unreachable_fast(router: FakeRouterOS) -> None:
    router.set_down(True)
    start = time.monotonic()

    with pytest.raises(RouterUnreachable):
        with RouterOSDriver(address_of(router), timeout=2.0):
            pass  # pragma: no cover

    assert time.monotonic() - start < 2.0 + 1.0


def test_unresponsive_router_times_out_as_unreachable(router: FakeRouterOS) -> None:
    # Connection and login succeed, then the router stops answering (hung box, black-holed VPN).
    with RouterOSDriver(address_of(router), timeout=0.5) as drv:
        router.set_unresponsive(True)
        start = time.monotonic()
        with pytest.raises(RouterUnreachable, match="timed out"):
            drv.identity()
        assert time.monotonic() - start < 0.5 + 1.0


def test_connection_dropped_mid_command_is_unreachable(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    driver.ensure_profile(profile_spec())
    router.drop_next(f"{USER}/add")

    with pytest.raises(RouterUnreachable) as caught:
        driver.ensure_user(user_spec())
    assert caught.value.command == f"{USER}/add"
    assert caught.value.__context__ is None

    # The driver does not reconnect by itself: the job retries with a fresh one.
    with pytest.raises(RouterUnreachable, match="lost earlier"):
        driver.identity()


def test_retry_after_a_lost_reply_is_idempotent(router: FakeRouterOS) -> None:
    with RouterOSDriver(address_of(router)) as drv:
        drv.ensure_profile(profile_spec())
        router.drop_next(f"{USER}/add", after_apply=True)  # the router did it; we never heard back
        with pytest.raises(RouterUnreachable):
            drv.ensure_user(user_spec())

    with RouterOSDriver(address_of(router)) as drv:
        drv.ensure_user(user_spec())

    assert [u["name"] for u in router.users] == [CODE]


def test_fatal_from_router_is_a_router_error_and_closes_the_driver(
    router: FakeRouterOS, driver: RouterOSDriver
) -> None:
    router.fatal_next(f"{USER}/print", "too many commands")

    with pytest.raises(RouterError) as caught:
        driver.find_user(CODE)

    assert caught.value.message == "too many commands"
    with pytest.raises(RouterUnreachable):
        driver.find_user(CODE)


def test_trap_without_message_does_not_leak_a_library_key_error(router: FakeRouterOS, driver: RouterOSDriver) -> None:
    # routeros-api indexes b"message" blindly (KeyError); RouterOS should not do this, but nothing
    # from the library may escape.
    router.trap_next(f"{USER}/print", None, category=4)
    with pytest.raises(RouterError) as caught:
        driver.find_user(CODE)
    assert caught.value.category == 4 and "without a message" in caught.value.message


# ---- logging ------------------------------------------------------------------------------------------


def test_commands_are_logged_with_host_path_outcome_and_duration(
    router: FakeRouterOS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="network.routeros")
    with RouterOSDriver(address_of(router)) as drv:
        drv.identity()
        router.trap_next(f"{USER}/print", "boom")
        with pytest.raises(RouterError):
            drv.find_user(CODE)

    records = [r for r in caplog.records if r.name == "network.routeros"]
    assert [r.router_command for r in records] == [  # type: ignore[attr-defined]
        "/login",
        "/system/identity/print",
        "/system/resource/print",
        f"{USER}/print",
    ]
    assert all(r.levelno == logging.INFO and r.router_host == "127.0.0.1" for r in records)  # type: ignore[attr-defined]
    assert [r.router_outcome for r in records] == ["ok", "ok", "ok", "error"]  # type: ignore[attr-defined]
    assert all(isinstance(r.duration_ms, int) for r in records)  # type: ignore[attr-defined]
    assert "query=name" in records[-1].getMessage() and "boom" in records[-1].getMessage()


def test_passwords_never_reach_log_records(router: FakeRouterOS, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the library's included
    raised: list[BaseException] = []

    with pytest.raises(RouterAuthFailed) as bad_login:
        with RouterOSDriver(address_of(router, password=API_PASSWORD + "x")):
            pass  # pragma: no cover
    raised.append(bad_login.value)

    with RouterOSDriver(address_of(router)) as drv:
        drv.ensure_profile(profile_spec())
        drv.ensure_user(user_spec())
        drv.ensure_user(user_spec())
        drv.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)
        router.trap_next(f"{USER}/set", "failure: something about the user")
        with pytest.raises(RouterError) as trapped:
            drv.ensure_user(user_spec())
        raised.append(trapped.value)
        router.fail_hotspot_logins()
        with pytest.raises(RouterError) as refused:
            drv.login_active(user=CODE, password=CODE, mac_address=MAC, ip_address=IP)
        raised.append(refused.value)
        drv.remove_user(CODE)
        router.drop_next(f"{USER}/print")
        with pytest.raises(RouterUnreachable) as dropped:
            drv.ensure_user(user_spec())
        raised.append(dropped.value)

    assert caplog.records
    for record in caplog.records:
        text = " ".join([record.getMessage(), str(record.args), str(record.__dict__), record.exc_text or ""])
        assert API_PASSWORD not in text, record
        assert CODE not in text, record
    for error in raised:
        shown = "".join(traceback.format_exception(error))
        assert API_PASSWORD not in shown and CODE not in shown
        assert error.__context__ is None and error.__cause__ is None


# ---- values ------------------------------------------------------------------------------------------


def test_spec_validation_refuses_values_routeros_reads_as_unlimited() -> None:
    with pytest.raises(ValueError):
        user_spec(limit_uptime_seconds=0)
    with pytest.raises(ValueError):
        user_spec(limit_bytes_total=0)
    with pytest.raises(ValueError):
        user_spec(password="")
    with pytest.raises(ValueError):
        profile_spec(rate_limit="fast")
    with pytest.raises(ValueError):
        profile_spec(shared_users=0)
    assert "s3cr3t-pw" not in repr(user_spec(password="s3cr3t-pw"))
    assert API_PASSWORD not in repr(RouterAddress("h", 1, "u", API_PASSWORD))


def test_value_formatting() -> None:
    assert format_limit_uptime(5400) == "5400s"
    assert format_rate_limit(2000, 5000) == "2000k/5000k"  # rx/tx = customer upload/download
    assert format_rate_limit(None, 5000) == "0k/5000k"
    assert format_rate_limit(None, None) is None


# ---- the fake itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "size"),
    [
        (0, 1),
        (0x7F, 1),
        (0x80, 2),
        (0x3FFF, 2),
        (0x4000, 3),
        (0x1FFFFF, 3),
        (0x200000, 4),
        (0xFFFFFFF, 4),
        (0x10000000, 5),
        (0xFFFFFFFF, 5),
    ],
)
def test_fake_length_codec_matches_the_client_library(length: int, size: int) -> None:
    ours = encode_length(length)
    assert len(ours) == size
    assert ours == base_api.encode_length(length)
    theirs = iter(base_api.encode_length(length))
    assert decode_length(lambda n: bytes(next(theirs) for _ in range(n))) == length
    mine = iter(ours)
    assert base_api.decode_length(lambda n: bytes(next(mine) for _ in range(n))) == length


def test_fake_speaks_queries_tags_and_unknown_commands(router: FakeRouterOS) -> None:
    pool = routeros_api.RouterOsApiPool(
        router.host, username=API_USER, password=API_PASSWORD, port=router.port, plaintext_login=True
    )
    try:
        api = pool.get_api()
        profiles = api.get_resource(PROFILE)
        for name in ("a", "b", "c"):
            profiles.add(name=name, shared_users="2")
        rows = profiles.call(
            "print",
            {"proplist": "name"},
            additional_queries=[query.OrQuery(query.IsEqualQuery("name", "a"), query.IsEqualQuery("name", "c"))],
        )
        assert [r for r in rows] == [{"name": "a"}, {"name": "c"}]
        assert [r["name"] for r in profiles.call("print", {}, {"shared-users": "2"})] == ["a", "b", "c"]
        with pytest.raises(ros_exc.RouterOsApiCommunicationError, match="no such command"):
            api.get_resource("/nope").call("print")
        with pytest.raises(ros_exc.RouterOsApiCommunicationError, match="already have"):
            profiles.add(name="a")
        with pytest.raises(ros_exc.RouterOsApiCommunicationError, match="no such item"):
            profiles.remove(id="*FFFF")
        assert api.get_resource(COOKIE).get() == []
    finally:
        pool.disconnect()
    assert all(c.tag for c in router.commands)  # the library tags every command; replies echo them


def test_fake_sentence_encoding_ends_with_empty_word() -> None:
    assert encode_sentence(["!done", "=ret=*1"]) == b"\x05!done\x07=ret=*1\x00"


# ---- helpers -----------------------------------------------------------------------------------------


def self_signed_cert(tmp_path: Path) -> tuple[str, str]:
    """A throw-away self-signed certificate, like the one a router generates for api-ssl."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class _Trickler:
    """A "router" that answers every sentence with `!re` and then one word every `every` seconds, for ever:
    each read comes within the read timeout, the answer never ends."""

    def __init__(self, every: float) -> None:
        import threading

        self.every = every
        self.stop = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)  # the /login sentence
            conn.sendall(encode_length(3) + b"!re")
            while not self.stop.wait(self.every):
                try:
                    conn.sendall(encode_length(6) + b"=a=bbb")
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def test_a_router_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    """Found from outside: a "router" sending a word a second held a worker thread for ever, since every
    read arrived within the timeout; a few of them stopped every tenant's activations and code box."""
    trickler = _Trickler(every=0.2)
    start = time.monotonic()
    try:
        with pytest.raises(RouterUnreachable):
            with RouterOSDriver(RouterAddress("127.0.0.1", trickler.port, API_USER, API_PASSWORD), timeout=0.5):
                pass  # pragma: no cover
    finally:
        trickler.close()
    assert time.monotonic() - start < 0.5 * 3 + 1.5
