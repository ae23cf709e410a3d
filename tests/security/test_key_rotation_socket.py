"""Issue 9, item 13: a public-key WebSocket kept serving new subscriptions after rotatePublicKey.

Against a live daphne with a real WebSocket client: rotating the key closes the portal's open socket
(4403); a rotation whose hint never reached the socket is caught at the next subscribe. The same
holds for operator sockets after revokeTokens."""

from __future__ import annotations

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from billing.services import operator_rotate_public_key
from tests.live import Daphne, GraphQLWebSocket, base_env, running

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGES = "query($r: ID!) { packages(routerId: $r) { name } }"


def post_graphql(server: Daphne, query: str, token: str) -> dict:
    response = requests.post(
        f"{server.url}/graphql/", json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def close_code(socket: GraphQLWebSocket, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; its close code (daphne sends no reason)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.receive(timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.fixture
def server(shop, tmp_path):
    daphne = Daphne(base_env(tmp_path), tmp_path)
    with running(daphne):
        daphne.wait_healthy()
        yield daphne


def test_portal_socket_is_closed_when_the_key_is_rotated(server, shop):
    with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
        portal.subscribe(PACKAGES, {"r": str(shop.router.pk)})
        assert portal.next_data()["packages"] == [{"name": "1 Hour"}]
        rotated = post_graphql(server, "mutation { rotatePublicKey { publicKey } }", shop.operator.tokens.access_token)
        assert "errors" not in rotated
        assert close_code(portal) == 4403


def test_portal_socket_is_refused_new_subscriptions_after_a_rotation_it_was_not_told_of(server, shop):
    with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
        # Rotated by another process (its hint goes to another channel layer): the socket hears nothing.
        operator_rotate_public_key(operator=shop.operator.user)
        portal.subscribe(PACKAGES, {"r": str(shop.router.pk)})
        assert close_code(portal) == 4403


def test_operator_socket_is_closed_by_revoke_tokens(server, shop):
    token = shop.operator.tokens.access_token
    with GraphQLWebSocket.connect(server.ws_url, {"Authorization": f"Bearer {token}"}) as console:
        console.subscribe(PACKAGES, {"r": str(shop.router.pk)})
        assert console.next_data()["packages"] == [{"name": "1 Hour"}]
        assert post_graphql(server, "mutation { revokeTokens { errors { code } } }", token) == {
            "data": {"revokeTokens": {"errors": []}}
        }
        assert close_code(console) == 4403


def test_a_rotation_leaves_the_new_keys_sockets_open(server, shop):
    operator_rotate_public_key(operator=shop.operator.user)
    with GraphQLWebSocket.connect(server.ws_url, {"X-Public-Key": shop.operator.public_key}) as portal:
        portal.subscribe(PACKAGES, {"r": str(shop.router.pk)})
        assert portal.next_data()["packages"] == [{"name": "1 Hour"}]
