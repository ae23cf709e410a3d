"""Apollo's automatic persisted queries: a client sends a document's SHA-256 first and the whole
document only when the server does not know it yet (slow, metered captive-portal links).

Anyone may register a document (its hash is checked, so no one can bind a hash to another text);
documents live in their own cache (settings.CACHES["persisted_queries"]), shared by every client.
Registrations are counted per client address (PERSISTED_QUERY_REGISTRATIONS_PER_HOUR): portals
register the same few documents once, so only a flood of distinct documents meets the limit, and
past it a document still runs but is not stored (Redis does not evict by default).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from django.conf import settings
from django.core.cache import caches
from graphql import GraphQLError, parse
from redis.exceptions import RedisError

from project import throttling
from project.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

# Apollo Client's persisted-query link retries with the full document on exactly this message.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CACHE_ERRORS = (RedisError, OSError)


class PersistedQueryError(Exception):
    """The persisted-query part of a request cannot be honoured; `status` is the HTTP status."""

    def __init__(self, code: ErrorCode, message: str, *, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> PersistedQueryError:
    return PersistedQueryError(ErrorCode.INVALID_INPUT, message, status=400)


def _key(sha256_hash: str) -> str:
    return f"persisted-query:v1:{sha256_hash}"


def _parses(query: str) -> bool:
    try:
        parse(query, no_location=True, max_tokens=settings.GRAPHQL_MAX_TOKENS)
    except GraphQLError:
        return False
    return True


def _may_register(registrant: str | None) -> bool:
    try:
        return throttling.hit(
            "persisted-query",
            registrant or "unknown",
            limit=settings.PERSISTED_QUERY_REGISTRATIONS_PER_HOUR,
            window_seconds=3600,
        )
    except ApplicationError:  # the throttle cannot count: store nothing, run the query anyway
        return False


def _store(sha256_hash: str, query: str, size: int, registrant: str | None) -> None:
    if size > settings.PERSISTED_QUERY_MAX_BYTES or not _parses(query) or not _may_register(registrant):
        return  # still run: the client keeps sending it whole
    try:
        caches["persisted_queries"].set(_key(sha256_hash), query, timeout=settings.PERSISTED_QUERY_TTL_SECONDS)
    except _CACHE_ERRORS as exc:
        logger.warning("Persisted query not stored (%s): the client will send it whole again", exc)


def _stored(sha256_hash: str) -> str | None:
    try:
        return caches["persisted_queries"].get(_key(sha256_hash))
    except _CACHE_ERRORS as exc:
        logger.warning("Persisted queries unreadable (%s): answering PersistedQueryNotFound", exc)
        return None


def document_for(query: str | None, extensions: dict[str, Any] | None, *, registrant: str | None) -> str | None:
    """The document this request runs: its own `query`, or the one its persisted-query hash names.

    A query sent with its hash is checked against it and registered; a hash alone must be known.
    Raises PersistedQueryError for an unknown hash (HTTP 200, so Apollo's link retries with the full
    document instead of switching persisted queries off) and for anything malformed (400)."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return query
    if not isinstance(persisted, dict):
        raise _invalid("extensions.persistedQuery must be an object")
    version = persisted.get("version")
    if type(version) is not int or version != 1:
        raise _invalid("Unsupported persistedQuery version: only version 1 exists")
    sha256_hash = persisted.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not _SHA256_HEX.fullmatch(sha256_hash):
        raise _invalid("extensions.persistedQuery.sha256Hash must be 64 hexadecimal characters")
    sha256_hash = sha256_hash.lower()
    if query is None:
        stored = _stored(sha256_hash)
        if stored is None:
            raise PersistedQueryError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE, status=200)
        return stored
    try:
        encoded = query.encode()
    except UnicodeEncodeError:
        raise _invalid("The query is not valid Unicode (a lone surrogate)") from None
    if hashlib.sha256(encoded).hexdigest() != sha256_hash:
        raise _invalid("extensions.persistedQuery.sha256Hash is not the SHA-256 of the query")
    if _stored(sha256_hash) is None:
        _store(sha256_hash, query, len(encoded), registrant)
    return query
