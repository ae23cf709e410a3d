"""Huey backends whose queue entries are signed: a job written by anyone without the key is dropped.

Huey pickles jobs, and unpickling runs code. Whoever can write to the queue (a Redis reachable by
someone else, a smuggled command) must not get their bytes unpickled: every entry carries an HMAC
of a key derived from SECRET_KEY (`task_signing_key`), checked before `pickle.loads`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from huey import RedisHuey, SqliteHuey
from huey.serializer import SignedSerializer

logger = logging.getLogger(__name__)


def task_signing_key(secret_key: str) -> str:
    """The queue's key: SECRET_KEY through HMAC under a fixed label, so it is no other key's twin."""
    return hmac.new(secret_key.encode(), b"cloudpilot huey task signing", hashlib.sha256).hexdigest()


class BadSignature(ValueError):
    """A queue entry whose signature does not match: not written by this deployment."""


class TaskSerializer(SignedSerializer):
    def _unsign(self, signed: bytes) -> bytes:
        try:
            return super()._unsign(signed)
        except ValueError:
            raise BadSignature("queue entry without a valid signature") from None


class _DropsUnsigned:
    """Huey's consumer logs a traceback for any dequeue error; a forged entry is one ERROR line."""

    def deserialize_task(self, data: bytes):
        try:
            return super().deserialize_task(data)  # type: ignore[misc]
        except BadSignature:
            logger.error(
                "Dropped a task queue entry of %d bytes without a valid signature: someone without "
                "the key wrote to the queue (check who can reach it)",
                len(data),
            )
            return None

    def _deserialize_all(self, messages):
        # The schedule and the pending list go through here: leave the dropped entries out.
        return [task for task in super()._deserialize_all(messages) if task is not None]  # type: ignore[misc]


class SignedSqliteHuey(_DropsUnsigned, SqliteHuey):
    pass


class SignedRedisHuey(_DropsUnsigned, RedisHuey):
    pass
