"""Every operation × every wrong credential: nothing of Alice's leaks, nothing of Alice's changes.

The wrong credentials: none, Bob's access token, Bob's portal key, Alice's portal key after she
rotated it, Alice's expired access token, Alice's refresh token used as an access token, and
Alice's own portal key on operator-only operations. The operation list is checked against the
schema, so a new operation cannot slip past this test.
"""

from __future__ import annotations

import time
from decimal import Decimal

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from billing.models import (
    OperatorProfile,
    Payment,
    PaymentCredential,
    PaymentEvent,
    RefreshToken,
    Voucher,
    VoucherBatch,
)
from billing.services import operator_rotate_public_key
from billing.vouchers import VoucherBatchInput, voucher_batch_create
from network.models import Activation, Package, Router
from project.schema import schema
from tests.conftest import OTHER_PUBLIC_KEY, OTHER_SECRET_KEY
from tests.grants import grant_for

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_PHONE = "0799111222"
ALICE_ROUTER_NAME = "Alice Secret Router"

# Operation → (auth rule, document). Ids are filled from Alice's objects.
OPERATIONS: dict[str, tuple[str, str]] = {
    "me": ("J", "{ me { id username publicKey } }"),
    "paymentCredentials": ("J", "{ paymentCredentials { id apiKey } }"),
    "routers": ("J", "{ routers { id name host } }"),
    "packages": ("JP", 'query { packages(routerId: "%(router)s") { id name } }'),
    "payment": ("JP", 'query { payment(id: "%(payment)s") { id phoneNumber activation { accessCode } } }'),
    "payments": ("J", "{ payments { totalCount results { id phoneNumber } } }"),
    "rotatePublicKey": ("J", "mutation { rotatePublicKey { publicKey } }"),
    "revokeTokens": ("J", "mutation { revokeTokens { errors { code } } }"),
    "addPaymentCredential": (
        "J",
        'mutation { addPaymentCredential(input: {apiKey: "k", privateKey: "p", environment: SANDBOX})'
        " { credential { id } errors { code } } }",
    ),
    "verifyPaymentCredential": (
        "J",
        'mutation { verifyPaymentCredential(id: "%(credential)s") { ok error { code } credential { id apiKey }'
        " errors { code } } }",
    ),
    "setPaymentCredentialActive": (
        "J",
        'mutation { setPaymentCredentialActive(id: "%(credential)s", isActive: false)'
        " { credential { id apiKey } errors { code } } }",
    ),
    "deletePaymentCredential": (
        "J",
        'mutation { deletePaymentCredential(id: "%(credential)s") { credential { id apiKey } errors { code } } }',
    ),
    "createRouter": (
        "J",
        'mutation { createRouter(input: {name: "x", host: "10.0.0.9", username: "u", password: "p"})'
        " { router { id } errors { code } } }",
    ),
    "createPackage": (
        "J",
        'mutation { createPackage(input: {routerId: "%(router)s", name: "x", price: "9", durationMinutes: 5})'
        " { package { id } errors { code } } }",
    ),
    "updatePackage": (
        "J",
        'mutation { updatePackage(input: {packageId: "%(package)s", price: "1.00", isActive: false})'
        " { package { id name } errors { code } } }",
    ),
    "initiatePayment": (
        "JP",
        'mutation { initiatePayment(input: {routerId: "%(router)s", packageId: "%(package)s",'
        ' phoneNumber: "0711000999", amount: "25.00"}) { payment { id } errors { code } } }',
    ),
    "createPaymentLink": (
        "JP",
        'mutation { createPaymentLink(input: {routerId: "%(router)s", packageId: "%(package)s",'
        ' phoneNumber: "0711000999", amount: "25.00"}) { payment { id } errors { code } } }',
    ),
    "checkPaymentStatus": (
        "JP",
        'mutation { checkPaymentStatus(paymentId: "%(payment)s") { payment { id phoneNumber } errors { code } } }',
    ),
    "retryActivation": ("J", 'mutation { retryActivation(paymentId: "%(payment)s") { errors { code } } }'),
    "checkRouterConnection": ("J", 'mutation { checkRouterConnection(routerId: "%(router)s") { ok identity } }'),
    "updateRouter": (
        "J",
        'mutation { updateRouter(input: {routerId: "%(router)s", name: "taken", password: "p2"})'
        " { router { id name host lastError warnings } errors { code } } }",
    ),
    "deleteRouter": (
        "J",
        'mutation { deleteRouter(routerId: "%(router)s", force: true) { router { id name } errors { code } } }',
    ),
    "deletePackage": (
        "J",
        'mutation { deletePackage(packageId: "%(package)s") { package { id name } errors { code } } }',
    ),
    "routerSetupScript": ("J", 'query { routerSetupScript(routerId: "%(router)s") }'),
    "portalInfo": ("JP", 'query { portalInfo(routerId: "%(router)s") { businessName router { id name } } }'),
    "updateOperatorProfile": (
        "J",
        'mutation { updateOperatorProfile(input: {businessName: "Renamed"}) { operator { id } errors { code } } }',
    ),
    "createVoucherBatch": (
        "J",
        'mutation { createVoucherBatch(input: {packageId: "%(package)s", count: 2})'
        " { batch { id printUrl vouchers { code } } errors { code } } }",
    ),
    "voucherBatches": ("J", "{ voucherBatches { id note printUrl vouchers { code } } }"),
    "voucherBatch": ("J", 'query { voucherBatch(id: "%(batch)s") { id note printUrl vouchers { code } } }'),
    "revokeVoucher": ("J", 'mutation { revokeVoucher(id: "%(voucher)s") { voucher { id code } errors { code } } }'),
    "redeemCode": (
        "JP",
        'mutation { redeemCode(input: {routerId: "%(router)s", code: "ALICECODE", macAddress: "AA:BB:CC:DD:EE:99"})'
        " { kind activation { id accessCode } errors { code } } }",
    ),
    "accessStatus": (
        "JP",
        'query { accessStatus(routerId: "%(router)s", code: "ALICECODE") { status expiresAt errors { code } } }',
    ),
    "revenueReport": (
        "J",
        'query { revenueReport(input: {from: "2000-01-01", to: "2000-12-31", routerId: "%(router)s"})'
        " { totalAmount count rows { key label amount } } }",
    ),
    "revenueReportCsvUrl": (
        "J",
        'query { revenueReportCsvUrl(input: {from: "2000-01-01", to: "2000-12-31", routerId: "%(router)s"}) }',
    ),
    "auditLog": ("J", "{ auditLog { totalCount results { id action objectType objectId changes } } }"),
    "grantAccess": (
        "J",
        'mutation { grantAccess(input: {routerId: "%(router)s", packageId: "%(package)s", reason: "x",'
        ' paymentId: "%(payment)s"}) { activation { id accessCode } errors { code } } }',
    ),
    "extendAccess": (
        "J",
        'mutation { extendAccess(activationId: "%(activation)s", minutes: 60, reason: "x")'
        " { activation { id accessCode } errors { code } } }",
    ),
    "revokeAccess": (
        "J",
        'mutation { revokeAccess(activationId: "%(activation)s", reason: "x") { activation { id } errors { code } } }',
    ),
    "activeSessions": ("J", 'query { activeSessions(routerId: "%(router)s") { user macAddress activation { id } } }'),
    "disconnectSession": (
        "J",
        'mutation { disconnectSession(routerId: "%(router)s", macAddress: "AA:BB:CC:DD:EE:99") { errors { code } } }',
    ),
}
# Signing in is how credentials are obtained; it is tested in tests/project/test_auth.py.
NOT_IN_MATRIX = {"tokenAuth", "refreshToken"}
SUBSCRIPTIONS = {
    "paymentUpdates": ("JP", 'subscription { paymentUpdates(paymentId: "%(payment)s") { id phoneNumber } }'),
    "operatorPaymentUpdates": ("J", "subscription { operatorPaymentUpdates { id phoneNumber } }"),
    "routerUpdates": ("J", "subscription { routerUpdates { id name host status } }"),
}
UNAUTHENTICATED = {"nobody", "rotated_key", "expired_token", "refresh_as_access"}
ATTACKERS = ["nobody", "bob_token", "bob_key", "rotated_key", "expired_token", "refresh_as_access", "alice_key"]


