"""/graphql/ as the GraphQL-over-HTTP spec and browsers' caches see it (issue 10, items 3 and 8):
`application/graphql-response+json` with its status codes when asked for, `application/json` as
before otherwise; GET only for public-key portal reads, and Cache-Control/Vary on every answer."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.media_types import GRAPHQL_RESPONSE_JSON, JSON, response_media_type
from project.views import GraphQLView
from tests.documents import PAYMENT

pytestmark = pytest.mark.django_db

GOOD = "{ __typename }"
PARSE_ERROR = "{"
VALIDATION_ERROR = "{ 8f31403dfe404bccbb0e835f2629c6a7 }"
PACKAGES = "query Packages($routerId: ID!) { packages(routerId: $routerId) { id name price } }"
GRAPHQL_RESPONSE_ACCEPT = "application/graphql-response+json, application/json;q=0.9"


def post(client, body: object, *, accept: str | None = None, **headers: str):
    if accept is not None:
        headers["Accept"] = accept
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post("/graphql/", data=raw, content_type="application/json", headers=headers)


def get(client, params: dict, *, accept: str | None = None, **headers: str):
    if accept is not None:
        headers["Accept"] = accept
    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
    return client.get("/graphql/", encoded, headers=headers)


def is_graphql_response(response) -> bool:
    return response["Content-Type"].startswith(GRAPHQL_RESPONSE_JSON)


@pytest.fixture
def hotspot(operator):
    router = operator.add_router()
    operator.add_package(router)
    return router


# --- application/graphql-response+json ------------------------------------------------------------


@pytest.mark.parametrize("query", [PARSE_ERROR, VALIDATION_ERROR], ids=["parse", "validation"])
def test_graphql_response_json_answers_a_document_that_never_ran_with_400_and_no_data(client, query):
    response = post(client, {"query": query}, accept=GRAPHQL_RESPONSE_ACCEPT)
    assert response.status_code == 400
    assert is_graphql_response(response)
    body = response.json()
    assert "data" not in body and body["errors"][0]["message"]


def test_graphql_response_json_answers_a_good_query_with_200(client):
    response = post(client, {"query": GOOD}, accept="application/graphql-response+json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/graphql-response+json; charset=utf-8"
    assert response.json() == {"data": {"__typename": "Query"}}


def test_graphql_response_json_keeps_200_when_execution_produced_field_errors(client, hotspot):
    response = post(client, {"query": "{ __typename routers { id } }"}, accept=GRAPHQL_RESPONSE_ACCEPT)
    assert response.status_code == 200 and is_graphql_response(response)
    body = response.json()
    # A non-null root field failed (no credentials) and nulled `data`: still an executed operation.
    assert "data" in body and body["errors"][0]["path"] == ["routers"]
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_graphql_response_json_answers_variables_that_do_not_coerce_with_400(client, operator):
    response = post(client, {"query": PACKAGES, "variables": {}}, accept=GRAPHQL_RESPONSE_ACCEPT, **portal(operator))
    assert response.status_code == 400 and is_graphql_response(response)
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "raw",
    [
        '{ "not a JSON',
        json.dumps({"qeury": GOOD}),
        json.dumps({"query": 0}),
        json.dumps({"query": ["array"]}),
        json.dumps({"query": GOOD, "variables": "string"}),
        json.dumps({"query": GOOD, "extensions": 0}),
        json.dumps({"query": GOOD, "operationName": False}),
    ],
    ids=["bad-json", "no-query", "number-query", "array-query", "string-variables", "number-extensions", "bool-name"],
)
def test_graphql_response_json_answers_an_unreadable_request_with_400_and_an_error_body(client, raw):
    response = post(client, raw, accept=GRAPHQL_RESPONSE_ACCEPT)
    assert response.status_code == 400 and is_graphql_response(response)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_graphql_response_json_for_a_mutation_over_get_is_a_4xx(client):
    response = get(client, {"query": "mutation { __typename }"}, accept="application/graphql-response+json")
    assert 400 <= response.status_code < 500 and is_graphql_response(response)


# --- application/json: today's behaviour --------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/plain"])
@pytest.mark.parametrize("query", [PARSE_ERROR, VALIDATION_ERROR], ids=["parse", "validation"])
def test_application_json_stays_the_default_with_200_for_graphql_errors(client, accept, query):
    response = post(client, {"query": query}, accept=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["data"] is None and body["errors"]


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_application_json_good_query(client, accept):
    response = post(client, {"query": GOOD}, accept=accept)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {"data": {"__typename": "Query"}}


def test_application_json_unusable_body_is_still_a_400_with_data_null(client):
    response = post(client, '{ "not a JSON')
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["data"] is None


def test_application_json_missing_query_is_still_plain_text(client):
    response = post(client, {"qeury": GOOD})
    assert response.status_code == 400 and response["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0.5, application/json", JSON),
        ("application/json;q=0.5, application/graphql-response+json;q=0.8", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0, */*", JSON),
        ("application/graphql-response+json;q=0", JSON),
        ("application/json;q=0.5, */*", GRAPHQL_RESPONSE_JSON),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON; charset=utf-8", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=nonsense, application/json", JSON),
        ("text/html", JSON),
    ],
)
def test_media_type_negotiation_honours_q_values(accept, expected):
    assert response_media_type(accept) == expected


def test_q_values_are_honoured_over_http(client):
    response = post(client, {"query": PARSE_ERROR}, accept="application/graphql-response+json;q=0.1, application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"


# --- GET: public-key portal reads only ----------------------------------------------------------


def portal(operator) -> dict[str, str]:
    return {"X-Public-Key": operator.public_key}


def operator_token(operator) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator.tokens.access_token}"}


def assert_use_post(response) -> None:
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_INPUT" and "POST" in error["message"]
    assert response["Cache-Control"] == "private, no-store"


def test_get_of_packages_with_a_public_key_runs_and_may_be_cached(client, operator, hotspot):
    response = get(client, {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}, **portal(operator))
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["data"]["packages"]] == ["1 Hour"]
    assert response["Cache-Control"] == "public, max-age=60"
    vary = {v.strip().lower() for v in response["Vary"].split(",")}
    assert {"authorization", "x-public-key", "accept"} <= vary


def test_get_of_packages_with_graphql_response_json(client, operator, hotspot):
    response = get(
        client,
        {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}},
        accept=GRAPHQL_RESPONSE_ACCEPT,
        **portal(operator),
    )
    assert response.status_code == 200 and is_graphql_response(response)
    assert response["Cache-Control"] == "public, max-age=60"


def test_get_with_portal_info_by_name_passes_the_gate(client, operator):
    # portalInfo is allowed over GET by name: whether it exists yet is the schema's answer.
    response = get(client, {"query": "{ portalInfo { __typename } }"}, **portal(operator))
    assert response.status_code != 405


def test_get_that_failed_is_not_cached(client, hotspot):
    params = {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}
    response = get(client, params, **{"X-Public-Key": "f" * 32})
    assert response.status_code == 200 and response.json()["errors"]
    assert response["Cache-Control"] == "private, no-store"


def test_get_of_a_mutation_is_refused(client, operator):
    before = operator.public_key
    response = get(client, {"query": "mutation { rotatePublicKey { publicKey } }"}, **portal(operator))
    assert_use_post(response)
    assert operator.public_key == before


def test_get_of_a_payment_with_its_client_secret_is_refused(client, operator):
    params = {"query": PAYMENT, "variables": {"id": "00000000-0000-4000-8000-000000000000", "secret": "s" * 40}}
    assert_use_post(get(client, params, **portal(operator)))


def test_get_with_an_operator_token_is_refused(client, operator, hotspot):
    params = {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}
    assert_use_post(get(client, params, **operator_token(operator)))
    assert_use_post(get(client, params, **operator_token(operator), **portal(operator)))


def test_get_without_credentials_is_refused(client, hotspot):
    assert_use_post(get(client, {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}))


@pytest.mark.parametrize(
    "query",
    [
        "{ me { id } }",
        "{ packages(routerId: 1) { id } me { id } }",
        "query { ...Everything } fragment Everything on Query { me { id } }",
        "query { ... on Query { routers { id } } }",
        "query A { packages(routerId: 1) { id } } query B { routers { id } }",
        "query A { packages(routerId: 1) { id } } mutation B { rotatePublicKey { publicKey } }",
        "subscription { __typename }",
        "{ __schema { types { name } } }",
        '{ __type(name: "Query") { name } }',
        "query { ...Missing }",
    ],
    ids=[
        "operator-field",
        "mixed",
        "fragment-spread",
        "inline-fragment",
        "other-operation",
        "other-mutation",
        "subscription",
        "introspection",
        "type-introspection",
        "unknown-fragment",
    ],
)
def test_get_of_anything_but_a_public_read_is_refused(client, operator, query):
    assert_use_post(get(client, {"query": query, "operationName": "A"}, **portal(operator)))


def test_get_of_a_bare_typename_needs_no_credentials(client):
    # Reads nothing; generic HTTP clients (and the GraphQL-over-HTTP audit) probe with it.
    response = get(client, {"query": GOOD})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


def test_get_that_does_not_parse_gets_the_syntax_error(client, operator):
    response = get(client, {"query": PARSE_ERROR}, accept=GRAPHQL_RESPONSE_ACCEPT, **portal(operator))
    assert response.status_code == 400 and "Syntax Error" in response.json()["errors"][0]["message"]


# --- Cache-Control and Vary on every answer ------------------------------------------------------


@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE_ACCEPT])
def test_post_answers_are_private_and_vary_by_credentials(client, operator, hotspot, accept):
    body = {"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}
    for response in (
        post(client, body, accept=accept, **portal(operator)),
        post(client, body, accept=accept, **operator_token(operator)),
        post(client, {"query": PARSE_ERROR}, accept=accept),
        post(client, '{ "not a JSON', accept=accept),
    ):
        assert response["Cache-Control"] == "private, no-store"
        vary = {v.strip().lower() for v in response["Vary"].split(",")}
        assert {"authorization", "x-public-key"} <= vary


def test_other_methods_are_405_with_allow(client):
    response = client.put("/graphql/", data="{}", content_type="application/json")
    assert response.status_code == 405 and response["Allow"] == "GET, POST"


# --- GraphiQL stays where it was ----------------------------------------------------------------

urlpatterns: list = []


@pytest.fixture
def graphiql_on(settings, monkeypatch):
    """/graphql/ with the IDE on (off in tests, decided when project.urls is imported); what the IDE
    page contains is GraphiQL's own test's business, here only who gets it."""
    from project.schema import schema

    async def ide_page(self, request):
        return HttpResponse("<!doctype html><title>GraphiQL</title>")

    monkeypatch.setattr(GraphQLView, "render_graphql_ide", ide_page)
    urlpatterns[:] = [path("graphql/", csrf_exempt(GraphQLView.as_view(schema=schema, graphql_ide="graphiql")))]
    settings.ROOT_URLCONF = __name__


def test_get_asking_for_html_still_gets_graphiql(client, graphiql_on):
    response = client.get("/graphql/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200 and b"GraphiQL" in response.content


def test_persisted_query_get_accepting_anything_gets_data_not_graphiql(client, graphiql_on):
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    response = client.get("/graphql/", {"extensions": json.dumps(extensions)}, headers={"Accept": "*/*"})
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


# --- /graphql without the slash -------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_post_without_the_trailing_slash_runs_the_document(client, operator, hotspot, settings, debug):
    """APPEND_SLASH cannot redirect a POST: under DEBUG it raised (a 500), otherwise it answered 301
    and clients followed it as a GET without the body (red team, issue 14)."""
    settings.DEBUG = debug
    response = client.post(
        "/graphql",
        data=json.dumps({"query": PACKAGES, "variables": {"routerId": str(hotspot.pk)}}),
        content_type="application/json",
        headers=portal(operator),
    )
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["data"]["packages"]] == ["1 Hour"]


def test_preflight_without_the_trailing_slash_is_answered_as_with_it(client):
    response = client.options(
        "/graphql",
        headers={
            "Origin": "https://portal.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-public-key",
        },
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"]
    assert "x-public-key" in response["Access-Control-Allow-Headers"]
