"""project.gc_tuning (issue 14 item 2): survivors move to the frozen generation, which no collection
walks, and what became garbage there is collected only when that walk is cheap: due, few sockets open,
and none closing."""

from __future__ import annotations

import gc
import weakref

import pytest

from project import gc_tuning, metrics
from project.gc_tuning import FrozenGenerationCollections, refreeze


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


class _Socket:
    """Stands in for a consumer in metrics' open-socket bookkeeping (only its identity counts)."""


@pytest.fixture(autouse=True)
def _thaw():
    yield
    gc.unfreeze()  # the rest of the session collects as usual


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(gc_tuning.time, "monotonic", lambda: now[0])
    return now


def _frozen_cycle() -> weakref.ref:
    node = _Node()
    refreeze()
    return weakref.ref(node)


def _close_sockets(count: int) -> None:
    for _ in range(count):
        socket = _Socket()
        metrics.socket_opened(socket)
        metrics.socket_closed(socket)


def test_survivors_are_frozen_and_no_collection_walks_them():
    before = gc.get_freeze_count()
    kept = [[] for _ in range(1000)]  # noqa: F841 - alive across the refreeze
    dead = _frozen_cycle()
    assert gc.get_freeze_count() >= before + 1000
    gc.collect()
    assert dead() is not None  # frozen: a full collection does not see it


def test_frozen_garbage_waits_until_a_collection_is_due(settings, clock):
    settings.GC_FULL_COLLECTION_SECONDS = 600
    collections = FrozenGenerationCollections()
    dead = _frozen_cycle()
    clock[0] += 599
    assert not collections.collect_if_due()
    assert dead() is not None
    clock[0] += 1
    assert collections.collect_if_due()
    assert dead() is None
    assert gc.get_freeze_count() > 0  # frozen again after the collection
    assert not collections.collect_if_due()  # the next one is due 600 s later


def test_not_while_more_sockets_are_open_than_set(settings, clock):
    """The walk takes in every open socket (~1,000 objects each): it waits for a quieter moment."""
    settings.GC_FULL_COLLECTION_SECONDS = 1
    settings.GC_FULL_COLLECTION_MAX_SOCKETS = 3
    still_open = [_Socket() for _ in range(4)]
    for socket in still_open:
        metrics.socket_opened(socket)
    try:
        collections = FrozenGenerationCollections()
        dead = _frozen_cycle()
        clock[0] += 3600
        assert not collections.collect_if_due()
        assert dead() is not None
        metrics.socket_closed(still_open.pop())
        assert not collections.collect_if_due()  # one just closed: waits for quiet
        clock[0] += gc_tuning.GC_QUIET_SECONDS
        assert collections.collect_if_due()
        assert dead() is None
    finally:
        for socket in still_open:
            metrics.socket_closed(socket)


def test_not_while_sockets_are_still_closing_but_a_minute_at_most(settings, clock):
    """A burst's sockets are counted closed while daphne still holds them: the walk waits for 5 s
    with no new close, or it would take them all in; where some socket always closes, a minute."""
    settings.GC_FULL_COLLECTION_SECONDS = 1
    collections = FrozenGenerationCollections()
    dead = _frozen_cycle()
    clock[0] += 10
    for _ in range(60):
        _close_sockets(1)
        assert not collections.collect_if_due()
        clock[0] += 1
    assert dead() is not None
    _close_sockets(1)
    assert collections.collect_if_due()
    assert dead() is None


def test_five_quiet_seconds_are_enough(settings, clock):
    settings.GC_FULL_COLLECTION_SECONDS = 1
    collections = FrozenGenerationCollections()
    dead = _frozen_cycle()
    clock[0] += 10
    _close_sockets(3)
    assert not collections.collect_if_due()
    clock[0] += gc_tuning.GC_QUIET_SECONDS - 1
    assert not collections.collect_if_due()
    clock[0] += 1
    assert collections.collect_if_due()
    assert dead() is None


def test_with_few_sockets_open_nothing_new_is_frozen(settings):
    """A refreeze freezes the HTTP requests in flight too, and their cycles would wait for the walk:
    with few sockets open there is no need, CPython's own full collections are cheap."""
    settings.GC_FULL_COLLECTION_MAX_SOCKETS = 1
    node = _Node()
    assert not gc_tuning.refreeze_if_busy()
    dead = weakref.ref(node)
    del node
    gc.collect()
    assert dead() is None  # not frozen: an ordinary full collection freed it
    still_open = [_Socket() for _ in range(2)]
    for socket in still_open:
        metrics.socket_opened(socket)
    try:
        node = _Node()
        assert gc_tuning.refreeze_if_busy()
        dead = weakref.ref(node)
        del node
        gc.collect()
        assert dead() is not None  # frozen while more sockets than set were open
    finally:
        for socket in still_open:
            metrics.socket_closed(socket)
