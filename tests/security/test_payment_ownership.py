"""Issue 9, items 3, 12, 14 and 22: the public key proves nothing, the payment's client secret does.

The public key sits in every router's login page, so anyone may hold it. Knowing a victim's phone
number, a second push used to hand back the victim's pending payment, whose access code `payment(id)`
then showed once they paid. Now only the caller that created a payment (or replays its idempotency
key) gets its `clientSecret`, and every public-key read of one payment needs it.
"""

from __future__ import annotations

import secrets

import pytest

from billing.models import Payment
from network.models import Activation
from tests.documents import CHECK_STATUS, CREATE_LINK, INITIATE, PAYMENT, PAYMENTS
from tests.grants import grant_for

pytestmark = pytest.mark.django_db

VICTIM_PHONE = "0712345678"
MISSING_ID = "6d1e1c1e-0000-4000-8000-000000000000"


def key() -> str:
    return secrets.token_hex(16)  # 32 characters, as the reference portal sends


def push(gql, shop, auth, **overrides) -> dict:
    return gql(INITIATE, {"input": shop.payment_input(**overrides)}, **auth)["data"]["initiatePayment"]


def read(gql, shop, payment_id, secret=None, auth=None):
    auth = auth if auth is not None else shop.operator.portal
    return gql(PAYMENT, {"id": payment_id, "secret": secret}, **auth)["data"]["payment"]


def check(gql, shop, payment_id, secret=None, auth=None):
    auth = auth if auth is not None else shop.operator.portal
    return gql(CHECK_STATUS, {"id": payment_id, "secret": secret}, **auth)["data"]["checkPaymentStatus"]


def victim_pays(gql, shop) -> dict:
    """The victim's portal pushes, pays, and gets a code on the router."""
    payment = push(gql, shop, shop.operator.portal, phoneNumber=VICTIM_PHONE, idempotencyKey=key())["payment"]
    stored = Payment.objects.get(pk=payment["id"])
    Payment.objects.filter(pk=stored.pk).update(status=Payment.Status.COMPLETED)
    grant_for(stored, status="ACTIVE", access_code="VICTIMCODE")
    return payment


def test_second_push_to_a_victims_phone_gets_no_payment(gql, shop):
    victim = push(gql, shop, shop.operator.portal, phoneNumber=VICTIM_PHONE)
    assert victim["errors"] == [] and victim["payment"]["clientSecret"]

    attacker = push(gql, shop, shop.operator.portal, phoneNumber="+254712345678")

    assert [e["code"] for e in attacker["errors"]] == ["PAYMENT_ALREADY_PENDING"]
    assert attacker["payment"] is None
    assert victim["payment"]["id"] not in repr(attacker)


def test_payment_read_with_the_public_key_but_no_or_a_wrong_secret_is_like_a_missing_payment(gql, shop):
    victim = victim_pays(gql, shop)

    for secret in (None, "", "wrong", victim["clientSecret"][:-1], victim["clientSecret"] + "x"):
        assert read(gql, shop, victim["id"], secret) is None
        assert read(gql, shop, MISSING_ID, secret) is None
        stolen = check(gql, shop, victim["id"], secret)
        missing = check(gql, shop, MISSING_ID, secret)
        assert stolen == missing
        assert [e["code"] for e in stolen["errors"]] == ["PAYMENT_NOT_FOUND"] and stolen["payment"] is None
    assert "VICTIMCODE" not in repr(check(gql, shop, victim["id"]))


def test_payment_read_with_the_right_secret_shows_the_code_and_operators_need_none(gql, shop):
    victim = victim_pays(gql, shop)

    mine = read(gql, shop, victim["id"], victim["clientSecret"])
    assert mine["activation"]["accessCode"] == "VICTIMCODE"
    checked = check(gql, shop, victim["id"], victim["clientSecret"])
    assert checked["errors"] == [] and checked["payment"]["activation"]["accessCode"] == "VICTIMCODE"
    as_operator = read(gql, shop, victim["id"], auth=shop.operator.auth)
    assert as_operator["activation"]["accessCode"] == "VICTIMCODE"
    assert check(gql, shop, victim["id"], auth=shop.operator.auth)["errors"] == []


def test_the_client_secret_is_shown_only_in_the_creating_payload(gql, shop):
    created = push(gql, shop, shop.operator.portal, idempotencyKey=key())["payment"]
    secret = created["clientSecret"]
    assert len(secret) >= 40
    assert Payment.objects.get(pk=created["id"]).client_secret == secret

    assert read(gql, shop, created["id"], secret)["clientSecret"] is None
    assert check(gql, shop, created["id"], secret)["payment"]["clientSecret"] is None
    assert read(gql, shop, created["id"], auth=shop.operator.auth)["clientSecret"] is None
    listed = gql(PAYMENTS.replace("results { id", "results { clientSecret id"), **shop.operator.auth)
    assert secret not in repr(listed)
    link = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["createPaymentLink"]
    assert link["errors"] == [] and link["payment"]["clientSecret"] not in (None, secret)


