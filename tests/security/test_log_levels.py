"""Issue 9, item 17: what a client causes is no ERROR with a traceback (API.md "Operability").

Anyone could fill the server's error log (and its alerting) with unauthenticated requests; expected
router retries looked like crashes.
"""

from __future__ import annotations

import logging

import pytest

from tests.documents import PAYMENTS


def _errors_or_tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_unauthenticated_requests_log_no_error_or_traceback(gql, operator, caplog):
    with caplog.at_level(logging.INFO):
        for headers in ({}, {"X-Public-Key": "0" * 32}, {"Authorization": "Bearer forged.token.here"}):
            result = gql(PAYMENTS, headers=headers)
            assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert _errors_or_tracebacks(caplog) == []
    assert any("UNAUTHENTICATED" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_invalid_queries_log_no_error_or_traceback(gql, operator, caplog):
    with caplog.at_level(logging.INFO):
        gql("{ noSuchField }", **operator.auth)
        gql("query($id: UUID!) { payment(id: $id) { id } }", {"id": "not-a-uuid"}, **operator.auth)
    assert _errors_or_tracebacks(caplog) == []


def test_unexpected_exception_is_still_an_error_with_traceback(gql, operator, caplog, monkeypatch):
    from billing import selectors

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "payments_for", broken)
    with caplog.at_level(logging.INFO):
        result = gql(PAYMENTS, **operator.auth)
    assert result["errors"][0]["message"] == "Internal server error"
    assert [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]


def test_router_retry_logs_a_warning_not_an_unhandled_exception(operator, caplog, django_capture_on_commit_callbacks):
    from huey.contrib.djhuey import HUEY

    router = operator.add_router()  # nothing listens on its port: the profile sync must retry
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
        package = operator.add_package(router)
    assert _errors_or_tracebacks(caplog) == []
    assert [r for r in caplog.records if r.levelno == logging.WARNING and f"package {package.pk}" in r.getMessage()]
    retries = [t for t in HUEY.scheduled() if t.args == (package.pk,)]
    assert retries, "the job must still be retried"
    HUEY.read_schedule(retries[0].eta)  # leave nothing scheduled for other tests
