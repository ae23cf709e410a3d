"""Issue 11, item 3: the operator's identity on the portal (`me`, `updateOperatorProfile`, `portalInfo`)."""

from __future__ import annotations

import json

import pytest

from billing.models import OperatorProfile

pytestmark = pytest.mark.django_db

ME = "{ me { id username publicKey businessName supportPhone portalMessage language timeZone } }"
UPDATE = """mutation($input: UpdateOperatorProfileInput!) { updateOperatorProfile(input: $input) {
  operator { businessName supportPhone portalMessage language timeZone } errors { field code message } } }"""
PORTAL_INFO = """query PortalInfo($routerId: ID) { portalInfo(routerId: $routerId) {
  businessName supportPhone portalMessage language timeZone router { id name } } }"""


def update(gql, operator, **fields) -> dict:
    return gql(UPDATE, {"input": fields}, **operator.auth)["data"]["updateOperatorProfile"]


def profile_of(operator) -> OperatorProfile:
    return OperatorProfile.objects.get(user=operator.user)


def test_defaults(gql, operator):
    me = gql(ME, **operator.auth)["data"]["me"]
    assert me == {
        "id": str(operator.user.pk),
        "username": "alice",
        "publicKey": operator.public_key,
        "businessName": "",
        "supportPhone": "",
        "portalMessage": "",
        "language": "EN",
        "timeZone": "Africa/Nairobi",
    }


def test_update_and_read_back(gql, operator):
    result = update(
        gql,
        operator,
        businessName="  Mama Njeri WiFi ",
        supportPhone="0712 345 678",
        portalMessage="Karibu!\r\nCall us any time.",
        language="SW",
        timeZone="Africa/Dar_es_Salaam",
    )
    expected = {
        "businessName": "Mama Njeri WiFi",
        "supportPhone": "254712345678",
        "portalMessage": "Karibu!\nCall us any time.",
        "language": "SW",
        "timeZone": "Africa/Dar_es_Salaam",
    }
    assert result == {"operator": expected, "errors": []}
    me = gql(ME, **operator.auth)["data"]["me"]
    assert {key: me[key] for key in expected} == expected


def test_only_given_fields_change_and_blank_clears(gql, operator):
    update(gql, operator, businessName="Njeri", supportPhone="0712345678", language="SW")
    result = update(gql, operator, supportPhone="")
    assert result["errors"] == []
    assert result["operator"] == {
        "businessName": "Njeri",
        "supportPhone": "",
        "portalMessage": "",
        "language": "SW",
        "timeZone": "Africa/Nairobi",
    }
    result = update(gql, operator, businessName=None)
    assert result["operator"]["businessName"] == "" and result["operator"]["language"] == "SW"


def test_several_invalid_fields_are_reported_at_once_and_nothing_changes(gql, operator):
    update(gql, operator, businessName="Before")
    result = update(
        gql,
        operator,
        businessName="x" * 81,
        supportPhone="0812345678",
        portalMessage="y" * 281,
        timeZone="Mars/Olympus_Mons",
        language=None,
    )
    assert result["operator"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("businessName", "INVALID_INPUT"),
        ("supportPhone", "INVALID_PHONE"),
        ("portalMessage", "INVALID_INPUT"),
        ("language", "INVALID_INPUT"),
        ("timeZone", "INVALID_INPUT"),
    ]
    assert profile_of(operator).business_name == "Before"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "africa/nairobi", None])
def test_unknown_time_zone(gql, operator, zone):
    result = update(gql, operator, timeZone=zone)
    assert result["errors"] == [
        {
            "field": "timeZone",
            "code": "INVALID_INPUT",
            "message": "timeZone must be an IANA time zone name, e.g. Africa/Nairobi",
        }
    ]
    assert profile_of(operator).time_zone == "Africa/Nairobi"


@pytest.mark.parametrize("phone", ["0812345678", "12345", "+1 202 555 0101", "not a phone"])
def test_bad_support_phone(gql, operator, phone):
    result = update(gql, operator, supportPhone=phone)
    assert result["errors"] == [
        {"field": "supportPhone", "code": "INVALID_PHONE", "message": "Invalid phone number format"}
    ]


# (NUL never gets this far: project.schema refuses it in any variable, as a top-level INVALID_INPUT.)
@pytest.mark.parametrize("text", ["Nje\x1bri", "Njeri\x7f", "Njeri\x85", "Njeri\x08", "Njeri\t"])
def test_control_characters_are_refused(gql, operator, text):
    result = update(gql, operator, businessName=text, portalMessage=text)
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("businessName", "INVALID_INPUT"),
        ("portalMessage", "INVALID_INPUT"),
    ]
    assert "control characters" in result["errors"][0]["message"]


def test_a_business_name_refuses_a_newline_the_message_keeps_it(gql, operator):
    result = update(gql, operator, businessName="Two\nlines", portalMessage="Two\nlines")
    assert [e["field"] for e in result["errors"]] == ["businessName"]
    assert update(gql, operator, portalMessage="Two\nlines")["operator"]["portalMessage"] == "Two\nlines"


