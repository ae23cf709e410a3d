"""Red team, 2026-12-01 (from outside, no credentials needed for most): inputs that reached an
INTERNAL error with an ERROR traceback, or ended a socket's handler and left the socket open, deaf.
Every one is now the client's mistake: INVALID_INPUT, or the socket closed with 4400."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)  # sockets read the operator on their own connection

HUGE = "9" * 5000  # over Python's 4,300-digit limit for int()


def _errors_at_error_level(caplog) -> list[str]:
    return [record.getMessage()[:200] for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "query",
    [
        f"query($x: Int = {HUGE}) {{ __typename }}",
        f'{{ packages(routerId: "{HUGE}") {{ id }} }}',
        f"{{ packages(routerId: {HUGE}) {{ id }} }}",
    ],
    ids=["int literal", "id string", "id as int literal"],
)
def test_a_five_thousand_digit_number_is_the_clients_mistake(gql, operator, caplog, query):
    body = gql(query, public_key=operator.public_key)
    codes = {error["extensions"]["code"] for error in body.get("errors", [])}
    assert "INTERNAL" not in codes, body
    assert _errors_at_error_level(caplog) == []


@pytest.fixture
def application():
    from project.asgi import application

    return application


async def _socket(application, protocol: str, operator) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[protocol])
    assert (await ws.connect())[0]
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {operator.tokens.access_token}"}}
    await ws.send_json_to(init)
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    return ws


def _start(protocol: str, payload, operation_id="s1") -> dict:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    return {"id": operation_id, "type": kind, "payload": payload}


ANSWERED_WITH_AN_ERROR = {
    "payload a string": "x",
    "payload null": None,
    "no query": {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
    "empty query": {"query": ""},
    "query a number": {"query": 5},
    "operationName a number": {"query": "subscription { routerUpdates { id } }", "operationName": 3},
    "unknown operationName": {"query": "subscription A { routerUpdates { id } }", "operationName": "B"},
    "variables a string": {"query": "subscription { routerUpdates { id } }", "variables": "x"},
}


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize("payload", ANSWERED_WITH_AN_ERROR.values(), ids=ANSWERED_WITH_AN_ERROR.keys())
async def test_a_malformed_start_is_answered_and_the_socket_still_works(
    application, operator, caplog, protocol, payload
):
    ws = await _socket(application, protocol, operator)
    await ws.send_json_to(_start(protocol, payload))
    reply = await ws.receive_json_from(timeout=3)
    errors = reply["payload"] if isinstance(reply["payload"], list) else [reply["payload"]]
    assert (reply["type"], reply["id"], [e["extensions"]["code"] for e in errors]) == (
        "error",
        "s1",
        ["INVALID_INPUT"],
    ), reply
    # The socket still answers (graphql-ws refuses a query, with an error for s2: an answer all the same).
    await ws.send_json_to(_start(protocol, {"query": "query { __typename }"}, "s2"))
    assert (await ws.receive_json_from(timeout=3))["id"] == "s2"
    await ws.disconnect()
    assert _errors_at_error_level(caplog) == []


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize(
    "frame",
    [[], "text", {"type": "start", "payload": {"query": "subscription { routerUpdates { id } }"}}, {"type": "stop"}],
    ids=["a list", "a string", "a start without id", "a stop without id"],
)
async def test_a_frame_that_names_no_operation_closes_the_socket_4400(application, operator, caplog, protocol, frame):
    ws = await _socket(application, protocol, operator)
    if isinstance(frame, dict) and frame["type"] == "start" and protocol == "graphql-transport-ws":
        frame = {**frame, "type": "subscribe"}
    await ws.send_to(text_data=json.dumps(frame))
    closed = await ws.receive_output(timeout=3)
    assert (closed["type"], closed.get("code")) == ("websocket.close", 4400), closed
    assert _errors_at_error_level(caplog) == []


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_malformed_start_before_the_connection_is_acknowledged_is_refused_unread(application, caplog, protocol):
    """The shape check answers only acknowledged sockets: before connection_init a start is refused
    with 4401 on both protocols, and no stranger gets an answer to it."""
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[protocol])
    assert (await ws.connect())[0]
    await ws.send_json_to(_start(protocol, None))
    output = await ws.receive_output(timeout=3)
    assert (output["type"], output.get("code")) == ("websocket.close", 4401), output
    assert _errors_at_error_level(caplog) == []


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
async def test_a_second_connection_init_is_refused_and_leaves_nothing_behind(
    application, operator, other_operator, protocol
):
    """graphql-ws ran connection_init again: any public key (they are in every portal page) swapped
    the socket's principal, joined a second credentials group, and counted the socket open twice.
    On close only the second group was left, so the first kept the consumer alive for good: two
    inits per socket leaked a socket's memory each time, and `websockets_open` drifted up (red team,
    issue 14). Both protocols now close on a second init with 4429, as graphql-transport-ws says."""
    from asgiref.sync import sync_to_async

    from project import metrics
    from project.live_hub import LiveHub

    first, second = await sync_to_async(lambda: (operator.public_key, other_operator.public_key))()
    opened_before = metrics.open_socket_count()
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=[protocol])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": {"X-Public-Key": first}})
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    await ws.send_json_to({"type": "connection_init", "payload": {"X-Public-Key": second}})
    assert await ws.receive_output(timeout=3) == {
        "type": "websocket.close",
        "code": 4429,
        "reason": "Too many initialisation requests",
    }
    await ws.disconnect()  # the client answers the close
    loop = asyncio.get_running_loop()
    assert loop not in LiveHub._hubs, "a credentials group still holds the closed socket"
    assert metrics.open_socket_count() == opened_before


@pytest.mark.parametrize("text", ["not json", "{", '{"type": "nonsense"}', '{"payload": {}}', '{"type": {"a": 1}}'])
async def test_graphql_ws_answers_a_frame_it_cannot_use_with_a_coded_error(application, operator, caplog, text):
    """graphql-ws ignored such frames without a word (red team): the client now hears why, the
    socket stays open (graphql-transport-ws closes it with 4400, as that protocol says)."""
    ws = await _socket(application, "graphql-ws", operator)
    await ws.send_to(text_data=text)
    reply = await ws.receive_json_from(timeout=3)
    assert reply["type"] == "error" and reply["payload"]["extensions"] == {"code": "INVALID_INPUT"}, reply
    await ws.send_json_to(_start("graphql-ws", {"query": "query { __typename }"}, "s2"))
    assert (await ws.receive_json_from(timeout=3))["id"] == "s2"
    await ws.disconnect()
    assert _errors_at_error_level(caplog) == []
