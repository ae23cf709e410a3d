"""ASGI entry point: Django serves HTTP, Channels serves GraphQL over WebSockets on /graphql/.

`daphne project.asgi:application` alone is the whole embedded system: without REDIS_URL the task
consumer runs inside this process too (project.embedded), and with simulators on, so does the
RouterOS simulator the demo router points at (network.simulator.runtime).
"""

import os
from datetime import timedelta

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()  # before anything that imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from project import (  # noqa: E402
    autobahn_debug_lines,
    daphne_app_queue,
    daphne_close_reason,
    daphne_closed_protocol,
    daphne_upgrade_request,
    gc_tuning,
)
from project.consumers import GraphQLConsumer  # noqa: E402
from project.embedded import LoopRecordingApp, start_task_consumer  # noqa: E402
from project.http_concurrency import ConcurrencyLimit  # noqa: E402
from project.schema import schema  # noqa: E402

websocket_app = URLRouter(
    [
        re_path(
            r"^graphql/?$",
            GraphQLConsumer.as_asgi(
                schema=schema,
                # CORS_ALLOWED_ORIGINS (or its older name GRAPHQL_WS_ALLOWED_ORIGINS): the same list as
                # for HTTP. A handshake without Origin (not a browser) or from the API's own origin passes.
                allowed_origins=settings.GRAPHQL_ALLOWED_ORIGINS.for_websockets(),
                max_subscriptions_per_connection=settings.GRAPHQL_WS_MAX_SUBSCRIPTIONS,
                connection_init_wait_timeout=timedelta(seconds=10),
            ),
        )
    ]
)

daphne_close_reason.install()  # close reasons reach clients (4403 says why)
autobahn_debug_lines.install()  # no pprint per socket for a debug line that is dropped
daphne_app_queue.install()  # no asyncio.Queue per connection (~3 KiB per idle socket)
daphne_upgrade_request.install()  # an open socket keeps nothing of its HTTP upgrade request
daphne_closed_protocol.install()  # a closed socket's protocol is not left in a reference cycle
# HTTP requests beyond HTTP_MAX_CONCURRENT_REQUESTS wait their turn (each served one holds a database connection).
http_app = ConcurrencyLimit(django_asgi_app)
application = LoopRecordingApp(ProtocolTypeRouter({"http": http_app, "websocket": websocket_app}))

if settings.TASKS_IN_SERVER_PROCESS:
    start_task_consumer()

if settings.SIMULATORS_ENABLED and settings.ROUTEROS_SIMULATOR_AUTOSTART:
    # The demo router (seed_demo) on 127.0.0.1:ROUTEROS_SIMULATOR_PORT; once per process, and a
    # taken port is only a warning.
    from network.simulator.runtime import start_router_simulator

    start_router_simulator()

# Last: everything above lives as long as the process (project.gc_tuning).
gc_tuning.configure()
