"""project.gc_tuning's refreezer (issue 14 item 2): survivors move to the frozen generation, which no
collection walks, and cycles that died there are collected once few sockets are open."""

from __future__ import annotations

import gc
import weakref

import pytest

from project.gc_tuning import Refreezer


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


@pytest.fixture(autouse=True)
def _thaw():
    yield
    gc.unfreeze()  # the rest of the session collects as usual


def _frozen_cycle() -> weakref.ref:
    node = _Node()
    Refreezer().refreeze()
    return weakref.ref(node)


def test_survivors_are_frozen_and_no_collection_walks_them():
    before = gc.get_freeze_count()
    kept = [[] for _ in range(1000)]  # noqa: F841 - alive across the refreeze
    dead = _frozen_cycle()
    assert gc.get_freeze_count() >= before + 1000
    gc.collect()
    assert dead() is not None  # frozen: a full collection does not see it


def test_cycles_that_died_frozen_are_collected_when_few_sockets_are_open(settings):
    settings.GC_QUIET_SOCKETS = 500
    dead = _frozen_cycle()
    refreezer = Refreezer()
    refreezer.baseline = gc.get_freeze_count() // 2  # the frozen generation grew
    refreezer.collect_if_quiet()
    assert dead() is None
    assert gc.get_freeze_count() > 0  # frozen again after the collection


def test_not_while_many_sockets_are_open(settings):
    settings.GC_QUIET_SOCKETS = -1  # more sockets open than that
    dead = _frozen_cycle()
    refreezer = Refreezer()
    refreezer.baseline = gc.get_freeze_count() // 2
    refreezer.collect_if_quiet()
    assert dead() is not None