def test_each_payment_has_its_own_secret(gql, shop):
    first = push(gql, shop, shop.operator.portal, phoneNumber="0711000001")["payment"]
    second = push(gql, shop, shop.operator.portal, phoneNumber="0711000002")["payment"]
    assert read(gql, shop, second["id"], first["clientSecret"]) is None
    assert read(gql, shop, first["id"], first["clientSecret"])["id"] == first["id"]


def test_short_idempotency_key_from_the_public_key_is_refused(gql, shop):
    result = push(gql, shop, shop.operator.portal, idempotencyKey="order-77")

    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID_INPUT", "idempotencyKey")]
    assert result["payment"] is None and Payment.objects.count() == 0
    assert push(gql, shop, shop.operator.portal, idempotencyKey="x" * 31)["errors"][0]["code"] == "INVALID_INPUT"
    assert push(gql, shop, shop.operator.auth, idempotencyKey="order-77")["errors"] == []  # operators' own keys


def test_replaying_the_idempotency_key_returns_the_same_payment_with_its_secret(gql, shop):
    attempt = key()
    first = push(gql, shop, shop.operator.portal, idempotencyKey=attempt)
    replay = push(gql, shop, shop.operator.portal, idempotencyKey=attempt)

    assert replay["errors"] == []
    assert replay["payment"]["id"] == first["payment"]["id"]
    assert replay["payment"]["clientSecret"] == first["payment"]["clientSecret"]
    assert len(shop.intasend.requests_to("mpesa-stk-push/")) == 1


def test_10_and_10_00_are_one_amount_for_the_idempotency_key(gql, shop):
    attempt = key()
    first = push(gql, shop, shop.operator.portal, idempotencyKey=attempt, amount="25.00")
    again = push(gql, shop, shop.operator.portal, idempotencyKey=attempt, amount="25")

    assert again["errors"] == [] and again["payment"]["id"] == first["payment"]["id"]
    other = push(gql, shop, shop.operator.portal, idempotencyKey=attempt, amount="25.001")
    assert [e["code"] for e in other["errors"]] == ["IDEMPOTENCY_MISMATCH"]


@pytest.mark.parametrize("phone", ["07١٢٣٤٥٦٧٨", "٠٧١٢٣٤٥٦٧٨", "+٢٥٤712345678", "07１2345678", "07\u09e7\u09e82345678"])
def test_non_ascii_digits_in_a_phone_number_are_invalid(gql, shop, phone):
    result = push(gql, shop, shop.operator.portal, phoneNumber=phone)

    assert [e["code"] for e in result["errors"]] == ["INVALID_PHONE"]
    assert Payment.objects.count() == 0 and shop.intasend.requests_to("mpesa-stk-push/") == []


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("macAddress", "aa:bb:cc:dd:ee:ﬀ", "INVALID_MAC"),  # the ligature upper-cases to "FF"
        ("ipAddress", "fe80::1%١", "INVALID_IP"),
        ("ipAddress", "10.5.50.٢", "INVALID_IP"),
    ],
)
def test_non_ascii_in_mac_and_ip_is_invalid(gql, shop, field, value, code):
    result = push(gql, shop, shop.operator.portal, **{field: value})
    assert [e["code"] for e in result["errors"]] == [code]
    assert Payment.objects.count() == 0


def test_parse_amount_refuses_other_scripts_digits():
    from billing.input_rules import parse_amount
    from project.errors import ApplicationError

    with pytest.raises(ApplicationError):
        parse_amount("٢٥")
    assert str(parse_amount(" 25.00 ")) == "25.00"


def test_result_page_without_the_secret_shows_no_failure_text_or_code(client, gql, shop):
    link = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["createPaymentLink"]
    payment = Payment.objects.get(pk=link["payment"]["id"])
    raw = "Insufficient balance on 254712345678 (ref ABC123, ds_timeout)"
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_reason=raw)

    page = client.get(f"/payment/failed/{payment.pk}/")
    assert page.status_code == 200 and b"Payment not completed" in page.content
    assert b"Insufficient" not in page.content and b"254712345678" not in page.content

    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.COMPLETED)
    grant_for(payment, status="ACTIVE", access_code="LINKCODE42")
    bare = client.get(f"/payment/success/{payment.pk}/")
    assert b"Payment received" in bare.content and b"LINKCODE42" not in bare.content
    wrong = client.get(f"/payment/success/{payment.pk}/?client_secret=guess")
    assert b"LINKCODE42" not in wrong.content


