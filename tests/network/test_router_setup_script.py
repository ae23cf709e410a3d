"""routerSetupScript: the RouterOS commands for one router, values filled in, nothing secret, nothing injected."""

from __future__ import annotations

import pytest

from network.models import Router
from network.setup_script import ros_quote

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = "query($id: ID!) { routerSetupScript(routerId: $id) }"


def script(gql, operator, router_id) -> str | None:
    return gql(SCRIPT, {"id": str(router_id)}, **operator.auth)["data"]["routerSetupScript"]


def test_the_script_prepares_the_router_with_this_installations_values(gql, operator, settings):
    settings.INTASEND_CALLBACK_URL = "https://pilot.example.co.ke/webhooks/intasend/"
    settings.ROUTER_API_CLIENT_ADDRESS = "198.51.100.4/32"
    router = operator.add_router(password="router-pass-123")
    text = script(gql, operator, router.pk)
    assert "/user group add name=cloudpilot policy=api,read,write" in text
    assert '/user add name="cloudpilot" group=cloudpilot' in text
    assert '/ip service set api port=1 address="198.51.100.4/32" disabled=no' in text
    assert "login-by=http-pap,http-chap,cookie" in text
    for host in ("pilot.example.co.ke", "payment.intasend.com", "sandbox.intasend.com"):
        assert f'/ip hotspot walled-garden ip add action=accept dst-host="{host}"' in text
    assert '/ip hotspot walled-garden add dst-host="pilot.example.co.ke"' in text
    assert 'var CLOUDPILOT_URL = "https://pilot.example.co.ke";' in text
    assert f'var PUBLIC_KEY = "{operator.public_key}";' in text
    assert f'var ROUTER_ID = "{router.pk}";' in text
    assert "hotspot/login.html" in text
    # Nothing secret: the password is a placeholder.
    assert "router-pass-123" not in text and "REPLACE-WITH-A-LONG-RANDOM-PASSWORD" in text


def test_without_a_configured_address_the_request_and_a_placeholder_are_used(gql, operator):
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(use_ssl=True, api_port=8729)
    text = script(gql, operator, router.pk)
    assert "/ip service set api-ssl port=8729" in text and "REPLACE-WITH-CLOUDPILOT-IP/32" in text
    assert 'var CLOUDPILOT_URL = "http://testserver";' in text


def test_a_hostile_router_name_or_user_cannot_inject_commands(gql, operator):
    router = operator.add_router()
    hostile = 'x" ; /system reset-configuration ; :put "$y [/user print]'
    Router.objects.filter(pk=router.pk).update(name=hostile + "\n/ip firewall filter remove 0", username=hostile)
    text = script(gql, operator, router.pk)
    commands = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(line.startswith("/") for line in commands)
    assert not any("reset-configuration" in line for line in commands if "\\" not in line)
    assert not any(line.startswith("/system") or line.startswith("/ip firewall") for line in text.splitlines())
    user_line = next(line for line in commands if line.startswith("/user add"))
    assert user_line.count('"') == 4  # two strings, each one quoted value: no quote of the name survives
    assert "$" not in user_line and "[" not in user_line and ";" not in user_line


def test_ros_quote_escapes_everything_that_means_something():
    assert ros_quote("plain-name.1") == '"plain-name.1"'
    assert ros_quote('a"b$c;d\ne[f]\\g?') == '"a\\22b\\24c\\3Bd\\0Ae\\5Bf\\5D\\5Cg\\3F"'
    assert ros_quote("Café") == '"Caf\\C3\\A9"'


def test_someone_elses_router_has_no_script(gql, operator, other_operator):
    router = operator.add_router()
    assert script(gql, other_operator, router.pk) is None
    assert script(gql, operator, "999999") is None
    portal = gql(SCRIPT, {"id": str(router.pk)}, **operator.portal)
    assert portal["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
