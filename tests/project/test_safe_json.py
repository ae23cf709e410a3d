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
    '[' * 64 + ']' * 64,  # exactly the deepest allowed
    '[' * 65 + ']' * 65,  # one too deep
    '{"a":' * 65 + '1' + '}' * 65,
    '{"q": "' + '{' * 100 + '"}',  # brackets inside a string: counted, then walked, still fine
    '{"q": "' + '[' * 70 + '", "deep": ' + '[' * 65 + ']' * 65 + '}',
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
    for text in ('{"name": "\\u0000"}', '["\\ud800"]', '[' * 65 + ']' * 65):
        with pytest.raises(safe_json.UnsafeJSON):
            safe_json.loads(text)


def test_an_ordinary_frame_is_not_walked(monkeypatch):
    walked = []
    monkeypatch.setattr(safe_json, "_check", lambda value, depth: walked.append(value))
    safe_json.loads(HOSTILE_AND_PLAIN[1])
    assert walked == []
    safe_json.loads('{"name": "\\u0000"}')
    assert len(walked) == 1
