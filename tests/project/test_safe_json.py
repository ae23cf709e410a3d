"""project.safe_json skips its walk of the decoded value when the text shows there is nothing to
find (issue 14: every WebSocket frame is decoded there). Whatever the shortcut, the verdict on
every input must be the one the full walk gives."""

from __future__ import annotations

import json

import pytest

from project import safe_json

NUL, SURROGATE = "\x00", "\ud800"

HOSTILE_AND_PLAIN = [
    '{"type": "connection_init", "payload": {"X-Public-Key": "pk_live_abc"}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "subscription { a { b { c } } }"}}',
    '{"name": "Caf\\u00e9"}',  # an escape that is harmless
    '{"name": "\\u0000"}',  # NUL, escaped
    '{"\\u0000": 1}',  # NUL in a key
    '["\\ud800"]',  # a lone high surrogate
    '{"a": "\\udfff"}',  # a lone low surrogate
    '"\\ud83d\\ude00"',  # a surrogate pair: a real character, accepted
    "[" * 64 + "]" * 64,  # exactly the deepest allowed
    "[" * 65 + "]" * 65,  # one too deep
    '{"a":' * 65 + "1" + "}" * 65,
    '{"q": "' + "{" * 100 + '"}',  # brackets inside a string: counted, then walked, still fine
    '{"q": "' + "[" * 70 + '", "deep": ' + "[" * 65 + "]" * 65 + "}",
    f'"{SURROGATE}"',  # written as it is (only possible in a str built in Python)
    json.dumps({"a": [1, 2, {"b": None}], "c": "text"}),
]


def _full_walk_verdict(text: str) -> str:
    try:
        value = json.loads(text, parse_constant=safe_json._refuse_constant, parse_float=safe_json._finite_float)
    except ValueError as exc:
        return f"refused: {type(exc).__name__}"
    try:
        safe_json._check(value, safe_json.MAX_DEPTH)
    except safe_json.UnsafeJSON as exc:
        return f"refused: {exc}"
    return "accepted"


def _verdict(text: str) -> str:
    try:
        safe_json.loads(text)
    except safe_json.UnsafeJSON as exc:
        if str(exc).startswith("Invalid JSON"):
            return "refused: JSONDecodeError"
        return f"refused: {exc}"
    return "accepted"


@pytest.mark.parametrize("text", HOSTILE_AND_PLAIN)
def test_the_shortcut_gives_the_full_walks_verdict(text):
    assert _verdict(text) == _full_walk_verdict(text)
    assert _verdict(text.encode("utf-8", "surrogatepass")) == _full_walk_verdict(text)


def test_what_the_shortcut_must_still_refuse():
    for text in ('{"name": "\\u0000"}', '["\\ud800"]', "[" * 65 + "]" * 65):
        with pytest.raises(safe_json.UnsafeJSON):
            safe_json.loads(text)


def test_an_ordinary_frame_is_not_walked(monkeypatch):
    walked = []
    monkeypatch.setattr(safe_json, "_check", lambda value, depth: walked.append(value))
    safe_json.loads(HOSTILE_AND_PLAIN[1])
    assert walked == []
    safe_json.loads('{"name": "\\u0000"}')
    assert len(walked) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_frame_is_decoded_once(operator, monkeypatch):
    """The consumer checks a frame's shape before strawberry sees it, and hands strawberry the value
    it decoded instead of the text to decode again."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    key = await sync_to_async(lambda: operator.public_key)()
    decoded: list[str] = []
    real_loads = safe_json.loads

    def counting_loads(data, **kwargs):
        decoded.append(data)
        return real_loads(data, **kwargs)

    monkeypatch.setattr(safe_json, "loads", counting_loads)
    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-transport-ws"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "connection_init", "payload": {"X-Public-Key": key}})
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    await ws.send_json_to({"id": "1", "type": "subscribe", "payload": {"query": "query { __typename }"}})
    assert (await ws.receive_json_from(timeout=3))["payload"] == {"data": {"__typename": "Query"}}
    await ws.disconnect()
    frames = [json.loads(text)["type"] for text in decoded]
    assert frames == ["connection_init", "subscribe"]
