"""Property-based tests of what portal callers type: phone numbers, MACs, IPs and amounts."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.input_rules import mask_phone, normalise_ip, normalise_phone, parse_amount
from network.devices import normalise_mac
from project.errors import ApplicationError, ErrorCode

NORMALISED_PHONE = re.compile(r"^254[71]\d{8}$")
local_numbers = st.from_regex(r"\A[71][0-9]{8}\Z")


@given(local_numbers, st.sampled_from(["0{}", "{}", "+254{}", "254{}", "+254 {}", "0{} "]))
def test_every_usual_form_of_a_kenyan_mobile_normalises_to_the_same_number(local, form):
    assert normalise_phone(form.format(local)) == "254" + local


@given(st.text(max_size=30))
@settings(max_examples=500)
def test_phone_parsing_either_normalises_or_says_invalid_phone(raw):
    try:
        phone = normalise_phone(raw)
    except ApplicationError as error:
        assert error.code is ErrorCode.INVALID_PHONE
    else:
        assert NORMALISED_PHONE.match(phone)
        assert normalise_phone(phone) == phone  # idempotent


@given(local_numbers)
def test_masking_hides_the_middle_and_keeps_the_length(local):
    masked = mask_phone("254" + local)
    assert len(masked) == 12 and masked[:4] == "254" + local[0] and masked[-2:] == local[-2:]
    assert set(masked[4:-2]) == {"*"}


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-", ""]), st.booleans())
def test_every_well_formed_mac_normalises_to_routeros_form(octets, separator, lower):
    raw = separator.join(f"{b:02X}" for b in octets)
    mac = normalise_mac(raw.lower() if lower else raw)
    assert mac == ":".join(f"{b:02X}" for b in octets)


@given(st.text(max_size=25))
@settings(max_examples=500)
def test_mac_parsing_either_normalises_or_says_invalid_mac(raw):
    try:
        mac = normalise_mac(raw)
    except ApplicationError as error:
        assert error.code is ErrorCode.INVALID_MAC
    else:
        assert mac == "" or re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", mac)


@given(st.ip_addresses())
def test_every_ip_address_is_accepted_in_canonical_form(address):
    assert normalise_ip(str(address)) == str(address)


@given(st.text(max_size=45))
@settings(max_examples=500)
def test_ip_parsing_either_normalises_or_says_invalid_ip(raw):
    try:
        ip = normalise_ip(raw)
    except ApplicationError as error:
        assert error.code is ErrorCode.INVALID_IP
    else:
        assert ip is None or str(ipaddress.ip_address(ip)) == ip


@given(st.one_of(st.text(max_size=20), st.integers(), st.decimals(allow_nan=True, allow_infinity=True)))
@settings(max_examples=500)
def test_amount_parsing_is_exact_or_invalid_input(raw):
    try:
        amount = parse_amount(raw)
    except ApplicationError as error:
        assert error.code is ErrorCode.INVALID_INPUT
    else:
        assert isinstance(amount, Decimal) and amount.is_finite()
        assert amount == Decimal(str(raw).strip())


@pytest.mark.parametrize("raw", ["25", "25.0", "25.00", "25.000"])
def test_equal_amounts_in_any_precision_compare_equal(raw):
    assert parse_amount(raw) == Decimal("25.00")