def test_matrix_covers_every_operation():
    query_and_mutation = set(schema.get_type_by_name("Query").fields) | set(schema.get_type_by_name("Mutation").fields)
    names = {field.graphql_name or field.python_name for field in query_and_mutation}
    assert camel_case(names) == set(OPERATIONS) | NOT_IN_MATRIX
    subscription_names = {f.graphql_name or f.python_name for f in schema.get_type_by_name("Subscription").fields}
    assert camel_case(subscription_names) == set(SUBSCRIPTIONS)


def camel_case(names: set[str]) -> set[str]:
    def convert(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {convert(name) for name in names}


@pytest.fixture
def world(shop, other_operator, gql):
    """Alice's hotspot with a completed, activated payment; Bob's own credentials."""
    alice = shop.operator
    Router.objects.filter(pk=shop.router.pk).update(name=ALICE_ROUTER_NAME)
    payment = Payment.objects.create(
        owner=alice.user,
        router=shop.router,
        package=shop.package,
        credential=shop.credential,
        phone_number="254" + ALICE_PHONE[1:],
        amount=Decimal("25.00"),
        status=Payment.Status.COMPLETED,
        intasend_invoice_id="ALICEINV",
    )
    activation = grant_for(payment, status="FAILED", access_code="ALICECODE", attempts=7)
    batch = voucher_batch_create(
        operator=alice.user, data=VoucherBatchInput(package_id=shop.package.pk, count=2, note="Alice's kiosk stock")
    )
    voucher = batch.vouchers.first()
    other_operator.add_credential(api_key=OTHER_PUBLIC_KEY, private_key=OTHER_SECRET_KEY)
    old_key = alice.public_key
    now = int(time.time())
    expired = jwt.encode(
        {
            "sub": str(alice.user.pk),
            "typ": "access",
            "iat": now - 3600,
            "exp": now - 60,
            "gen": 0,
            "jti": "x",
            "fam": "00000000-0000-0000-0000-000000000000",
        },
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    operator_rotate_public_key(operator=alice.user)
    credentials = {
        "nobody": {},
        "bob_token": {"token": other_operator.tokens.access_token},
        "bob_key": {"public_key": other_operator.public_key},
        "rotated_key": {"public_key": old_key},
        "expired_token": {"token": expired},
        "refresh_as_access": {"token": alice.tokens.refresh_token},
        "alice_key": {"public_key": alice.public_key},
    }
    ids = {
        "router": shop.router.pk,
        "package": shop.package.pk,
        "payment": payment.pk,
        "batch": batch.pk,
        "voucher": voucher.pk,
        "credential": shop.credential.pk,
        "activation": activation.pk,
    }
    secrets = [
        ALICE_ROUTER_NAME,
        "254799111222",
        "2547******22",
        "ALICECODE",
        "ALICEINV",
        alice.public_key,
        old_key,
        shop.credential.api_key,
        "alice",
        str(payment.pk),
        shop.package.name,
        "Alice's kiosk stock",
        "/vouchers/sheet/",
        *batch.vouchers.values_list("code", flat=True),
    ]
    return {"credentials": credentials, "ids": ids, "secrets": secrets, "alice": alice}


def snapshot(alice) -> dict:
    """Everything of Alice's that any operation could change (Bob may change his own things)."""
    mine = {"owner": alice}
    return {
        "payments": sorted(Payment.objects.filter(**mine).values_list("id", "status", "updated_at")),
        "events": PaymentEvent.objects.filter(payment__owner=alice).count(),
        "routers": sorted(Router.objects.filter(**mine).values_list("id", "name", "updated_at")),
        "packages": sorted(
            Package.objects.filter(router__owner=alice).values_list("id", "price", "is_active", "updated_at")
        ),
        "credentials": sorted(
            PaymentCredential.objects.filter(**mine).values_list(
                "id", "is_active", "deleted_at", "verified_at", "last_verification_error"
            )
        ),
        "key": OperatorProfile.objects.get(user=alice).public_key,
        "profile": OperatorProfile.objects.filter(user=alice)
        .values_list("business_name", "support_phone", "portal_message", "language", "time_zone")
        .get(),
        "token_generation": OperatorProfile.objects.get(user=alice).token_generation,
        "revoked_refresh_tokens": RefreshToken.objects.filter(user=alice, revoked_at__isnull=False).count(),
        "activations": sorted(
            Activation.objects.filter(owner=alice).values_list("id", "status", "attempts", "expires_at", "revoked_at")
        ),
        "voucher_batches": VoucherBatch.objects.filter(owner=alice).count(),
        "vouchers": sorted(Voucher.objects.filter(batch__owner=alice).values_list("id", "status", "revoked_at")),
    }


# Reads of one payment also need its clientSecret (none is sent here): Alice's own key is a stranger.
NEEDS_CLIENT_SECRET = {"payment", "checkPaymentStatus", "paymentUpdates"}


def allowed(rule: str, attacker: str, operation: str) -> bool:
    """Only Alice's current portal key may run portal (P) operations; nothing here may run J ones."""
    return attacker == "alice_key" and "P" in rule and operation not in NEEDS_CLIENT_SECRET


@pytest.mark.parametrize("attacker", ATTACKERS)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_wrong_credentials_see_and_change_nothing(gql, world, operation, attacker):
    rule, document = OPERATIONS[operation]
    if allowed(rule, attacker, operation):
        pytest.skip("Alice's own portal key is allowed here (tested in tests/billing)")
    alice = world["alice"].user
    before = snapshot(alice)
    body = gql(document % world["ids"], **world["credentials"][attacker])
    assert snapshot(alice) == before, f"{operation} as {attacker} changed something of Alice's"
    text = repr(body)
    leaked = [secret for secret in world["secrets"] if secret in text]
    assert leaked == [], f"{operation} as {attacker} leaked {leaked}: {text[:400]}"
    if attacker in UNAUTHENTICATED or (rule == "J" and attacker in ("bob_key", "alice_key")):
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", (operation, attacker, body)


@pytest.mark.parametrize("attacker", ATTACKERS)
@pytest.mark.parametrize("operation", sorted(SUBSCRIPTIONS))
async def test_wrong_credentials_cannot_subscribe(world, operation, attacker):
    from project.asgi import application

    rule, document = SUBSCRIPTIONS[operation]
    if allowed(rule, attacker, operation):
        pytest.skip("Alice's own portal key is allowed here (tested in tests/billing)")
    credentials = world["credentials"][attacker]
    payload = {}
    if "token" in credentials:
        payload["Authorization"] = f"Bearer {credentials['token']}"
    if "public_key" in credentials:
        payload["X-Public-Key"] = credentials["public_key"]
    before = await sync_to_async(snapshot)(world["alice"].user)
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": payload})
    first = await ws.receive_output(timeout=3)
    if first["type"] == "websocket.close":
        assert first["code"] == 4403
    elif attacker == "bob_token" and operation in {"operatorPaymentUpdates", "routerUpdates"}:
        # Bob may watch his own payments and routers; a change to Alice's must not reach him.
        await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": document % world["ids"]}})
        await sync_to_async(publish_alice_change)(world)
        assert await ws.receive_nothing(timeout=1.5)
        await ws.disconnect()
    else:
        await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": document % world["ids"]}})
        reply = await ws.receive_json_from(timeout=3)
        refused = reply["type"] == "error" or (
            reply["type"] == "next" and reply["payload"]["data"] is None and reply["payload"]["errors"]
        )
        assert refused, reply
        assert not [secret for secret in world["secrets"] if secret in repr(reply)]
        await ws.disconnect()
    assert await sync_to_async(snapshot)(world["alice"].user) == before


def publish_alice_change(world) -> None:
    from billing.notifications import publish_payment_changed

    payment = Payment.objects.get(pk=world["ids"]["payment"])
    Payment.objects.filter(pk=payment.pk).update(updated_at=payment.updated_at)
    publish_payment_changed(payment_id=payment.pk, operator_id=payment.owner_id)
