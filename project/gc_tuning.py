"""The cyclic garbage collector in a server holding thousands of sockets (issue 14 item 2).

CPython 3.11 runs a full (generation 2) collection once the objects promoted to the old generation
since the last one exceed a quarter of those it holds (`long_lived_pending > long_lived_total / 4`),
and a full collection walks every tracked object: with 10,000 sockets open that stopped the event
loop for 1-2 s. Two things bound it:

- `gc.freeze()` once start-up is done (Django, the schema, the task consumer): those objects live
  as long as the process, and frozen they are never walked again.
- Re-freezing: every `GC_REFREEZE_SECONDS` (60 s), what survived a young collection moves to the
  frozen generation too, so a full collection walks only what was promoted since the last freeze,
  not every socket still open. Frozen objects are still freed by reference counting when they are
  released; only garbage cycles among them wait, and the same task collects those when they
  amount to something: once the frozen generation has grown by half since the last unfreeze,
  it is unfrozen and collected in one pass (the cost of today's full collection, paid rarely and
  on a schedule, not every 25% of growth).

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


def _maintain() -> None:
    """The flush-and-refreeze thread: metrics every second, re-freeze every GC_REFREEZE_SECONDS."""
    refreeze_every = settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else 0
    last_refreeze = time.monotonic()
    while True:
        time.sleep(1)
        record_pauses()
        if refreeze_every and time.monotonic() - last_refreeze >= refreeze_every:
            last_refreeze = time.monotonic()
            gc.collect(1)  # young garbage goes now, not into the frozen generation
            gc.freeze()


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
        threading.Thread(target=_maintain, name="gc-maintenance", daemon=True).start()
        logger.info(
            "GC thresholds %s, %s objects frozen, re-freeze every %ss",
            gc.get_threshold(),
            gc.get_freeze_count(),
            settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else "-",
        )