def test_update_needs_an_operator_token(gql, operator):
    body = gql(UPDATE, {"input": {"businessName": "Nope"}}, **operator.portal)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert profile_of(operator).business_name == ""


# --- portalInfo ------------------------------------------------------------------------------------


def portal_info(gql, credentials: dict, router_id: object = None) -> dict:
    variables = {} if router_id is None else {"routerId": str(router_id)}
    return gql(PORTAL_INFO, variables, **credentials)["data"]["portalInfo"]


def test_portal_info_for_own_router(gql, operator):
    router = operator.add_router(name="Kibera Stage")
    update(gql, operator, businessName="Njeri WiFi", supportPhone="0712345678", portalMessage="Karibu", language="SW")
    assert portal_info(gql, operator.portal, router.pk) == {
        "businessName": "Njeri WiFi",
        "supportPhone": "254712345678",
        "portalMessage": "Karibu",
        "language": "SW",
        "timeZone": "Africa/Nairobi",
        "router": {"id": str(router.pk), "name": "Kibera Stage"},
    }


def test_portal_info_without_a_router_id(gql, operator):
    update(gql, operator, businessName="Njeri WiFi")
    info = portal_info(gql, operator.portal)
    assert info["businessName"] == "Njeri WiFi" and info["router"] is None


@pytest.mark.parametrize("router_id", ["999999", "not-a-number", "-1"])
def test_portal_info_for_an_unknown_router_has_no_router_and_no_error(gql, operator, router_id):
    update(gql, operator, businessName="Njeri WiFi")
    body = gql(PORTAL_INFO, {"routerId": router_id}, **operator.portal)
    assert "errors" not in body
    assert body["data"]["portalInfo"]["router"] is None
    assert body["data"]["portalInfo"]["businessName"] == "Njeri WiFi"


def test_portal_info_for_a_foreign_router_is_the_callers_info_with_no_router(gql, operator, other_operator):
    foreign = other_operator.add_router(name="Bob's Router")
    update(gql, other_operator, businessName="Bob's Hotspot", supportPhone="0722000000", language="SW")
    update(gql, operator, businessName="Njeri WiFi", supportPhone="0712345678")
    body = gql(PORTAL_INFO, {"routerId": str(foreign.pk)}, **operator.portal)
    assert "errors" not in body
    assert body["data"]["portalInfo"] == {
        "businessName": "Njeri WiFi",
        "supportPhone": "254712345678",
        "portalMessage": "",
        "language": "EN",
        "timeZone": "Africa/Nairobi",
        "router": None,
    }


def test_an_operator_token_may_preview_portal_info(gql, operator):
    router = operator.add_router()
    update(gql, operator, businessName="Njeri WiFi")
    info = portal_info(gql, operator.auth, router.pk)
    assert info["businessName"] == "Njeri WiFi" and info["router"]["id"] == str(router.pk)


def test_portal_info_without_credentials_is_unauthenticated(gql, operator):
    body = gql(PORTAL_INFO, {})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_portal_info_over_get_with_a_public_key_is_publicly_cacheable(client, operator, settings):
    router = operator.add_router(name="Kibera Stage")
    OperatorProfile.objects.filter(user=operator.user).update(business_name="Njeri WiFi", support_phone="254712345678")
    response = client.get(
        "/graphql/",
        {"query": PORTAL_INFO, "variables": json.dumps({"routerId": str(router.pk)})},
        headers={"X-Public-Key": operator.public_key},
    )
    assert response.status_code == 200
    info = response.json()["data"]["portalInfo"]
    assert info["businessName"] == "Njeri WiFi" and info["router"] == {"id": str(router.pk), "name": "Kibera Stage"}
    assert response["Cache-Control"] == f"public, max-age={settings.GRAPHQL_PUBLIC_GET_MAX_AGE_SECONDS}"


def test_portal_info_over_get_without_credentials_is_not_cached(client, operator):
    response = client.get("/graphql/", {"query": PORTAL_INFO})
    assert response.status_code == 405  # a GET without the public key is not a public read
    assert response["Cache-Control"] == "private, no-store"


# --- The admin uses the same rules --------------------------------------------------------------


def test_admin_form_applies_the_api_rules(operator):
    from billing.admin import OperatorProfileAdminForm

    profile = profile_of(operator)
    form = OperatorProfileAdminForm(
        data={
            "business_name": "Njeri\x07",
            "support_phone": "0812345678",
            "portal_message": "ok",
            "language": "EN",
            "time_zone": "Nowhere/Land",
        },
        instance=profile,
    )
    assert not form.is_valid()
    assert set(form.errors) == {"business_name", "support_phone", "time_zone"}
    form = OperatorProfileAdminForm(
        data={
            "business_name": "Njeri WiFi",
            "support_phone": "0712 345 678",
            "portal_message": "Karibu",
            "language": "SW",
            "time_zone": "Africa/Kampala",
        },
        instance=profile,
    )
    assert form.is_valid(), form.errors
    form.save()
    profile.refresh_from_db()
    assert (profile.support_phone, profile.language, profile.time_zone) == ("254712345678", "SW", "Africa/Kampala")
