"""The Django admin as an operator's support desk: their own objects only, and filters that find a payment."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import Payment, PaymentEvent, WebhookDelivery
from network.models import Activation, Package
from tests.grants import grant_for

pytestmark = pytest.mark.django_db


def make_staff(operator) -> None:
    """What seed_demo gives an operator: staff (not superuser) with the billing and network permissions."""
    user = operator.user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["billing", "network"]))


def payment(operator, router, package, *, phone: str, status: str = Payment.Status.PROCESSING, days_ago: int = 0):
    created = Payment.objects.create(
        owner=operator.user,
        router=router,
        package=package,
        phone_number=phone,
        amount=package.price,
        status=status,
        intasend_invoice_id=f"INV{router.pk}{phone[-4:]}{days_ago}",
    )
    if days_ago:
        Payment.objects.filter(pk=created.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return created


@pytest.fixture
def desk(operator, other_operator, client):
    """Alice (staff operator) with two routers and three payments; Bob with his own router and payment."""
    make_staff(operator)
    main, annex = operator.add_router("Main Street"), operator.add_router("Annex", host="10.0.0.2")
    main_pkg, annex_pkg = operator.add_package(main), operator.add_package(annex, price="50.00", name="Day")
    bobs_router = other_operator.add_router("Bob's Cafe")
    bobs_pkg = other_operator.add_package(bobs_router)
    done = payment(operator, main, main_pkg, phone="254712345678", status=Payment.Status.COMPLETED)
    failed = payment(operator, annex, annex_pkg, phone="254722000111", status=Payment.Status.FAILED, days_ago=40)
    waiting = payment(operator, main, main_pkg, phone="254733000222")
    bobs = payment(other_operator, bobs_router, bobs_pkg, phone="254712345678", status=Payment.Status.COMPLETED)
    grant_for(done, status=Activation.Status.ACTIVE, access_code="K7P2MX9Q", attempts=1)
    PaymentEvent.objects.create(payment=done, source="WEBHOOK", old_status="PROCESSING", new_status="COMPLETED",
                                gateway_state="COMPLETE", note="confirmed by the status API")  # fmt: skip
    WebhookDelivery.objects.create(payment=done, invoice_id=done.intasend_invoice_id, state="COMPLETE",
                                   outcome="ACCEPTED", http_status=200, body={"state": "COMPLETE"})  # fmt: skip
    client.force_login(operator.user)
    return type(
        "Desk",
        (),
        dict(client=client, main=main, annex=annex, bobs_router=bobs_router, bobs_pkg=bobs_pkg, done=done,
             failed=failed, waiting=waiting, bobs=bobs),
    )  # fmt: skip


def listed(response) -> set[str]:
    assert response.status_code == 200, response.status_code
    return {str(obj.pk) for obj in response.context["cl"].result_list}


def test_operator_sees_only_their_own_payments(desk) -> None:
    assert listed(desk.client.get("/admin/billing/payment/")) == {str(desk.done.pk), str(desk.failed.pk),
                                                                  str(desk.waiting.pk)}  # fmt: skip
    # Someone else's payment is not there at all (the admin redirects as for a missing object).
    response = desk.client.get(f"/admin/billing/payment/{desk.bobs.pk}/change/")
    assert response.status_code == 302
    assert desk.client.get(f"/admin/billing/payment/{desk.done.pk}/change/").status_code == 200


def test_payment_filters_status_router_date_and_phone(desk) -> None:
    get = desk.client.get
    assert listed(get("/admin/billing/payment/?status__exact=COMPLETED")) == {str(desk.done.pk)}
    assert listed(get(f"/admin/billing/payment/?router__id__exact={desk.annex.pk}")) == {str(desk.failed.pk)}
    since = (timezone.now() - timedelta(days=7)).isoformat()
    recent = listed(get("/admin/billing/payment/", {"created_at__gte": since}))
    assert recent == {str(desk.done.pk), str(desk.waiting.pk)}
    for typed in ("0712345678", "+254 712 345 678", "254712345678", "712345678"):
        assert listed(get("/admin/billing/payment/", {"q": typed})) == {str(desk.done.pk)}, typed
    assert listed(get("/admin/billing/payment/", {"q": "K7P2MX9Q"})) == {str(desk.done.pk)}  # the access code


def test_filter_choices_never_show_another_operators_router(desk) -> None:
    html = desk.client.get("/admin/billing/payment/").content.decode()
    assert "Main Street" in html and "Annex" in html
    assert "Bob&#x27;s Cafe" not in html and "Bob's Cafe" not in html
    html = desk.client.get("/admin/network/package/").content.decode()
    assert "Bob&#x27;s Cafe" not in html and "Bob's Cafe" not in html


def test_payment_page_shows_activation_events_and_webhooks(desk) -> None:
    html = desk.client.get(f"/admin/billing/payment/{desk.done.pk}/change/").content.decode()
    assert "K7P2MX9Q" in html  # the activation inline
    assert "confirmed by the status API" in html  # the events inline
    assert "Accepted" in html and "webhook deliveries" in html.lower()
    assert 'name="_save"' not in html  # a view page: state changes only through the services


def test_operator_cannot_delete_payments(desk) -> None:
    assert desk.client.get(f"/admin/billing/payment/{desk.done.pk}/delete/").status_code == 403


def test_routers_list_their_last_contact_and_packages_only_go_on_own_routers(desk) -> None:
    response = desk.client.get("/admin/network/router/")
    assert listed(response) == {str(desk.main.pk), str(desk.annex.pk)}
    assert "Last contact" in response.content.decode()

    form = desk.client.get("/admin/network/package/add/").content.decode()
    assert f'value="{desk.main.pk}"' in form and f'value="{desk.bobs_router.pk}"' not in form
    response = desk.client.post(
        "/admin/network/package/add/",
        {"router": desk.bobs_router.pk, "name": "Sneaky", "price": "10.00", "duration_minutes": 30,
         "shared_users": 1, "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Package.objects.filter(name="Sneaky").exists()


def test_credentials_show_no_secrets_to_their_operator(desk, operator) -> None:
    credential = operator.add_credential()
    html = desk.client.get(f"/admin/billing/paymentcredential/{credential.pk}/change/").content.decode()
    assert credential.api_key in html
    for secret in ("ISSecretKey_test_verysecret0001", "webhook-challenge-1", credential.private_key_encrypted):
        assert secret not in html


def test_superuser_sees_everyone(desk) -> None:
    root = get_user_model().objects.create_superuser("root", password="pw-123456789")
    desk.client.force_login(root)
    assert str(desk.bobs.pk) in listed(desk.client.get("/admin/billing/payment/"))
    assert Decimal(desk.bobs.amount) == Decimal("25.00")


def test_activation_found_by_the_code_the_customer_reads_out(desk) -> None:
    response = desk.client.get("/admin/network/activation/", {"q": "K7P2MX9Q"})
    assert listed(response) == {str(desk.done.activation.pk)}
    assert "Bob&#x27;s Cafe" not in response.content.decode()
    assert desk.client.get("/admin/network/activation/add/").status_code == 403


def test_a_package_added_or_changed_in_the_admin_reaches_the_router(
    desk, settings, django_capture_on_commit_callbacks
) -> None:
    from network.models import Router
    from tests.fakes.routeros_server import FakeRouterOS

    settings.ROUTER_API_TIMEOUT_SECONDS = 2
    with FakeRouterOS(username="cloudpilot", password="router-pass-123") as fake:
        Router.objects.filter(pk=desk.main.pk).update(host=fake.host, api_port=fake.port)
        form = {"name": "Fast hour", "price": "40.00", "duration_minutes": 60, "upload_kbps": 4096,
                "download_kbps": 8192, "shared_users": 1, "is_active": "on"}  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            response = desk.client.post("/admin/network/package/add/", {"router": desk.main.pk, **form})
        assert response.status_code == 302, response.content[:2000]
        package = Package.objects.get(name="Fast hour")
        profiles = {p["name"]: p for p in fake.profiles}
        assert profiles[package.profile_name]["rate-limit"] == "4096k/8192k"

        with django_capture_on_commit_callbacks(execute=True):
            response = desk.client.post(
                f"/admin/network/package/{package.pk}/change/", {**form, "download_kbps": 10240}
            )
        assert response.status_code == 302
        assert {p["name"]: p for p in fake.profiles}[package.profile_name]["rate-limit"] == "4096k/10240k"
