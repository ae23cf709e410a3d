"""IntaSend's collection API state, in memory: accounts, invoices, checkouts, and the JSON they show.

The transport-free core of the IntaSend simulator (``billing.simulator.api`` speaks HTTP-shaped
requests to it, the Django views and the tests' loopback server put it on a socket). Shapes, states
and error bodies follow shared/reference/intasend-api-notes.md; where IntaSend's behaviour is
undocumented, the choices made here are marked "[I]".

Every method of :class:`IntaSendLedger` is thread-safe, and hands out copies, never its records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = [
    "AUTO",
    "CHECKOUT_CURRENCIES",
    "CHECKOUT_FIELDS",
    "FINAL_STATES",
    "PHONE_RE",
    "Checkout",
    "Injection",
    "IntaSendLedger",
    "Invoice",
    "RecordedRequest",
    "checkout_json",
    "customer_json",
    "invoice_json",
    "status_json",
    "stk_push_json",
    "wallet_json",
    "webhook_json",
]

PHONE_RE = re.compile(r"^254(7|1)\d{8}$")
FINAL_STATES = frozenset({"COMPLETE", "COMPLETED", "FAILED"})
CHECKOUT_CURRENCIES = frozenset({"KES", "USD", "EUR", "GBP"})
EAT = timezone(timedelta(hours=3))  # IntaSend stamps times in Nairobi time
# Open accounts (the simulator) take any key pair shaped like IntaSend's.
PUBLIC_KEY_PREFIX = "ISPubKey_"
SECRET_KEY_PREFIX = "ISSecretKey_"
_ALNUM = string.ascii_uppercase + string.digits


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()  # "generate a realistic value" (e.g. an M-Pesa receipt on COMPLETE)


# -- ledger records ------------------------------------------------------------------------------


@dataclass
class Invoice:
    """One invoice as the ledger holds it. Snapshots (copies) are handed out, never the original."""

    invoice_id: str
    payment_id: str  # the STK push response's top-level "id", status "meta.id"
    public_key: str  # the owning account
    state: str
    provider: str
    value: Decimal
    charges: Decimal
    currency: str
    account: str  # phone number or email, as IntaSend echoes it
    api_ref: str | None
    host: str
    customer_id: str
    phone_number: str | None
    email: str | None
    created_at: str
    updated_at: str
    narrative: str | None = None
    checkout_id: str | None = None
    mpesa_reference: str | None = None
    failed_reason: str | None = None
    failed_code: str | None = None
    failed_code_link: str | None = None
    retry_count: int = 0

    @property
    def net_amount(self) -> Decimal:
        return self.value - self.charges


@dataclass
class Checkout:
    checkout_id: str
    public_key: str
    signature: str
    expires_at: float
    amount: Decimal
    currency: str
    api_ref: str | None
    email: str | None
    phone_number: str | None
    first_name: str | None
    last_name: str | None
    method: str | None
    redirect_url: str | None
    callback_url: str | None
    created_at: str
    updated_at: str
    paid: bool = False
    invoice_id: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the API endpoints received. The Authorization header keeps only its scheme
    ("Bearer <redacted>"); ``authenticated_as`` says which account's secret it carried, if any."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    authenticated_as: str | None
    injected: str | None  # e.g. "fail:503", "hang:2.0" when a test control shaped the answer
    # When it arrived (time.perf_counter), for benchmarks that split a flow into its hops.
    received_at: float = field(default_factory=time.perf_counter, compare=False)


@dataclass
class Injection:
    hang: float = 0.0
    status: int | None = None  # None: answer normally (after the hang)
    body: bytes = b""
    content_type: str = "application/json"

    def label(self) -> str:
        return f"fail:{self.status}" if self.status is not None else f"hang:{self.hang}"


# -- the ledger ----------------------------------------------------------------------------------


class IntaSendLedger:
    """IntaSend's state for some accounts, in memory, thread-safe (one re-entrant lock).

    ``accounts`` maps public keys to their secrets: only those pairs authenticate (the tests'
    loopback server). ``open_accounts=True`` (the simulator served by the app) also takes any
    other pair shaped like IntaSend's keys (``ISPubKey_…`` with an ``ISSecretKey_…`` secret): each
    public key is its own account, so one operator's invoices stay invisible to another's key.
    ``max_requests`` bounds the log of received requests (a long-running simulator).
    """

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        *,
        open_accounts: bool = False,
        max_requests: int | None = None,
    ) -> None:
        if not accounts and not open_accounts:
            raise ValueError("at least one (public_key, secret) account is needed")
        self._lock = threading.RLock()
        self._accounts = dict(accounts or {})
        self.open_accounts = open_accounts
        # Signs open accounts' checkouts: their secret is not known to the simulator.
        self._signing_key = secrets.token_urlsafe(32)
        self._invoices: dict[str, Invoice] = {}
        self._checkouts: dict[str, Checkout] = {}
        self._customers: dict[str, str] = {}
        self._requests: deque[RecordedRequest] = deque(maxlen=max_requests)
        self._injections: dict[str, deque[Injection]] = {}

    # accounts

    def account_for_secret(self, secret: str | None, claimed_public_key: str | None = None) -> str | None:
        """The public key whose secret this is, or None.

        With open accounts, an unknown IntaSend-shaped secret authenticates as the public key the
        request claims (the SDK always sends it), if that too is IntaSend-shaped and not one of the
        fixed accounts.
        """
        if not secret:
            return None
        for public_key, known in self._accounts.items():
            if hmac.compare_digest(known.encode(), secret.encode()):
                return public_key
        if (
            self.open_accounts
            and secret.startswith(SECRET_KEY_PREFIX)
            and _open_key(claimed_public_key)
            and claimed_public_key not in self._accounts
        ):
            return claimed_public_key
        return None

    def has_public_key(self, public_key: str | None) -> bool:
        if not public_key:
            return False
        return public_key in self._accounts or (self.open_accounts and _open_key(public_key))

    def secret_of(self, public_key: str) -> str:
        return self._accounts[public_key]

    def add_account(self, public_key: str, secret: str) -> None:
        """One more fixed account (a test registering the keys it is about to store)."""
        if not public_key or not secret:
            raise ValueError("an account needs a public key and a secret")
        with self._lock:
            self._accounts[public_key] = secret

    def balance(self, public_key: str) -> Decimal:
        """What the account's settlement wallet holds: the net of its completed invoices."""
        with self._lock:
            return sum(
                (
                    invoice.net_amount
                    for invoice in self._invoices.values()
                    if invoice.public_key == public_key and invoice.state in {"COMPLETE", "COMPLETED"}
                ),
                Decimal("0"),
            )

    def _signing_secret(self, public_key: str) -> str:
        return self._accounts.get(public_key) or self._signing_key

    # invoices

    def create_invoice(
        self,
        *,
        public_key: str,
        value: Decimal,
        currency: str,
        account: str,
        api_ref: str | None,
        host: str,
        provider: str = "M-PESA",
        phone_number: str | None = None,
        email: str | None = None,
        narrative: str | None = None,
        checkout_id: str | None = None,
    ) -> Invoice:
        now = _now()
        with self._lock:
            invoice = Invoice(
                invoice_id=self._unique_id(self._invoices, 7),
                payment_id=str(uuid.uuid4()),
                public_key=public_key,
                state="PENDING",
                provider=provider,
                value=value,
                charges=Decimal("0"),
                currency=currency,
                account=account,
                api_ref=api_ref,
                host=host,
                customer_id=self._customer_id(phone_number or email or account),
                phone_number=phone_number,
                email=email,
                created_at=now,
                updated_at=now,
                narrative=narrative,
                checkout_id=checkout_id,
            )
            self._invoices[invoice.invoice_id] = invoice
            return replace(invoice)

    def settle(
        self,
        invoice_id: str,
        state: str = "COMPLETE",
        *,
        failed_reason: str | None = None,
        failed_code: str | int | None = None,
        mpesa_reference: Any = AUTO,
        charges: Decimal | str | None = None,
        value: Decimal | str | None = None,
        force: bool = False,
    ) -> Invoice:
        """Move an invoice to ``state`` the way IntaSend would report it.

        COMPLETE gets an M-Pesa receipt (``mpesa_reference=AUTO``) for M-PESA invoices; FAILED
        defaults to the user-cancelled reason/code seen in 2025 payloads. ``value``/``charges``
        rewrite the amounts (e.g. to test a paid amount that differs from the price). Leaving a
        final state is refused (IntaSend never does it) unless ``force=True``.
        """
        state = state.strip().upper()
        if not state:
            raise ValueError("state is required")
        with self._lock:
            invoice = self._invoices.get(invoice_id)
            if invoice is None:
                raise KeyError(f"unknown invoice {invoice_id!r}")
            if invoice.state in FINAL_STATES and not force:
                raise ValueError(f"invoice {invoice_id} is already {invoice.state}")
            invoice.state = state
            if charges is not None:
                invoice.charges = Decimal(str(charges))
            if value is not None:
                invoice.value = Decimal(str(value))
            if state in {"COMPLETE", "COMPLETED"}:
                if mpesa_reference is AUTO:
                    mpesa_reference = _mpesa_receipt() if invoice.provider == "M-PESA" else None
                invoice.mpesa_reference = mpesa_reference
                invoice.failed_reason = invoice.failed_code = invoice.failed_code_link = None
            elif state == "FAILED":
                invoice.failed_reason = failed_reason or "Request cancelled by user"
                invoice.failed_code = str(failed_code) if failed_code is not None else "-1"
                invoice.failed_code_link = "https://intasend.com/troubleshooting"
                invoice.mpesa_reference = None if mpesa_reference is AUTO else mpesa_reference
            else:
                invoice.failed_reason = failed_reason
                invoice.failed_code = None if failed_code is None else str(failed_code)
                if mpesa_reference is not AUTO:
                    invoice.mpesa_reference = mpesa_reference
            invoice.updated_at = _now()
            if invoice.checkout_id and state in {"COMPLETE", "COMPLETED"}:
                checkout = self._checkouts[invoice.checkout_id]
                checkout.paid = True
                checkout.updated_at = invoice.updated_at
            return replace(invoice)

    def invoice(self, invoice_id: str) -> Invoice:
        with self._lock:
            try:
                return replace(self._invoices[invoice_id])
            except KeyError:
                raise KeyError(f"unknown invoice {invoice_id!r}") from None

    def invoices_by_api_ref(self, api_ref: str) -> list[Invoice]:
        with self._lock:
            return [replace(i) for i in self._invoices.values() if i.api_ref == api_ref]

    def stk_prompts(self, *, pending: bool = True) -> list[Invoice]:
        """M-Pesa STK push invoices (not checkout payments), newest first; only the ones still waiting
        for the customer's PIN when ``pending``, else only the settled ones."""
        with self._lock:
            found = [
                replace(i)
                for i in self._invoices.values()
                if i.checkout_id is None and i.provider == "M-PESA" and (i.state not in FINAL_STATES) == pending
            ]
        return sorted(found, key=lambda i: i.created_at, reverse=True)

    @property
    def invoices(self) -> dict[str, Invoice]:
        with self._lock:
            return {k: replace(v) for k, v in self._invoices.items()}

    # checkouts

    def create_checkout(self, *, public_key: str, amount: Decimal, currency: str, **fields: Any) -> Checkout:
        now = _now()
        with self._lock:
            checkout_id = str(uuid.uuid4())
            issued = int(time.time())
            signature = _jwt(
                {
                    "scope": "express-checkout",
                    "iss": "IntaSend Solutions Limited",
                    "aud": [checkout_id],
                    "accountID": public_key,
                    "reference": fields.get("api_ref"),
                    "iat": issued,
                    "exp": issued + 3600,  # one hour, like IntaSend's
                },
                self._signing_secret(public_key),
            )
            checkout = Checkout(
                checkout_id=checkout_id,
                public_key=public_key,
                signature=signature,
                expires_at=issued + 3600,
                amount=amount,
                currency=currency,
                created_at=now,
                updated_at=now,
                **{name: fields.get(name) for name in CHECKOUT_FIELDS},
            )
            self._checkouts[checkout_id] = checkout
            return replace(checkout)

    def pay_checkout(
        self,
        checkout_id: str,
        state: str = "COMPLETE",
        *,
        provider: str = "M-PESA",
        account: str | None = None,
        host: str = "127.0.0.1",
        **settle_kwargs: Any,
    ) -> Invoice:
        """The customer pays on the checkout page: create its invoice (once), then move it to
        ``state`` (PENDING leaves it freshly created)."""
        with self._lock:
            checkout = self._checkouts.get(checkout_id)
            if checkout is None:
                raise KeyError(f"unknown checkout {checkout_id!r}")
            if checkout.invoice_id is None:
                phone = account if account and PHONE_RE.match(account) else checkout.phone_number
                invoice = self.create_invoice(
                    public_key=checkout.public_key,
                    value=checkout.amount,
                    currency=checkout.currency,
                    account=account or checkout.phone_number or checkout.email or "",
                    api_ref=checkout.api_ref,
                    host=host,
                    provider=provider,
                    phone_number=phone,
                    email=checkout.email,
                    checkout_id=checkout_id,
                )
                checkout.invoice_id = invoice.invoice_id
            if state.strip().upper() == "PENDING" and not settle_kwargs.get("force"):
                return self.invoice(checkout.invoice_id)
            return self.settle(checkout.invoice_id, state, **settle_kwargs)

    def checkout(self, checkout_id: str) -> Checkout:
        with self._lock:
            try:
                return replace(self._checkouts[checkout_id])
            except KeyError:
                raise KeyError(f"unknown checkout {checkout_id!r}") from None

    @property
    def checkouts(self) -> dict[str, Checkout]:
        with self._lock:
            return {k: replace(v) for k, v in self._checkouts.items()}

    # requests and injected failures

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def inject(self, path_suffix: str, injection: Injection, times: int = 1) -> None:
        key = path_suffix.strip("/")
        if not key:
            raise ValueError("path_suffix is required, e.g. 'payment/status/'")
        with self._lock:
            self._injections.setdefault(key, deque()).extend(replace(injection) for _ in range(times))

    def take_injection(self, path: str) -> Injection | None:
        """The next injected behaviour for this path (longest matching suffix wins), consumed."""
        path = path.strip("/")
        with self._lock:
            for key in sorted(self._injections, key=len, reverse=True):
                queue = self._injections[key]
                if queue and path.endswith(key):
                    return queue.popleft()
        return None

    def reset(self) -> None:
        with self._lock:
            self._invoices.clear()
            self._checkouts.clear()
            self._requests.clear()
            self._injections.clear()

    # helpers

    def _unique_id(self, taken: dict[str, Any], length: int) -> str:
        while True:
            candidate = "".join(secrets.choice(_ALNUM) for _ in range(length))
            if candidate not in taken:
                return candidate

    def _customer_id(self, who: str) -> str:
        if who not in self._customers:
            self._customers[who] = self._unique_id({v: None for v in self._customers.values()}, 7)
        return self._customers[who]


