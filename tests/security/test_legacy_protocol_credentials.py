"""Found from outside: on the legacy `graphql-ws` protocol, bad credentials got a `connection_error`
and the socket then stayed open (API.md: bad credentials close a socket with 4403 on both protocols).
"""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live import Daphne, base_env, running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
def test_bad_public_key_closes_the_socket_with_4403(shop, tmp_path, protocol):
    server = Daphne(base_env(tmp_path), tmp_path)
    with running(server):
        server.wait_healthy()
        with connect(server.ws_url, subprotocols=[protocol], open_timeout=10) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {"X-Public-Key": "0" * 32}}))
            frames = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frames.append(json.loads(ws.recv(timeout=5)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        assert closed.value.rcvd.reason == "Invalid or missing credentials"  # once arrived empty
        assert all(frame["type"] != "connection_ack" for frame in frames)
        if protocol == "graphql-ws":  # its connection_error is coded like every error
            assert [frame["payload"]["extensions"] for frame in frames] == [{"code": "UNAUTHENTICATED"}]
