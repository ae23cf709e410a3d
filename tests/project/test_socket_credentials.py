"""Issue 14 item 5: a reconnect storm's credential reads are batched, and a batch is never a cache.

Thousands of portals reconnecting at once each read their key's operator at `connection_init` and
their credentials' validity at the first `subscribe`; those reads share queries now
(project.socket_credentials). Every request is still answered by a read that started after it was
made: a rotated key is refused at once, however many sockets were just let in with it."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db.backends import utils as db_utils

from billing.services import operator_rotate_public_key
from project.auth import Principal, credentials_still_valid, portal_principals, sign_out_everywhere
from project.socket_credentials import socket_credentials_still_valid, socket_principal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def profile_queries(monkeypatch) -> list[str]:
    """The SQL run against operator profiles, from any thread (Django's cursor wrapper, counted)."""
    seen: list[str] = []
    execute = db_utils.CursorWrapper._execute

    def counting(self, sql, params, *ignored_wrapper_args):
        if "operatorprofile" in sql:
            seen.append(sql)
        return execute(self, sql, params, *ignored_wrapper_args)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counting)
    return seen


async def test_a_storm_of_portal_handshakes_shares_a_few_queries(operator, other_operator, profile_queries):
    keys = await sync_to_async(lambda: [operator.public_key, other_operator.public_key])()
    profile_queries.clear()
    principals = await asyncio.gather(*(socket_principal({"X-Public-Key": keys[i % 2]}) for i in range(200)))
    assert [p.operator.pk for p in principals[:2]] == [operator.user.pk, other_operator.user.pk]
    assert all(p.via == "public_key" and p.public_key == keys[i % 2] for i, p in enumerate(principals))
    assert 1 <= len(profile_queries) <= 3  # the first request's read, then one for all who came meanwhile
    still_valid = await asyncio.gather(*(socket_credentials_still_valid(p) for p in principals))
    assert all(still_valid)
    assert len(profile_queries) <= 6


async def test_a_key_rotated_during_a_storm_is_refused_to_every_later_handshake(operator):
    old_key = await sync_to_async(lambda: operator.public_key)()
    admitted = asyncio.gather(*(socket_principal({"x-public-key": old_key}) for _ in range(100)))
    await sync_to_async(operator_rotate_public_key)(operator=operator.user)
    # Asked after the rotation committed, while the reads of the storm before it may still be running.
    refused = await asyncio.gather(*(socket_principal({"X-Public-Key": old_key}) for _ in range(100)))
    assert refused == [None] * 100
    assert all(p is None or p.public_key == old_key for p in await admitted)
    new_key = await sync_to_async(lambda: operator.public_key)()
    assert (await socket_principal({"X-Public-Key": new_key})).operator.pk == operator.user.pk
    # A socket let in with the old key fails its next check.
    stale = Principal(operator=operator.user, via="public_key", public_key=old_key)
    assert await socket_credentials_still_valid(stale) is False


async def test_malformed_or_unknown_keys_are_refused_without_a_query(operator, profile_queries):
    assert await socket_principal({"X-Public-Key": "not-a-key"}) is None
    assert await socket_principal({"X-Public-Key": ""}) is None
    assert profile_queries == []
    assert await socket_principal({"X-Public-Key": "0" * 32}) is None


def test_credentials_still_valid_checks_many_in_one_query(operator, other_operator, profile_queries):
    portal = portal_principals([operator.public_key])[operator.public_key]
    rotated_away = Principal(operator=other_operator.user, via="public_key", public_key="f" * 32)
    token = Principal(operator=other_operator.user, via="jwt", expires_at=time.time() + 60, generation=0)
    expired = Principal(operator=other_operator.user, via="jwt", expires_at=time.time() - 1, generation=0)
    profile_queries.clear()
    assert credentials_still_valid([portal, rotated_away, token, expired]) == [True, False, True, False]
    assert len(profile_queries) == 1

    sign_out_everywhere(other_operator.user)  # the token's generation moves on
    operator.user.is_active = False
    operator.user.save()
    assert credentials_still_valid([portal, token]) == [False, False]
