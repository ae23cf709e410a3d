"""Apollo's automatic persisted queries (issue 10, item 8): the hash first, the whole document only
on `PersistedQueryNotFound`, over POST and (for public reads) GET; and what a stranger could try
with them: binding a hash to another text, or smuggling a forbidden operation into a GET."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.cache import caches
from django.test import override_settings

from project.errors import ErrorCode
from tests.documents import PAYMENT
from tests.live import free_port

pytestmark = pytest.mark.django_db

PACKAGES = "query Packages($routerId: ID!) { packages(routerId: $routerId) { id name price } }"
ROTATE = "mutation { rotatePublicKey { publicKey } }"
GRAPHQL_RESPONSE_ACCEPT = "application/graphql-response+json, application/json;q=0.9"


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(sha256_hash: str, version: object = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256_hash}}


def post(client, body: dict, *, accept: str | None = None, **headers: str):
    if accept is not None:
        headers["Accept"] = accept
    return client.post("/graphql/", data=json.dumps(body), content_type="application/json", headers=headers)


def get(client, params: dict, **headers: str):
    # As Apollo's HttpLink sends a GET: JSON-encoded variables and extensions, Accept */*.
    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
    return client.get("/graphql/", encoded, headers={"Accept": "*/*", **headers})


def error_code(response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


@pytest.fixture(autouse=True)
def _empty_store():
    caches["persisted_queries"].clear()
    yield
    caches["persisted_queries"].clear()


@pytest.fixture
def hotspot(operator):
    router = operator.add_router()
    operator.add_package(router)
    return router


@pytest.fixture
def packages_request(operator, hotspot):
    variables = {"routerId": str(hotspot.pk)}
    return {"variables": variables, "headers": {"X-Public-Key": operator.public_key}}


def test_not_found_then_registered_then_hash_alone_works(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    hash_only = {"variables": variables, "extensions": persisted(sha256(PACKAGES))}

    unknown = post(client, hash_only, **headers)
    assert unknown.status_code == 200  # Apollo's link retries on this; a 400 would switch APQ off
    error = unknown.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == ErrorCode.PERSISTED_QUERY_NOT_FOUND.value

    registered = post(client, {"query": PACKAGES, **hash_only}, **headers)
    assert registered.status_code == 200
    assert [p["name"] for p in registered.json()["data"]["packages"]] == ["1 Hour"]

    again = post(client, hash_only, **headers)
    assert again.status_code == 200 and again.json() == registered.json()


def test_not_found_with_graphql_response_json_is_200_without_data(client):
    response = post(client, {"extensions": persisted(sha256("{ __typename }"))}, accept=GRAPHQL_RESPONSE_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/graphql-response+json")
    assert "data" not in response.json() and error_code(response) == "PERSISTED_QUERY_NOT_FOUND"


def test_a_hash_that_is_not_the_querys_is_refused_and_nothing_is_stored(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    other = "{ __typename }"
    # A stranger tries to bind the portal's hash to another document.
    forged = post(client, {"query": other, "variables": variables, "extensions": persisted(sha256(PACKAGES))})
    assert forged.status_code == 400 and error_code(forged) == "INVALID_INPUT"

    for sha in (sha256(PACKAGES), sha256(other)):
        response = post(client, {"variables": variables, "extensions": persisted(sha)}, **headers)
        assert error_code(response) == "PERSISTED_QUERY_NOT_FOUND"


def test_a_registered_hash_cannot_be_rebound(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    post(client, {"query": PACKAGES, "variables": variables, "extensions": persisted(sha256(PACKAGES))}, **headers)
    forged = post(client, {"query": "{ me { id } }", "extensions": persisted(sha256(PACKAGES))})
    assert forged.status_code == 400
    response = post(client, {"variables": variables, "extensions": persisted(sha256(PACKAGES))}, **headers)
    assert response.json()["data"]["packages"]


@pytest.mark.parametrize(
    "extensions",
    [
        persisted(sha256("{ __typename }"), version=2),
        persisted(sha256("{ __typename }"), version="1"),
        persisted(sha256("{ __typename }"), version=True),
        persisted("not-a-hash"),
        persisted(sha256("{ __typename }") + "00"),
        {"persistedQuery": "abc"},
        {"persistedQuery": {"version": 1}},
    ],
    ids=["version-2", "version-string", "version-true", "short-hash", "long-hash", "not-object", "no-hash"],
)
@pytest.mark.parametrize("with_query", [True, False])
def test_malformed_persisted_query_is_invalid_input(client, extensions, with_query):
    body = {"extensions": extensions, **({"query": "{ __typename }"} if with_query else {})}
    for accept in (None, GRAPHQL_RESPONSE_ACCEPT):
        response = post(client, body, accept=accept)
        assert response.status_code == 400 and error_code(response) == "INVALID_INPUT"


def test_uppercase_hash_finds_the_same_document(client):
    query = "{ __typename }"
    post(client, {"query": query, "extensions": persisted(sha256(query))})
    response = post(client, {"extensions": persisted(sha256(query).upper())})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_documents_above_the_size_limit_run_but_are_not_stored(client, settings):
    settings.PERSISTED_QUERY_MAX_BYTES = 64
    query = "query ALongNameThatMakesThisDocumentLongerThanSixtyFourBytes { __typename }"
    registered = post(client, {"query": query, "extensions": persisted(sha256(query))})
    assert registered.json() == {"data": {"__typename": "Query"}}
    assert error_code(post(client, {"extensions": persisted(sha256(query))})) == "PERSISTED_QUERY_NOT_FOUND"


def test_documents_that_do_not_parse_are_not_stored(client):
    query = "{ __typename "
    post(client, {"query": query, "extensions": persisted(sha256(query))})
    assert error_code(post(client, {"extensions": persisted(sha256(query))})) == "PERSISTED_QUERY_NOT_FOUND"


def test_stored_with_a_long_ttl_under_a_prefixed_key(client, settings):
    query = "{ __typename }"
    post(client, {"query": query, "extensions": persisted(sha256(query))})
    store = caches["persisted_queries"]
    assert store.get(f"persisted-query:v1:{sha256(query)}") == query
    assert store.get(sha256(query)) is None
    assert settings.PERSISTED_QUERY_TTL_SECONDS >= 3600


# --- GET -------------------------------------------------------------------------------------------


def test_apollo_get_of_a_registered_packages_query_is_public(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    params = {"operationName": "Packages", "variables": variables, "extensions": persisted(sha256(PACKAGES))}
    assert error_code(get(client, params, **headers)) == "PERSISTED_QUERY_NOT_FOUND"
    post(client, {"query": PACKAGES, **params}, **headers)  # Apollo registers with POST

    response = get(client, params, **headers)
    assert response.status_code == 200 and response.json()["data"]["packages"]
    assert response["Cache-Control"] == "public, max-age=60"


def test_get_registering_a_packages_query_works_too(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    params = {"query": PACKAGES, "variables": variables, "extensions": persisted(sha256(PACKAGES))}
    assert get(client, params, **headers).json()["data"]["packages"]


def test_a_persisted_mutation_cannot_be_run_by_get(client, operator):
    before = operator.public_key
    # Anyone may register the mutation (it runs as an unauthenticated POST and fails)...
    post(client, {"query": ROTATE, "extensions": persisted(sha256(ROTATE))})
    # ...but its hash over GET is refused, whoever asks, before anything runs.
    for headers in (
        {"X-Public-Key": operator.public_key},
        {"Authorization": f"Bearer {operator.tokens.access_token}"},
        {},
    ):
        response = get(client, {"extensions": persisted(sha256(ROTATE))}, **headers)
        assert response.status_code == 405 and response["Allow"] == "POST"
    assert operator.public_key == before


def test_someone_elses_persisted_payment_query_cannot_be_run_by_get(client, operator):
    post(client, {"query": PAYMENT, "extensions": persisted(sha256(PAYMENT))})
    params = {
        "variables": {"id": "00000000-0000-4000-8000-000000000000", "secret": "s" * 40},
        "extensions": persisted(sha256(PAYMENT)),
    }
    response = get(client, params, **{"X-Public-Key": operator.public_key})
    assert response.status_code == 405 and error_code(response) == "INVALID_INPUT"


def test_a_persisted_operator_query_cannot_be_run_by_get_with_a_token(client, operator):
    query = "{ me { id } }"
    post(client, {"query": query, "extensions": persisted(sha256(query))})
    response = get(
        client, {"extensions": persisted(sha256(query))}, Authorization=f"Bearer {operator.tokens.access_token}"
    )
    assert response.status_code == 405


# --- The store is down -----------------------------------------------------------------------------


@pytest.fixture
def store_down():
    location = f"redis://127.0.0.1:{free_port()}/0"
    caches_setting = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "persisted_queries": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location},
    }
    with override_settings(CACHES=caches_setting):
        yield


def test_with_the_store_down_a_hash_is_not_found_and_the_full_query_still_runs(client, store_down):
    query = "{ __typename }"
    assert error_code(post(client, {"extensions": persisted(sha256(query))})) == "PERSISTED_QUERY_NOT_FOUND"
    response = post(client, {"query": query, "extensions": persisted(sha256(query))})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_a_benign_query_cannot_carry_a_stored_mutations_hash_over_get(client, operator):
    before = operator.public_key
    post(client, {"query": ROTATE, "extensions": persisted(sha256(ROTATE))})
    params = {"query": "{ __typename }", "extensions": persisted(sha256(ROTATE))}
    response = get(client, params, **{"X-Public-Key": operator.public_key})
    assert response.status_code == 400 and error_code(response) == "INVALID_INPUT"
    assert operator.public_key == before


def test_a_persisted_packages_query_over_get_still_needs_the_public_key(client, packages_request):
    variables, headers = packages_request["variables"], packages_request["headers"]
    post(client, {"query": PACKAGES, "variables": variables, "extensions": persisted(sha256(PACKAGES))}, **headers)
    response = get(client, {"variables": variables, "extensions": persisted(sha256(PACKAGES))})
    assert response.status_code == 405 and response["Cache-Control"] == "private, no-store"


@override_settings(PERSISTED_QUERY_REGISTRATIONS_PER_HOUR=3)
def test_a_flood_of_distinct_documents_from_one_address_stops_being_stored(client, packages_request):
    """Redis evicts nothing by default: one address registering endless distinct documents (aliases
    make infinitely many) must not fill it. Past the budget documents still run, unstored."""
    from django.core.cache import cache

    cache.clear()  # the throttle's counters
    headers = packages_request["headers"]
    documents = [f"query Probe{index} {{ __typename }}" for index in range(5)]
    for document in documents:
        answer = post(client, {"query": document, "extensions": persisted(sha256(document))}, **headers)
        assert answer.json()["data"] == {"__typename": "Query"}  # every one runs
    stored = [caches["persisted_queries"].get(f"persisted-query:v1:{sha256(d)}") is not None for d in documents]
    assert stored == [True, True, True, False, False]
    # Sending an already stored document again costs nothing from the budget.
    again = post(client, {"query": documents[0], "extensions": persisted(sha256(documents[0]))}, **headers)
    assert again.status_code == 200