def test_result_page_shows_the_code_to_the_return_url_given_to_intasend(client, gql, shop):
    link = gql(CREATE_LINK, {"input": shop.payment_input()}, **shop.operator.portal)["data"]["createPaymentLink"]
    payment = Payment.objects.get(pk=link["payment"]["id"])
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.COMPLETED)
    grant_for(payment, status="ACTIVE", access_code="LINKCODE42")

    return_url = shop.intasend.requests_to("/checkout/")[0].json["redirect_url"]
    assert f"client_secret={payment.client_secret}" in return_url
    page = client.get(return_url.removeprefix("http://testserver"))
    assert b"LINKCODE42" in page.content
    assert page["Referrer-Policy"] == "no-referrer" and "no-store" in page["Cache-Control"]


def test_300_status_checks_make_only_a_handful_of_intasend_calls(gql, shop):
    payment = push(gql, shop, shop.operator.portal)["payment"]
    asked = len(shop.intasend.requests_to("payment/status/"))

    answers = [check(gql, shop, payment["id"], payment["clientSecret"]) for _ in range(300)]

    status_calls = len(shop.intasend.requests_to("payment/status/")) - asked
    assert 1 <= status_calls <= 3, status_calls
    codes = {e["code"] for answer in answers for e in answer["errors"]}
    assert codes == {"RATE_LIMITED"}
    assert answers[1]["errors"] == [] and answers[1]["status"] == "PROCESSING"  # the last answer, not a new call


def test_a_status_check_within_the_cache_window_returns_the_last_answer(gql, shop):
    payment = push(gql, shop, shop.operator.portal)["payment"]
    first = check(gql, shop, payment["id"], payment["clientSecret"])
    asked = len(shop.intasend.requests_to("payment/status/"))

    shop.intasend.settle(payment["intasendInvoiceId"], "FAILED", webhook=False)
    second = check(gql, shop, payment["id"], payment["clientSecret"])

    assert len(shop.intasend.requests_to("payment/status/")) == asked
    assert second["status"] == first["status"] == "PROCESSING"
    assert check(gql, shop, payment["id"], auth=shop.operator.auth)["status"] == "FAILED"  # operators ask


SUBSCRIBE = (
    "subscription($id: UUID!, $secret: String) {"
    " paymentUpdates(paymentId: $id, clientSecret: $secret) { id status activation { accessCode } } }"
)


@pytest.mark.django_db(transaction=True)
async def test_payment_updates_with_the_public_key_but_no_or_a_wrong_secret_is_like_a_missing_payment(gql, shop):
    from asgiref.sync import sync_to_async
    from strawberry.channels.testing import GraphQLWebsocketCommunicator

    from project.asgi import application

    victim = await sync_to_async(victim_pays)(gql, shop)
    portal = {"X-Public-Key": await sync_to_async(lambda: shop.operator.public_key)()}

    async def first_reply(payment_id: str, secret: str | None):
        async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=portal) as ws:
            async for result in ws.subscribe(SUBSCRIBE, {"id": payment_id, "secret": secret}):
                return result

    for secret in (None, "wrong"):
        stolen, missing = await first_reply(victim["id"], secret), await first_reply(MISSING_ID, secret)
        assert stolen.data is None and missing.data is None
        assert [e.extensions for e in stolen.errors] == [e.extensions for e in missing.errors]
        assert stolen.errors[0].extensions["code"] == "PAYMENT_NOT_FOUND"
        assert "VICTIMCODE" not in repr(stolen)
    mine = await first_reply(victim["id"], victim["clientSecret"])
    assert mine.errors is None and mine.data["paymentUpdates"]["activation"]["accessCode"] == "VICTIMCODE"


def test_router_error_text_reaches_only_the_operator(gql, shop):
    # Found from outside: a payer read the router's own error text (its address, and "[redacted]"
    # wherever the router password occurred in it) through its payment.
    payment = victim_pays(gql, shop)
    Activation.objects.filter(payment=payment["id"]).update(
        status="PENDING", last_error="Could not connect to router 10.0.0.7:8728 ([redacted])"
    )

    portal_view = read(gql, shop, payment["id"], payment["clientSecret"])["activation"]["lastError"]
    operator_view = read(gql, shop, payment["id"], auth=shop.operator.auth)["activation"]["lastError"]

    assert "10.0.0.7" not in portal_view and "redacted" not in portal_view
    assert operator_view == "Could not connect to router 10.0.0.7:8728 ([redacted])"
