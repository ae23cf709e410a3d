"""`manage.py seed_demo`: the demo operator wired to the simulators, created once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from billing.models import OperatorProfile, PaymentCredential
from network.models import Package, Router

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    return (
        get_user_model().objects.count(),
        Router.objects.count(),
        Package.objects.count(),
        PaymentCredential.objects.count(),
    )


def test_seed_demo_creates_the_demo_once_and_prints_its_login(settings):
    settings.ROUTEROS_SIMULATOR_PORT = 18999
    first = seed()
    assert counts() == (1, 1, 3, 1)

    user = get_user_model().objects.get(username="demo")
    assert user.check_password("demo-pass-2026") and user.is_staff and not user.is_superuser
    public_key = OperatorProfile.objects.get(user=user).public_key
    for text in ("username    demo", "password    demo-pass-2026", f"public key  {public_key}", "/simulator/phone/"):
        assert text in first
    assert f"/portal/{public_key}/?routerId=" in first

    router = Router.objects.get(owner=user)
    assert (router.name, router.host, router.api_port) == ("Demo router (simulator)", "127.0.0.1", 18999)
    assert (router.username, router.password()) == ("admin", "demo-router-pass")
    packages = list(router.packages.order_by("price"))
    assert [p.price for p in packages] == [10, 20, 50]
    assert all(p.download_kbps and p.upload_kbps for p in packages)
    assert [p.data_limit_mb for p in packages].count(None) == 2
    credential = PaymentCredential.objects.get(owner=user)
    assert (credential.api_key, credential.private_key()) == ("ISPubKey_test_demo", "ISSecretKey_test_demo")
    assert credential.environment == "SANDBOX" and credential.webhook_challenge()

    second = seed()
    assert counts() == (1, 1, 3, 1)
    assert "nothing created" in second and f"public key  {public_key}" in second
    assert OperatorProfile.objects.get(user=user).public_key == public_key


def test_seed_demo_follows_the_router_simulator_port_and_a_changed_password(settings):
    seed()
    user = get_user_model().objects.get(username="demo")
    user.set_password("something-else-2027")
    user.save()
    settings.ROUTEROS_SIMULATOR_PORT = 19001
    output = seed()
    assert Router.objects.get().api_port == 19001
    assert "(changed since it was seeded)" in output and "demo-pass-2026" not in output


def test_seed_demo_refuses_with_simulators_off(settings):
    settings.SIMULATORS_ENABLED = False
    with pytest.raises(CommandError):
        seed()
    assert "no demo login" in seed("--if-simulators")
    assert counts() == (0, 0, 0, 0)
