"""IntaSend's webhooks are recorded on threads that keep their database connection (project.db_threads):
no new PostgreSQL backend per webhook, and one the database dropped meanwhile is replaced, not reused."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from project.db_threads import webhook_write

pytestmark = pytest.mark.django_db(transaction=True)


def _connection_in_use() -> object:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.connection


def test_webhooks_reuse_their_threads_connections(settings):
    seen = {id(async_to_sync(webhook_write(_connection_in_use))()) for _ in range(10)}
    assert len(seen) <= settings.WEBHOOK_DB_THREADS


@pytest.mark.skipif(connection.vendor != "postgresql", reason="an SQLite file has no server to drop the connection")
def test_a_connection_the_database_dropped_is_replaced_before_the_webhook():
    from project.db_threads import _on_a_kept_connection

    def drop_it() -> object:
        held = _connection_in_use()
        held.close()  # as a database restart or an idle timeout would, behind Django's back
        return held

    dropped = _on_a_kept_connection(drop_it)()
    replacement = _on_a_kept_connection(_connection_in_use)()
    assert replacement is not dropped
