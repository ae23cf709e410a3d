"""The cyclic garbage collector in a server holding thousands of sockets (issue 14 item 2).

CPython 3.11 runs a full (generation 2) collection once the objects promoted to the old generation
since the last one exceed a quarter of those it holds (`long_lived_pending > long_lived_total / 4`),
and a full collection walks every tracked object: with 10,000 sockets open that stopped the event
loop for 1-2 s. CPython 3.11 has no incremental collector; what bounds the pause is what a
collection walks:

- `gc.freeze()` once start-up is done (Django, the schema, the task consumer): those objects live
  as long as the process, and frozen they are never walked again.
- Re-freezing: every `GC_REFREEZE_SECONDS` (1 s) while more than `GC_FULL_COLLECTION_MAX_SOCKETS`
  (100) sockets are open, what survived a young collection moves to the frozen generation too, so a
  full collection walks only what was promoted since, not every socket still open. It also freezes
  the HTTP requests in flight, whose cycles then wait for the walk below; with fewer sockets open
  nothing is refrozen and CPython's own full collections, cheap then, free them.
- A young collection every 0.1 s as well (`YOUNG_COLLECTION_SECONDS`): CPython's own trigger is
  blind while many old objects are being freed.

Frozen objects are still freed by reference counting, and so is all of a closed socket: consumer,
subscription and execution (tests/project/test_closed_socket_garbage.py) and daphne's protocol with
its transport (project.daphne_closed_protocol). What became garbage in a cycle once frozen (what the
requests in flight at a refreeze left) is collected by unfreezing and walking the frozen generation
whole: the start-up heap (~150-180k objects, ~0.1 s) and every open socket (~1,000 objects each).
So that walk runs at
most every `GC_FULL_COLLECTION_SECONDS` (600), only while at most `GC_FULL_COLLECTION_MAX_SOCKETS`
(100) sockets are open, and after 5 s in which none closed (a burst's sockets are counted closed
before daphne lets go of them, and the walk would take them all in; a minute at most waiting for
that, where some socket always closes).

`gc.callbacks` times every collection for `/metrics` (project.metrics.GC_PAUSE_SECONDS). The
callback only appends to a deque: it runs wherever an allocation triggered the collection,
possibly inside prometheus_client's own lock, so it must not take one.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque

from django.conf import settings

logger = logging.getLogger(__name__)

# (generation, seconds, objects collected) of collections not yet recorded in the metrics.
_pending: deque[tuple[int, float, int]] = deque(maxlen=10_000)
_started: list[float] = [0.0]
_installed = threading.Lock()
_done = False

# A due collection of the frozen generation waits for this long without a socket closing...
GC_QUIET_SECONDS = 5
# ...but where some socket always closes, no longer than this.
GC_QUIET_LONGEST_WAIT_SECONDS = 60
# CPython collects the young generations once allocations outnumber deallocations by 700, and freeing
# old objects counts as deallocation: while 10,000 closed sockets were being freed the young generation
# grew unchecked, and its collection took 165-232 ms. So it is also collected on a clock.
YOUNG_COLLECTION_SECONDS = 0.1


def _probe(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pending.append((info["generation"], time.perf_counter() - _started[0], info["collected"]))


def record_pauses() -> None:
    """Move timed collections into the metrics (from the maintenance thread and at each scrape)."""
    from project.metrics import gc_collection

    while _pending:
        try:
            generation, seconds, collected = _pending.popleft()
        except IndexError:
            return
        gc_collection(generation, seconds, collected)


def install_probe() -> None:
    if _probe not in gc.callbacks:
        gc.callbacks.append(_probe)


def refreeze() -> None:
    """What survived since the last time moves to the frozen generation."""
    gc.collect(1)  # young garbage goes now, not into the frozen generation
    gc.freeze()


def few_sockets_open() -> bool:
    """At most GC_FULL_COLLECTION_MAX_SOCKETS open: a walk of everything unfrozen or frozen is cheap now."""
    from project.metrics import open_socket_count

    return open_socket_count() <= settings.GC_FULL_COLLECTION_MAX_SOCKETS


def refreeze_if_busy() -> bool:
    """Refreeze only while more than GC_FULL_COLLECTION_MAX_SOCKETS sockets are open. A refreeze also
    freezes the HTTP requests in flight, and their cycles then wait for the frozen generation's walk:
    under steady traffic that was ~6 KB a request, and a 3.6 s walk 10 minutes later. With few sockets
    open CPython's own full collections are cheap, and they free what requests leave."""
    if few_sockets_open():
        gc.collect(1)
        return False
    refreeze()
    return True


class FrozenGenerationCollections:
    """Decides when the frozen generation is walked whole: due, few sockets open, and quiet."""

    def __init__(self) -> None:
        from project.metrics import sockets_closed

        self.last_collection = time.monotonic()
        self.closed_at_last_check = sockets_closed()
        self.last_close_seen = self.last_collection
        self.due_since: float | None = None  # when it was due and cheap, if it is waiting for quiet

    def collect_if_due(self) -> bool:
        from project.metrics import gc_frozen, sockets_closed

        now = time.monotonic()
        closed_so_far = sockets_closed()
        if closed_so_far != self.closed_at_last_check:
            self.closed_at_last_check, self.last_close_seen = closed_so_far, now
        due = now - self.last_collection >= settings.GC_FULL_COLLECTION_SECONDS
        if not due or not few_sockets_open():
            self.due_since = None
            return False
        self.due_since = self.due_since or now
        quiet = now - self.last_close_seen >= GC_QUIET_SECONDS
        if not quiet and now - self.due_since < GC_QUIET_LONGEST_WAIT_SECONDS:
            return False
        self.due_since = None
        self.last_collection = now
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        gc_frozen(gc.get_freeze_count())
        return True


def _maintain() -> None:
    """A young collection every YOUNG_COLLECTION_SECONDS and a refreeze every GC_REFREEZE_SECONDS
    (GC_FREEZE), the probe's records into the metrics every second."""
    refreeze_every = settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else 0
    frozen_collections = FrozenGenerationCollections()
    last_refreeze = last_record = time.monotonic()
    while True:
        time.sleep(YOUNG_COLLECTION_SECONDS if refreeze_every else 1.0)
        now = time.monotonic()
        if now - last_record >= 1.0 or not refreeze_every:
            last_record = now
            record_pauses()
        if not refreeze_every:
            continue
        if now - last_refreeze < refreeze_every:
            gc.collect(1)
            continue
        last_refreeze = now
        refreeze_if_busy()
        frozen_collections.collect_if_due()


def configure() -> None:
    """Once per process, after start-up: thresholds, the probe, and the start-up heap frozen."""
    global _done
    with _installed:
        if _done:
            return
        _done = True
        if settings.GC_THRESHOLDS:
            gc.set_threshold(*settings.GC_THRESHOLDS)
        if settings.GC_FREEZE:
            gc.collect()  # garbage left by the imports is not worth keeping forever
            gc.freeze()
        install_probe()
        from project.metrics import gc_frozen

        gc_frozen(gc.get_freeze_count())
        threading.Thread(target=_maintain, name="gc-maintenance", daemon=True).start()
        logger.info(
            "GC thresholds %s, %s objects frozen, re-freeze every %ss",
            gc.get_threshold(),
            gc.get_freeze_count(),
            settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else "-",
        )
