"""`python manage.py seed_demo`: a demo operator wired to the simulators, created once.

Running it again creates nothing new: each object is looked up first (the router's simulator port
follows ROUTEROS_SIMULATOR_PORT). Refuses to run with simulators off — the demo password is public.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import OperatorProfile, PaymentCredential
from billing.services import operator_profile
from network.models import Package, Router
from network.services import PackageInput, RouterInput, package_create, router_create
from network.simulator.runtime import PASSWORD as ROUTER_PASSWORD
from network.simulator.runtime import USERNAME as ROUTER_USERNAME
from project import encryption
from project.errors import ApplicationError

USERNAME = "demo"
PASSWORD = "demo-pass-2026"
ROUTER_NAME = "Demo router (simulator)"
INTASEND_PUBLIC_KEY = "ISPubKey_test_demo"
INTASEND_SECRET_KEY = "ISSecretKey_test_demo"
WEBHOOK_CHALLENGE = "demo-webhook-challenge"
# A customer's device as the hotspot's login page would describe it.
DEMO_MAC = "02:00:00:00:00:01"
DEMO_IP = "10.5.50.2"

PACKAGES = [
    PackageInput(router_id=None, name="30 minutes", price=Decimal("10"), duration_minutes=30,
                 upload_kbps=1024, download_kbps=2048),
    PackageInput(router_id=None, name="1 hour", price=Decimal("20"), duration_minutes=60,
                 upload_kbps=2048, download_kbps=5120),
    PackageInput(router_id=None, name="1 day (1 GB)", price=Decimal("50"), duration_minutes=24 * 60,
                 upload_kbps=2048, download_kbps=5120, data_limit_mb=1000),
]  # fmt: skip


def portal_path(public_key: str, router: Router) -> str:
    """The demo portal as the simulated hotspot opens it (this server's path, query included)."""
    # The parameters MikroTik's login.html passes; link-login-only is the simulator's hotspot login.
    hotspot_login = f"{settings.SERVER_URL}/simulator/router/login?{urlencode({'mac': DEMO_MAC, 'ip': DEMO_IP})}"
    query = urlencode({"routerId": router.pk, "mac": DEMO_MAC, "ip": DEMO_IP, "link-login-only": hotspot_login})
    return f"/portal/{public_key}/?{query}"


def seeded_portal_path() -> str | None:
    """The demo portal's path once this command has run, else None (read only: the landing page)."""
    profile = OperatorProfile.objects.filter(user__username=USERNAME).first()
    router = profile and Router.objects.filter(owner_id=profile.user_id, name=ROUTER_NAME).first()
    return portal_path(profile.public_key, router) if router else None


class Command(BaseCommand):
    help = "Create the demo operator, router, packages and IntaSend credential (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Seed even though simulators are off (not for production)"
        )
        parser.add_argument(
            "--if-simulators", action="store_true", help="With simulators off, say so and do nothing (make run)"
        )

    def handle(self, *args, force: bool = False, if_simulators: bool = False, **options) -> None:
        if not settings.SIMULATORS_ENABLED and not force:
            message = "Simulators are off (DEBUG=0, SIMULATORS_ENABLED unset): no demo login is seeded."
            if if_simulators:
                self.stdout.write(message)
                return
            raise CommandError(message)
        created: list[str] = []
        with transaction.atomic():
            user = self._operator(created)
            router = self._router(user, created)
            for spec in PACKAGES:
                if not Package.objects.filter(router=router, name=spec.name).exists():
                    package_create(operator=user, data=replace(spec, router_id=router.pk))
                    created.append(f"package {spec.name!r}")
            if not PaymentCredential.objects.filter(owner=user, api_key=INTASEND_PUBLIC_KEY).exists():
                # Stored without addPaymentCredential's check with IntaSend: the simulator that would answer
                # it is served by the server this seeding comes before (its open accounts take these keys).
                # So it stays unverified (verifiedAt null) until verifyPaymentCredential checks it.
                PaymentCredential.objects.create(
                    owner=user,
                    api_key=INTASEND_PUBLIC_KEY,
                    private_key_encrypted=encryption.encrypt(INTASEND_SECRET_KEY),
                    webhook_challenge_encrypted=encryption.encrypt(WEBHOOK_CHALLENGE),
                    environment=PaymentCredential.Environment.SANDBOX,
                )
                created.append("IntaSend credential")
        self._report(user, router, created)

    def _operator(self, created: list[str]):
        user_model = get_user_model()
        user = user_model.objects.filter(username=USERNAME).first()
        if user is None:
            # Staff, not superuser: the admin shows the demo operator only their own objects.
            user = user_model.objects.create_user(username=USERNAME, password=PASSWORD, is_staff=True)
            user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["billing", "network"]))
            created.append(f"operator {USERNAME!r}")
        operator_profile(operator=user)
        return user

    def _router(self, user, created: list[str]) -> Router:
        router = Router.objects.filter(owner=user, name=ROUTER_NAME).first()
        port = settings.ROUTEROS_SIMULATOR_PORT
        # The simulated hotspot's login page is served by this server: the portal posts codes there only.
        hotspot = urlsplit(settings.SERVER_URL).netloc
        if router is None:
            data = RouterInput(
                name=ROUTER_NAME,
                host="127.0.0.1",
                username=ROUTER_USERNAME,
                password=ROUTER_PASSWORD,
                api_port=port,
                hotspot_address=hotspot,
            )
            try:
                router = router_create(operator=user, data=data)
            except ApplicationError as error:  # loopback is allowed for the running simulator only
                raise CommandError(f"{error.message}: set ROUTER_ALLOWED_NETWORKS=127.0.0.1/32") from None
            created.append(f"router {ROUTER_NAME!r}")
        elif (router.api_port, router.hotspot_address) != (port, hotspot):
            router.api_port, router.hotspot_address = port, hotspot
            router.save(update_fields=["api_port", "hotspot_address", "updated_at"])
        return router

    def _report(self, user, router: Router, created: list[str]) -> None:
        public_key = operator_profile(operator=user).public_key
        base = settings.SERVER_URL
        password = PASSWORD if user.check_password(PASSWORD) else "(changed since it was seeded)"
        portal = base + portal_path(public_key, router)
        lines = [
            "Created: " + ", ".join(created) if created else "Demo data already there: nothing created.",
            "",
            f"  username    {USERNAME}",
            f"  password    {password}",
            f"  public key  {public_key}",
            f"  router id   {router.pk} ({router.host}:{router.api_port})",
            "",
            f"  start here  {base}/",
            f"  GraphiQL    {base}/graphql/",
            f"  portal      {portal}",
            f"  phone       {base}/simulator/phone/",
            f"  router      {base}/simulator/router/",
            f"  admin       {base}/admin/",
        ]
        self.stdout.write("\n".join(lines))
