"""Found by the suite under load: a result on its way while the client closes reached daphne after the
protocol had closed; autobahn raised `Disconnected` and strawberry logged an ERROR with a traceback
("Exception in worker task") for a client that merely left (tests/billing/test_subscription_close_logs.py)."""

from __future__ import annotations

from autobahn.exception import Disconnected

from project.consumers import GraphQLConsumer
from project.schema import schema


async def test_a_send_to_a_client_that_left_is_dropped_quietly():
    consumer = GraphQLConsumer(schema=schema)

    async def closed_protocol(message: dict) -> None:
        raise Disconnected("Attempt to send on a closed protocol")

    consumer.base_send = closed_protocol
    await consumer.send(text_data='{"type": "next"}')  # no exception: nothing to deliver
