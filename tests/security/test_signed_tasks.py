"""Issue 9, item 1 (the queue part): a job pushed into the task queue by someone without the key
(e.g. through Redis commands smuggled in a router password) is dropped and logged, never unpickled."""

from __future__ import annotations

import logging
import os
import pickle
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from huey.consumer import Worker
from huey.utils import load_class


class _CreatesFile:
    """Unpickling this runs `Path.touch(marker)`: what an attacker's payload would do with a shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _configured_huey(**storage):
    """A fresh instance of the queue class and serializer the settings configure (the test process
    runs jobs inline, so the configured instance has no real storage)."""
    options = {"serializer": settings.HUEY["serializer"]} if "serializer" in settings.HUEY else {}
    return load_class(settings.HUEY["huey_class"])(f"test-{uuid.uuid4().hex}", **storage, **options)


def _consume_once(huey) -> None:
    """One turn of a real consumer worker: dequeue, then execute what came out."""
    Worker(huey, threading.Event(), default_delay=0.01, max_delay=0.01, backoff=1).loop()


def _assert_dropped(huey, marker: Path, caplog: pytest.LogCaptureFixture) -> None:
    ran = []

    @huey.task()
    def legit(value: int) -> None:
        ran.append(value)

    with caplog.at_level(logging.INFO):
        _consume_once(huey)  # the forged entry
        legit(7)
        _consume_once(huey)  # a job of ours still runs
    assert not marker.exists(), "the forged queue entry was unpickled"
    assert ran == [7]
    assert len(huey) == 0, "the forged entry must be gone, not retried"
    dropped = [r for r in caplog.records if "without a valid signature" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelno == logging.ERROR and not dropped[0].exc_info
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a dropped entry"


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="the SQLite queue is the embedded configuration")
def test_pickle_pushed_into_the_sqlite_queue_is_dropped_not_run(tmp_path, caplog):
    huey = _configured_huey(filename=str(tmp_path / "queue.sqlite3"))
    marker = tmp_path / "pwned"
    huey.storage.enqueue(pickle.dumps(_CreatesFile(marker)))
    _assert_dropped(huey, marker, caplog)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out queue)")
def test_pickle_pushed_into_the_redis_queue_is_dropped_not_run(tmp_path, caplog):
    import redis

    huey = _configured_huey(url=os.environ["REDIS_URL"])
    marker = tmp_path / "pwned"
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        # What the smuggled `LPUSH huey.redis.cloudpilot <pickle>` did.
        client.lpush(huey.storage.queue_key, pickle.dumps(_CreatesFile(marker)))
        _assert_dropped(huey, marker, caplog)
    finally:
        huey.storage.flush_all()
        client.close()


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="the SQLite queue is the embedded configuration")
def test_entry_signed_with_another_key_is_dropped(tmp_path, caplog):
    """Signed, but not with this deployment's key (e.g. another install sharing the queue)."""
    from project.task_queue import TaskSerializer

    huey = _configured_huey(filename=str(tmp_path / "queue.sqlite3"))
    marker = tmp_path / "pwned"
    foreign = TaskSerializer(secret="someone else's key", salt="cloudpilot")
    huey.storage.enqueue(foreign.serialize(_CreatesFile(marker)))
    _assert_dropped(huey, marker, caplog)
