"""A burst of portal requests against one daphne on PostgreSQL: nobody gets a 500, and the process holds
no more database connections than HTTP_MAX_CONCURRENT_REQUESTS and its thread pools allow.

Kept from an attack from outside: 150 concurrent `packages` queries (or a tenant flooding their own
router's code box) asked PostgreSQL for more connections than its max_connections; every tenant's requests
and `/healthz/` failed with 500s/503s while it lasted.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from tests.live import Daphne, base_env, running

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 4


def test_a_burst_waits_its_turn_instead_of_exhausting_connections(tmp_path, operator) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("connections are counted on PostgreSQL")
    router = operator.add_router()
    operator.add_package(router)
    query = {"query": f'query {{ packages(routerId: "{router.pk}") {{ id name }} }}'}
    headers = {"X-Public-Key": operator.public_key}
    env = base_env(tmp_path, DEBUG="0", HTTP_MAX_CONCURRENT_REQUESTS=str(LIMIT), WS_DB_THREADS="1")
    server = Daphne(env, tmp_path)
    database = connection.settings_dict["NAME"]
    most_connections = 0
    done = threading.Event()

    def count_connections() -> None:
        nonlocal most_connections
        try:
            with connection.cursor() as cursor:  # this thread's own connection, counted out below
                while not done.is_set():
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
                    most_connections = max(most_connections, cursor.fetchone()[0] - 1)
                    done.wait(0.02)
        finally:
            connection.close()

    with running(server):
        server.wait_healthy()
        watcher = threading.Thread(target=count_connections)
        watcher.start()
        try:
            with ThreadPoolExecutor(120) as pool:
                statuses = list(
                    pool.map(
                        lambda _: requests.post(f"{server.url}/graphql/", json=query, headers=headers, timeout=60),
                        range(240),
                    )
                )
            health = requests.get(f"{server.url}/healthz/", timeout=10)
        finally:
            done.set()
            watcher.join()

    assert {response.status_code for response in statuses} == {200}
    assert all(response.json()["data"]["packages"] for response in statuses)
    assert health.status_code == 200
    # The served requests' threads, plus the process's own: the WebSocket pool's thread, /healthz/, the
    # embedded task consumer and its periodic jobs, a router-io thread. Without the limit it is ~100.
    assert most_connections <= LIMIT + 8, most_connections
