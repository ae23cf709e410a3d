"""The cyclic garbage collector in a server holding thousands of sockets (issue 14 item 2).

CPython 3.11 runs a full (generation 2) collection once the objects promoted to the old generation
since the last one exceed a quarter of those it holds (`long_lived_pending > long_lived_total / 4`),
and a full collection walks every tracked object: with 10,000 sockets open that stopped the event
loop for 1-2 s. Two things bound it:

- `gc.freeze()` once start-up is done (Django, the schema, the task consumer): those objects live
  as long as the process, and frozen they are never walked again.
- Re-freezing: every `GC_REFREEZE_SECONDS` (1 s), what survived a young collection moves to the
  frozen generation too, so a full collection walks only what was promoted since the last freeze,
  not every socket still open. Frozen objects are still freed by reference counting when they are
  released; only garbage cycles among them wait, and the same task collects those when they
  amount to something: once the frozen generation has grown by a quarter since the last unfreeze,
  it is unfrozen and collected in one pass, but only while few sockets are open (`GC_QUIET_SOCKETS`):
  that pass walks every live object, so it is short only then. A process that never gets quiet
  keeps those cycles (a few objects per closed socket) until it does or restarts.

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
# The frozen generation may grow this much (in objects) before a quiet moment is used to collect it.
UNFREEZE_GROWTH = 1.25
QUIET_CHECK_SECONDS = 30
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


class Refreezer:
    """Moves what survived since the last time into the frozen generation; unfreezes to collect once
    garbage may have piled up there and few sockets are open."""

    def __init__(self) -> None:
        self.baseline = gc.get_freeze_count()

    def refreeze(self) -> None:
        gc.collect(1)  # young garbage goes now, not into the frozen generation
        gc.freeze()

    def collect_if_quiet(self) -> None:
        from project.metrics import gc_frozen, open_socket_count

        if open_socket_count() > settings.GC_QUIET_SOCKETS:
            return
        # Counting walks the frozen objects (one pass over a linked list, the GIL held): only now.
        frozen = gc.get_freeze_count()
        if frozen > self.baseline * UNFREEZE_GROWTH:
            # Frozen objects are still freed by reference counting; what grew is the start-up heap, the
            # few open sockets and cycles that died frozen. Walking that is cheap while few are open.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            frozen = self.baseline = gc.get_freeze_count()
        gc_frozen(frozen)


def _maintain() -> None:
    """The probe's records into the metrics every second; a refreeze every GC_REFREEZE_SECONDS, and
    every QUIET_CHECK_SECONDS a look at whether the frozen generation should be collected."""
    refreeze_every = settings.GC_REFREEZE_SECONDS if settings.GC_FREEZE else 0
    refreezer = Refreezer()
    last_refreeze = last_quiet_check = time.monotonic()
    while True:
        time.sleep(min(1.0, refreeze_every or 1.0))
        record_pauses()
        if not refreeze_every:
            continue
        now = time.monotonic()
        if now - last_refreeze >= refreeze_every:
            last_refreeze = now
            refreezer.refreeze()
        if now - last_quiet_check >= QUIET_CHECK_SECONDS:
            last_quiet_check = now
            refreezer.collect_if_quiet()


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
