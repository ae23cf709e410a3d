"""project.gc_tuning's refreezer (issue 14 item 2): survivors move to the frozen generation, which no
collection walks, and the cycles closed sockets leave there are collected once enough have closed."""

from __future__ import annotations

import gc
import weakref

import pytest

from project import metrics
from project.gc_tuning import Refreezer


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


class _Socket:
    """Stands in for a consumer in metrics' open-socket bookkeeping (only its identity counts)."""


@pytest.fixture(autouse=True)
def _thaw():
    yield
    gc.unfreeze()  # the rest of the session collects as usual


def _frozen_cycle() -> weakref.ref:
    node = _Node()
    Refreezer().refreeze()
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


def test_frozen_cycles_are_collected_once_enough_sockets_closed(settings):
    settings.GC_COLLECT_AFTER_CLOSED = 3
    refreezer = Refreezer()
    dead = _frozen_cycle()
    _close_sockets(2)
    refreezer.collect_if_due()
    assert dead() is not None  # 2 of 3
    _close_sockets(1)
    refreezer.collect_if_due()
    assert dead() is not None  # 3 of 3, but one closed since the last check: still closing
    refreezer.collect_if_due()
    assert dead() is None
    assert gc.get_freeze_count() > 0  # frozen again after the collection


def test_not_while_sockets_are_still_closing(settings):
    """A burst's sockets are counted closed while daphne still holds them: the pass waits for a
    check with no new close, or it would walk them all."""
    settings.GC_COLLECT_AFTER_CLOSED = 1
    refreezer = Refreezer()
    dead = _frozen_cycle()
    for _ in range(3):
        _close_sockets(5)
        refreezer.collect_if_due()
        assert dead() is not None
    refreezer.collect_if_due()
    assert dead() is None


def test_a_due_pass_waits_for_closing_to_stop_a_minute_at_most(settings, monkeypatch):
    """Where some socket closes every second, the frozen cycles must not wait forever."""
    import project.gc_tuning as gc_tuning

    settings.GC_COLLECT_AFTER_CLOSED = 1
    clock = [1000.0]
    monkeypatch.setattr(gc_tuning.time, "monotonic", lambda: clock[0])
    refreezer = Refreezer()
    dead = _frozen_cycle()
    for _ in range(59):
        _close_sockets(1)
        refreezer.collect_if_due()
        clock[0] += 1
    assert dead() is not None
    _close_sockets(1)
    clock[0] += 1
    refreezer.collect_if_due()
    assert dead() is None


def test_not_before_closed_sockets_outnumber_open_ones_as_set(settings):
    """The pass walks every open socket (~1,000 objects each): it waits until enough have closed
    per open one (here 2)."""
    settings.GC_COLLECT_AFTER_CLOSED = 1
    settings.GC_COLLECT_CLOSED_PER_OPEN = 2
    still_open = [_Socket() for _ in range(5)]
    for socket in still_open:
        metrics.socket_opened(socket)
    try:
        refreezer = Refreezer()
        dead = _frozen_cycle()
        _close_sockets(9)
        refreezer.collect_if_due()
        refreezer.collect_if_due()
        assert dead() is not None  # 9 dead sockets, 5 live ones: as many closed as open is not enough
        _close_sockets(1)
        refreezer.collect_if_due()
        refreezer.collect_if_due()
        assert dead() is None
    finally:
        for socket in still_open:
            metrics.socket_closed(socket)
