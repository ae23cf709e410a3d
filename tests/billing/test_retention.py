"""DATA_RETENTION_DAYS: settled payments' phones, MACs, IPs and raw bodies go; the books stay (issue 13.7)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import tasks
from billing.models import Payment, PaymentEvent, WebhookDelivery
from billing.retention import REDACTED_BODY, ErasureCounts, personal_data_erase_expired
from network import retention as network_retention
from network.models import Activation
from tests.grants import grant_for

pytestmark = pytest.mark.django_db

DAYS = 365
PHONE = "254712345678"
GATEWAY_ANSWER = {"invoice": {"state": "COMPLETE", "account": PHONE, "mpesa_reference": "SGR7K3L2QX"}}
WEBHOOK_BODY = {"invoice_id": "INV-OLD", "state": "COMPLETE", "account": PHONE, "challenge": "[redacted]"}
NOTHING = ErasureCounts(payments=0, payment_events=0, webhook_deliveries=0, activations=0)


@pytest.fixture
def now() -> datetime:
    """The clock the job is given: rows are dated relative to it, nothing waits."""
    return timezone.now()


@pytest.fixture
def shop_parts(operator):
    router = operator.add_router()
    return operator, router, operator.add_package(router)


@pytest.fixture
def settled(shop_parts, now):
    """A payment settled ``age_days`` before ``now``, with an event and a webhook carrying the phone."""
    operator, router, package = shop_parts
    counter = iter(range(1, 1000))

    def make(age_days: float, status: str = Payment.Status.COMPLETED) -> Payment:
        n = next(counter)
        at = now - timedelta(days=age_days)
        payment = Payment.objects.create(
            owner=operator.user,
            router=router,
            package=package,
            phone_number=PHONE,
            amount=package.price,
            status=status,
            mac_address="AA:BB:CC:DD:EE:0F",
            ip_address="10.5.50.23",
            client_ip="197.248.1.20",
            request_fingerprint="f" * 64,
            intasend_invoice_id=f"INV-{n}",
            mpesa_reference=f"SGR7K3L{n:03d}" if status == Payment.Status.COMPLETED else "",
            failure_reason="" if status != Payment.Status.FAILED else "Request cancelled by user",
            client_secret=f"secret-{n}",
        )
        event = PaymentEvent.objects.create(
            payment=payment, source="WEBHOOK", old_status="PROCESSING", new_status=status,
            gateway_state="COMPLETE", note="confirmed by the status API", raw_payload=GATEWAY_ANSWER,
        )  # fmt: skip
        delivery = WebhookDelivery.objects.create(
            payment=payment, remote_addr="52.31.2.2", invoice_id=payment.intasend_invoice_id, api_ref=str(payment.pk),
            state="COMPLETE", body=WEBHOOK_BODY, outcome="ACCEPTED", http_status=200,
        )  # fmt: skip
        paid = status == Payment.Status.COMPLETED
        final = {"completed_at": at, "package_expiry_time": at + timedelta(hours=1)} if paid else {}
        Payment.objects.filter(pk=payment.pk).update(created_at=at, updated_at=at, **final)
        PaymentEvent.objects.filter(pk=event.pk).update(created_at=at)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=at)
        return Payment.objects.get(pk=payment.pk)

    return make


def erase(now: datetime, days: int = DAYS, **options) -> ErasureCounts:
    return personal_data_erase_expired(now=now, retention_days=days, **options)


def snapshot() -> list[tuple]:
    """Every stored value of every row the job may touch."""
    rows = []
    for model in (Payment, PaymentEvent, WebhookDelivery, Activation):
        rows += [tuple(row.values()) for row in model.objects.order_by("pk").values()]
    return rows


def test_an_old_settled_payment_loses_personal_data_and_keeps_the_books(settled, now):
    old = settled(DAYS + 1)
    completed_at, created_at = old.completed_at, old.created_at

    assert erase(now) == ErasureCounts(payments=1, payment_events=1, webhook_deliveries=1, activations=0)

    old.refresh_from_db()
    assert (old.phone_number, old.mac_address, old.ip_address, old.client_ip, old.request_fingerprint) == (
        "", "", None, None, "",
    )  # fmt: skip
    assert old.personal_data_erased_at == now
    # The books: amount, status, receipt, invoice and when it happened.
    assert (old.amount, old.status, old.mpesa_reference, old.intasend_invoice_id) == (
        Decimal("25.00"), "COMPLETED", "SGR7K3L001", "INV-1",
    )  # fmt: skip
    assert (old.created_at, old.completed_at) == (created_at, completed_at)
    event = old.events.get()
    assert event.raw_payload == REDACTED_BODY
    assert (event.new_status, event.gateway_state, event.note) == (
        "COMPLETED",
        "COMPLETE",
        "confirmed by the status API",
    )
    delivery = old.webhook_deliveries.get()
    assert (delivery.body, delivery.raw_body, delivery.remote_addr) == (REDACTED_BODY, "", None)
    assert (delivery.invoice_id, delivery.state, delivery.outcome, delivery.http_status) == (
        "INV-1", "COMPLETE", "ACCEPTED", 200,
    )  # fmt: skip
    assert delivery.personal_data_erased_at == now
    assert PHONE not in str(snapshot())


def test_a_failed_payment_goes_the_same_way_and_keeps_its_reason(settled, now):
    failed = settled(DAYS + 30, status=Payment.Status.FAILED)
    assert erase(now).payments == 1
    failed.refresh_from_db()
    assert (failed.phone_number, failed.status, failed.failure_reason) == ("", "FAILED", "Request cancelled by user")


def test_a_newer_payment_keeps_everything(settled, now):
    settled(DAYS - 1)
    settled(DAYS + 1, status=Payment.Status.FAILED)
    before = Payment.objects.get(intasend_invoice_id="INV-1")

    assert erase(now).payments == 1

    after = Payment.objects.get(pk=before.pk)
    assert (after.phone_number, after.mac_address, after.ip_address) == (PHONE, "AA:BB:CC:DD:EE:0F", "10.5.50.23")
    assert after.personal_data_erased_at is None and after.updated_at == before.updated_at
    assert after.events.get().raw_payload == GATEWAY_ANSWER
    assert after.webhook_deliveries.get().body == WEBHOOK_BODY


def test_a_payment_still_open_is_untouched_however_old(settled, now):
    settled(3 * DAYS, status=Payment.Status.PROCESSING)
    settled(3 * DAYS, status=Payment.Status.PENDING)
    untouched = snapshot()

    assert erase(now) == NOTHING
    assert snapshot() == untouched


@pytest.mark.parametrize("status", [Activation.Status.ACTIVE, Activation.Status.PENDING])
def test_a_payment_whose_activation_still_runs_is_untouched(settled, now, status):
    paid = settled(DAYS + 1)
    grant_for(paid, status=status, access_code="K7P2MX9Q")
    untouched = snapshot()

    assert erase(now) == NOTHING
    assert snapshot() == untouched


def test_a_recently_touched_payment_waits_for_its_last_change(settled, now):
    """Last touched (a late paid-after-failure flag, say) counts, not only when it was created."""
    touched = settled(DAYS + 10, status=Payment.Status.FAILED)
    Payment.objects.filter(pk=touched.pk).update(updated_at=now - timedelta(days=2))
    assert erase(now).payments == 0
    assert erase(now + timedelta(days=DAYS - 1)).payments == 1


def test_a_finished_activation_loses_the_routers_words_and_keeps_its_state(settled, now):
    paid = settled(DAYS + 1)
    expired = grant_for(paid, status=Activation.Status.EXPIRED, access_code="K7P2MX9Q", attempts=2,
        last_error="Automatic login of the device failed (no such host 10.5.50.23)",
    )  # fmt: skip
    Activation.objects.filter(pk=expired.pk).update(updated_at=paid.completed_at, expires_at=paid.completed_at)

    assert erase(now) == ErasureCounts(payments=1, payment_events=1, webhook_deliveries=1, activations=1)

    expired.refresh_from_db()
    assert (expired.last_error, expired.status, expired.access_code, expired.attempts) == ("", "EXPIRED", "K7P2MX9Q", 2)
    assert expired.personal_data_erased_at == now
    # The grant's own copy of the customer's phone and device goes too.
    assert (expired.phone_number, expired.mac_address, expired.ip_address) == ("", "", None)


@pytest.mark.parametrize("status", [Activation.Status.REVOKED, Activation.Status.FAILED])
def test_a_grant_without_a_payment_loses_the_customers_phone_and_device(shop_parts, now, status):
    operator, router, package = shop_parts
    long_ago = now - timedelta(days=DAYS + 1)
    grant = Activation.objects.create(
        source=Activation.Source.MANUAL, owner=operator.user, router=router, package=package, status=status,
        phone_number=PHONE, mac_address="AA:BB:CC:DD:EE:0F", ip_address="10.5.50.23", access_code="K7P2MX9Q",
        expires_at=long_ago,
    )  # fmt: skip
    recent = Activation.objects.create(
        source=Activation.Source.MANUAL, owner=operator.user, router=router, package=package, status=status,
        phone_number=PHONE, mac_address="AA:BB:CC:DD:EE:0F", ip_address="10.5.50.23",
    )  # fmt: skip
    Activation.objects.filter(pk=grant.pk).update(updated_at=long_ago)

    assert erase(now).activations == 1
    grant.refresh_from_db()
    assert (grant.phone_number, grant.mac_address, grant.ip_address, grant.access_code) == ("", "", None, "K7P2MX9Q")
    assert Activation.objects.get(pk=recent.pk).phone_number == PHONE


def test_running_twice_changes_nothing_the_second_time(settled, now):
    paid = settled(DAYS + 1)
    settled(DAYS + 2, status=Payment.Status.FAILED)
    settled(DAYS - 5)
    grant_for(paid, status=Activation.Status.FAILED, last_error="no such host 10.5.50.23")
    Activation.objects.filter(payment=paid).update(updated_at=paid.completed_at)
    WebhookDelivery.objects.create(
        remote_addr="203.0.113.9", raw_body="not json 0712345678", outcome="INVALID", http_status=400
    )
    WebhookDelivery.objects.filter(payment=None).update(received_at=now - timedelta(days=DAYS + 1))

    first = erase(now)
    assert first == ErasureCounts(payments=2, payment_events=2, webhook_deliveries=3, activations=1)
    erased = snapshot()

    assert erase(now) == NOTHING
    assert snapshot() == erased


def test_a_dry_run_counts_what_a_real_run_erases_and_changes_nothing(settled, now):
    paid = settled(DAYS + 1)
    settled(DAYS + 3, status=Payment.Status.FAILED)
    settled(10)
    grant_for(paid, status=Activation.Status.FAILED, last_error="refused")
    Activation.objects.filter(payment=paid).update(updated_at=paid.completed_at)
    untouched = snapshot()

    counted = erase(now, dry_run=True)
    assert snapshot() == untouched
    assert counted == ErasureCounts(payments=2, payment_events=2, webhook_deliveries=2, activations=1)
    assert erase(now) == counted


def test_a_webhook_arriving_after_the_erasure_is_kept_for_its_own_period(settled, now):
    old = settled(DAYS + 1)
    erase(now)
    late = WebhookDelivery.objects.create(
        payment=old, remote_addr="52.31.2.2", body=WEBHOOK_BODY, outcome="ACCEPTED", http_status=200
    )
    late_event = PaymentEvent.objects.create(
        payment=old, source="WEBHOOK", old_status="COMPLETED", new_status="COMPLETED", raw_payload=GATEWAY_ANSWER
    )

    assert erase(now) == NOTHING
    assert erase(now + timedelta(days=DAYS + 1)) == ErasureCounts(
        payments=0, payment_events=1, webhook_deliveries=1, activations=0
    )
    late.refresh_from_db()
    late_event.refresh_from_db()
    assert (late.body, late.remote_addr, late_event.raw_payload) == (REDACTED_BODY, None, REDACTED_BODY)


def test_unmatched_webhooks_go_by_age_alone(now):
    rejected = WebhookDelivery.objects.create(
        remote_addr="203.0.113.9", body=WEBHOOK_BODY, outcome="REJECTED", http_status=403
    )
    WebhookDelivery.objects.filter(pk=rejected.pk).update(received_at=now - timedelta(days=DAYS + 1))
    recent = WebhookDelivery.objects.create(
        remote_addr="203.0.113.9", body=WEBHOOK_BODY, outcome="IGNORED", http_status=200
    )

    assert erase(now).webhook_deliveries == 1
    rejected.refresh_from_db()
    recent.refresh_from_db()
    assert (rejected.body, rejected.remote_addr, rejected.outcome) == (REDACTED_BODY, None, "REJECTED")
    assert (recent.body, recent.remote_addr) == (WEBHOOK_BODY, "203.0.113.9")


def test_a_year_of_rows_is_erased_in_short_batches(settled, now, monkeypatch):
    monkeypatch.setattr(network_retention, "ERASE_BATCH_SIZE", 2)
    for age in range(5):
        settled(DAYS + 1 + age)

    with CaptureQueriesContext(connection) as captured:
        counts = erase(now)

    assert counts == ErasureCounts(payments=5, payment_events=5, webhook_deliveries=5, activations=0)
    payment_updates = [q for q in captured if q["sql"].startswith('UPDATE "billing_payment"')]
    assert len(payment_updates) == 3  # 2 + 2 + 1 rows, one short statement each
    assert not Payment.objects.exclude(phone_number="").exists()


def test_a_retention_under_a_day_is_refused(now):
    with pytest.raises(ValueError, match="at least 1"):
        erase(now, days=0)


def test_the_admin_still_shows_erased_payments(settled, now, client, operator):
    operator.user.is_staff = True
    operator.user.save(update_fields=["is_staff"])
    operator.user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["billing", "network"]))
    client.force_login(operator.user)
    erased = settled(DAYS + 1)
    grant_for(erased, status=Activation.Status.EXPIRED, access_code="K7P2MX9Q")
    Activation.objects.filter(payment=erased).update(updated_at=erased.completed_at)
    kept = settled(1)
    erase(now)

    listing = client.get("/admin/billing/payment/")
    assert listing.status_code == 200
    page = listing.content.decode()
    erased_row = page[page.index(f'href="/admin/billing/payment/{erased.pk}/change/"') :].split("</tr>")[0]
    assert '<td class="field-phone_number">-</td>' in erased_row  # the admin's mark for "nothing here"
    assert '<td class="field-amount">25.00</td>' in erased_row
    assert page.count(PHONE) == 1  # the kept payment's

    detail = client.get(f"/admin/billing/payment/{erased.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "Personal data erased at" in body and "SGR7K3L001" in body
    assert body.count("{&quot;redacted&quot;: &quot;retention&quot;}") == 2  # its event and its webhook
    assert PHONE not in body and "10.5.50.23" not in body and "AA:BB:CC:DD:EE:0F" not in body

    found = client.get("/admin/billing/payment/", {"q": "0712345678"}).content.decode()
    assert str(kept.pk) in found and str(erased.pk) not in found
    assert client.get("/admin/billing/webhookdelivery/").status_code == 200
    assert client.get("/admin/network/activation/").status_code == 200


PAYMENTS = """{ payments { totalCount results {
  id phoneNumber macAddress ipAddress amount status mpesaReceipt intasendInvoiceId completedAt
  activation { status accessCode lastError }
} } }"""


def test_graphql_lists_erased_payments_for_operators_and_portals(gql, settled, now, operator):
    erased = settled(DAYS + 1)
    grant_for(erased, status=Activation.Status.FAILED, access_code="K7P2MX9Q", last_error="no such host 10.5.50.23"
    )
    Activation.objects.filter(payment=erased).update(updated_at=erased.completed_at)
    erase(now)

    body = gql(PAYMENTS, **operator.auth)
    assert "errors" not in body, body
    (row,) = body["data"]["payments"]["results"]
    assert row["id"] == str(erased.pk)
    assert (row["phoneNumber"], row["macAddress"], row["ipAddress"]) == ("", None, None)
    assert (row["amount"], row["status"], row["mpesaReceipt"], row["intasendInvoiceId"]) == (
        "25.00", "COMPLETED", "SGR7K3L001", "INV-1",
    )  # fmt: skip
    assert row["completedAt"] is not None
    assert row["activation"] == {"status": "FAILED", "accessCode": "K7P2MX9Q", "lastError": None}

    portal = gql(
        "query($id: UUID!, $secret: String) { payment(id: $id, clientSecret: $secret) { phoneNumber status } }",
        {"id": str(erased.pk), "secret": erased.client_secret},
        public_key=operator.public_key,
    )
    assert portal["data"]["payment"] == {"phoneNumber": "", "status": "COMPLETED"}


def test_the_nightly_job_reads_the_setting_and_runs_once_a_day(settled, settings):
    settings.DATA_RETENTION_DAYS = 30
    old, recent = settled(31), settled(29)

    assert tasks.erase_expired_personal_data.call_local() == ErasureCounts(
        payments=1, payment_events=1, webhook_deliveries=1, activations=0
    )
    assert Payment.objects.get(pk=old.pk).phone_number == ""
    assert Payment.objects.get(pk=recent.pk).phone_number == PHONE
    nightly = datetime(2026, 1, 1, 2, 30)
    scheduled = tasks.erase_expired_personal_data.s()
    assert [m for m in range(24 * 60) if scheduled.validate_datetime(nightly + timedelta(minutes=m))] == [0]


def test_operators_can_run_it_now_or_just_count(settled, settings):
    settings.DATA_RETENTION_DAYS = 30
    old = settled(31)
    out = io.StringIO()

    call_command("erase_personal_data", "--dry-run", stdout=out)
    assert out.getvalue().strip() == (
        "Would erase personal data older than 30 days: "
        "1 payments, 1 payment events, 1 webhook deliveries, 0 activations"
    )
    assert Payment.objects.get(pk=old.pk).phone_number == PHONE

    out = io.StringIO()
    call_command("erase_personal_data", stdout=out)
    assert out.getvalue().startswith("Erased personal data older than 30 days: 1 payments")
    assert Payment.objects.get(pk=old.pk).phone_number == ""