CHECKOUT_FIELDS = (
    "api_ref",
    "email",
    "phone_number",
    "first_name",
    "last_name",
    "method",
    "redirect_url",
    "callback_url",
)


# -- JSON shapes -----------------------------------------------------------------------------------


def invoice_json(invoice: Invoice, *, money_as_strings: bool = False) -> dict[str, Any]:
    """The ``invoice`` object of the STK push / status responses (money partly numbers, like the
    2024-25 captures), or, with ``money_as_strings``, every money field a string (webhooks)."""
    number = _money_str if money_as_strings else _money_number
    return {
        "invoice_id": invoice.invoice_id,
        "state": invoice.state,
        "provider": invoice.provider,
        "charges": number(invoice.charges),
        "net_amount": _money_str(invoice.net_amount),
        "currency": invoice.currency,
        "value": number(invoice.value),
        "account": invoice.account,
        "api_ref": invoice.api_ref,
        "mpesa_reference": invoice.mpesa_reference,
        "host": invoice.host,
        "card_info": {"bin_country": None, "card_type": None},
        "retry_count": invoice.retry_count,
        "failed_reason": invoice.failed_reason,
        "failed_code": invoice.failed_code,
        "failed_code_link": invoice.failed_code_link,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def customer_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "customer_id": invoice.customer_id,
        "phone_number": invoice.phone_number,
        "email": invoice.email,
        "first_name": None,
        "last_name": None,
        "country": None,
        "zipcode": None,
        "provider": invoice.provider,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def stk_push_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.payment_id,
        "invoice": invoice_json(invoice),
        "customer": customer_json(invoice),
        "payment_link": None,
        "customer_comment": None,
        "refundable": False,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def status_json(invoice: Invoice) -> dict[str, Any]:
    body = invoice_json(invoice)
    body["id"] = invoice.invoice_id  # the 2024 status body repeats it as "id"
    return {
        "invoice": body,
        "meta": {
            "id": invoice.payment_id,
            "customer": customer_json(invoice),
            "payment_link": None,
            "customer_comment": None,
            "created_at": invoice.created_at,
            "updated_at": invoice.updated_at,
        },
    }


def checkout_json(checkout: Checkout, root_url: str) -> dict[str, Any]:
    return {
        "id": checkout.checkout_id,
        "url": f"{root_url}checkout/{checkout.checkout_id}/express/",
        "signature": checkout.signature,
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
        "phone_number": checkout.phone_number,
        "email": checkout.email,
        "country": None,
        "address": None,
        "city": None,
        "state": None,
        "zipcode": None,
        "api_ref": checkout.api_ref,
        "amount": _money_str(checkout.amount),
        "currency": checkout.currency,
        "paid": checkout.paid,
        "method": checkout.method,
        "redirect_url": checkout.redirect_url,
        "mobile_tarrif": "BUSINESS-PAYS",
        "card_tarrif": "BUSINESS-PAYS",
        "version": "3.0.0",
        "created_at": checkout.created_at,
        "updated_at": checkout.updated_at,
    }


def wallet_json(public_key: str, balance: Decimal) -> dict[str, Any]:
    """The account's SETTLEMENT wallet as ``GET wallets/`` lists it (the fields of intasend-rs's
    ``Wallet``; IntaSend's 2021 docs show ``id`` instead of ``wallet_id``). [I] its id is derived
    from the public key, so it stays the same across calls."""
    return {
        "wallet_id": hashlib.sha256(public_key.encode()).hexdigest()[:7].upper(),
        "label": "default",
        "can_disburse": True,
        "currency": "KES",
        "wallet_type": "SETTLEMENT",
        "current_balance": _money_str(balance),
        "available_balance": _money_str(balance),
        "updated_at": _now(),
    }


def webhook_json(invoice: Invoice, challenge: str | None) -> dict[str, Any]:
    """The flat body IntaSend POSTs on every state change: the invoice with money as strings,
    no customer/meta block, ``challenge`` last."""
    body = invoice_json(invoice, money_as_strings=True)
    body["challenge"] = challenge
    return body


# -- small helpers ---------------------------------------------------------------------------------


def _open_key(public_key: str | None) -> bool:
    return bool(public_key) and public_key.startswith(PUBLIC_KEY_PREFIX) and len(public_key) > len(PUBLIC_KEY_PREFIX)


def _now() -> str:
    return datetime.now(EAT).isoformat(timespec="microseconds")


def _mpesa_receipt() -> str:
    # Safaricom receipts: 10 upper-case alphanumerics starting with a letter, e.g. "TDLE527E2G".
    return secrets.choice(string.ascii_uppercase) + "".join(secrets.choice(_ALNUM) for _ in range(9))


def _jwt(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT like IntaSend's checkout signature (only ever compared, never decoded, here)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def _money_number(value: Decimal) -> int | float:
    # The real API sends e.g. "value": 20 — a JSON number, float when fractional.
    return int(value) if value == value.to_integral_value() else float(value)


def _money_str(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))
