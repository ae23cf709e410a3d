"""The cyclic garbage collector in a server holding thousands of sockets (issue 14 item 2).

CPython 3.11 runs a full (generation 2) collection once the objects promoted to the old generation
since the last one exceed a quarter of those it holds (`long_lived_pending > long_lived_total / 4`),
and a full collection walks every tracked object: with 10,000 sockets open that stopped the event
loop for 1-2 s. Two things bound it:

- `gc.freeze()` once start-up is done (Django, the schema, the task consumer): those objects live
  as long as the process, and frozen they are never walked again.
- Re-freezing: every `GC_REFREEZE_SECONDS` (1 s), what survived a young collection moves to the
  frozen generation too, so a full collection walks only what was promoted since, not every socket
  still open. Frozen objects are still freed by reference counting, and so is all of a closed
  socket now: consumer, subscription and execution (tests/project/test_closed_socket_garbage.py) and
  daphne's protocol with its transport (project.daphne_closed_protocol); what is left as cycles is
  about one object per closed socket (measured), against about 1,000 per open one. Frozen, that
  waits: once at least `GC_COLLECT_AFTER_CLOSED` (500) sockets, and `GC_COLLECT_CLOSED_PER_OPEN`
  (16) times as many as are still open, have closed since the last time, and none closed in the
  last second, the frozen generation is unfrozen and collected in one pass. That pass walks the
  start-up heap and whatever is still alive (~0.75 us per object, ~0.12 s with nothing open), so it
  waits for a burst of closes to end: daphne still holds sockets already counted closed (but a
  minute at most, `GC_COLLECT_LONGEST_WAIT_SECONDS`: on a busy server some socket always closes).

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


def _probe(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pending.append((info["generation"], time.perf_counter() - _started[0], info["collected"]))


def record_pauses() -> None:
    """Move timed collections into the metrics (from the flush thread and at each scrape)."""
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


# How long a due pass waits for sockets to stop closing, at most.
GC_COLLECT_LONGEST_WAIT_SECONDS = 60


class Refreezer:
    """Moves what survived since the last time into the frozen generation; unfreezes to collect once
    enough sockets have closed since the last time (daphne's part of them is cycles, frozen with them)."""

    def __init__(self) -> None:
        from project.metrics import sockets_closed

        self.closed_at_last_collection = sockets_closed()
        self.closed_at_last_check = self.closed_at_last_collection
        self.due_since: float | None = None  # when enough had closed, if the pass is waiting

    def refreeze(self) -> None:
        gc.collect(1)  # young garbage goes now, not into the frozen generation
        gc.freeze()

    def collect_if_due(self) -> None:
        from project.metrics import gc_frozen, open_socket_count, sockets_closed

        closed_so_far = sockets_closed()
        # Not while sockets are still closing: a burst's sockets are counted closed before daphne has
        # let go of them, and the pass would walk them all (0.7-1.2 s after closing 10,000 at once).
        still_closing = closed_so_far != self.closed_at_last_check
        self.closed_at_last_check = closed_so_far
        closed = closed_so_far - self.closed_at_last_collection
        if closed < max(settings.GC_COLLECT_AFTER_CLOSED, settings.GC_COLLECT_CLOSED_PER_OPEN * open_socket_count()):
            self.due_since = None
            return
        now = time.monotonic()
        self.due_since = self.due_since or now
        # ...but a server where some socket closes every second would never stop closing: wait no longer than this.
        if still_closing and now - self.due_since < GC_COLLECT_LONGEST_WAIT_SECONDS:
            return
        self.due_since = None
        # The closed sockets' cycles now outweigh what is still open: one full pass costs at most
        # about twice the garbage it frees.
        self.closed_at_last_collection += closed
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        gc_frozen(gc.get_freeze_count())


def _maintain() -> None:
    """The probe's records into the metrics every second; a refreeze every GC_REFREEZE_SECONDS."""
    refreeze_every = settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else 0
    refreezer = Refreezer()
    last_refreeze = time.monotonic()
    while True:
        time.sleep(min(1.0, refreeze_every or 1.0))
        record_pauses()
        if not refreeze_every:
            continue
        now = time.monotonic()
        if now - last_refreeze >= refreeze_every:
            last_refreeze = now
            refreezer.refreeze()
            refreezer.collect_if_due()


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
