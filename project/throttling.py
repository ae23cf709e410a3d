"""Sliding-window limits in the cache (per process by default, shared through Redis when scaled out).

Attempts are counted in tenths of the window (the cache's atomic `incr`), and an attempt is allowed
while the last ten tenths hold no more than `limit`. So a burst straddling a window boundary is
still counted together (a fixed window allowed twice the limit there), at most the oldest tenth
slips out early, and the cost is three cache calls whatever the limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from redis.exceptions import RedisError

from project.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

BUCKETS = 10
UNAVAILABLE_MESSAGE = "The service is briefly unavailable. Please try again in a moment."


@contextmanager
def _cache_or_unavailable() -> Iterator[None]:
    """A throttle that cannot count must not let the attempt through, nor answer with a 500."""
    try:
        yield
    except (RedisError, OSError) as exc:
        logger.warning("Throttle cache unavailable (%s: %s)", type(exc).__name__, exc)
        raise ApplicationError(ErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE) from None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]  # no phone numbers or IPs in cache keys


def _count(current: str, timeout: int) -> int:
    cache.add(current, 0, timeout=timeout)
    try:
        return cache.incr(current)
    except ValueError:  # expired between add and incr
        cache.set(current, 1, timeout=timeout)
        return 1


def hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one attempt; False when the last `window_seconds` already hold `limit` attempts.

    Raises SERVICE_UNAVAILABLE when the cache (Redis) cannot be reached."""
    prefix = f"throttle:{scope}:{_digest(key)}:{window_seconds}"
    now = int(time.time() * BUCKETS // window_seconds)
    with _cache_or_unavailable():
        count = _count(f"{prefix}:{now}", window_seconds + 1)
        earlier = cache.get_many([f"{prefix}:{bucket}" for bucket in range(now - BUCKETS + 1, now)])
    return count + sum(earlier.values()) <= limit


def within(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Whether one more attempt fits `limit` (counted with `record`), without counting it.

    For budgets where only some outcomes count (failed sign-ins): check first, record afterwards."""
    prefix = f"throttle:{scope}:{_digest(key)}:{window_seconds}"
    now = int(time.time() * BUCKETS // window_seconds)
    with _cache_or_unavailable():
        counted = cache.get_many([f"{prefix}:{bucket}" for bucket in range(now - BUCKETS + 1, now + 1)])
    return sum(counted.values()) < limit


def record(scope: str, key: str, *, window_seconds: int) -> None:
    """Count one attempt against the budget `within` checks."""
    prefix = f"throttle:{scope}:{_digest(key)}:{window_seconds}"
    with _cache_or_unavailable():
        _count(f"{prefix}:{int(time.time() * BUCKETS // window_seconds)}", window_seconds + 1)


# --- Growing delay after failures ------------------------------------------------------------------
# `free` failures of one key cost nothing; after that each attempt must wait 2^k seconds (capped)
# since the last failure, k counting the failures past `free`. The wait is a cache entry that
# expires when it is over; an attempt claims it with the cache's atomic `add`, so parallel attempts
# cannot slip through one opening together, and an attempt made too early starts the wait again, so
# hammering never lands on the moment it ends.


def _delay(failures: int, free: int, cap_seconds: int) -> int:
    return min(2 ** min(failures - free, 30), cap_seconds)


def backoff_allows(scope: str, key: str, *, free: int, cap_seconds: int) -> bool:
    """False while `key` must still wait after its last failure; otherwise claim this attempt."""
    prefix = f"backoff:{scope}:{_digest(key)}"
    with _cache_or_unavailable():
        failures = cache.get(f"{prefix}:failures", 0)
        if failures < free:
            return True
        delay = _delay(failures, free, cap_seconds)
        if cache.add(f"{prefix}:wait", 1, timeout=delay):
            return True
        cache.touch(f"{prefix}:wait", delay)
        return False


def backoff_failed(scope: str, key: str, *, free: int, cap_seconds: int, memory_seconds: int) -> None:
    """One more failure of `key`; failures are forgotten `memory_seconds` after the last one."""
    prefix = f"backoff:{scope}:{_digest(key)}"
    with _cache_or_unavailable():
        failures = _count(f"{prefix}:failures", memory_seconds)
        cache.touch(f"{prefix}:failures", memory_seconds)
        if failures >= free:
            cache.set(f"{prefix}:wait", 1, timeout=_delay(failures, free, cap_seconds))


def backoff_clear(scope: str, key: str) -> None:
    """A success: the key starts again with its free failures."""
    prefix = f"backoff:{scope}:{_digest(key)}"
    with _cache_or_unavailable():
        cache.delete_many([f"{prefix}:failures", f"{prefix}:wait"])


# --- Turns: a bounded rate, shared by every process ------------------------------------------------
# One turn every 1/per_second seconds; an attempt claims the first free one (the cache's atomic `add`)
# at most `max_wait_seconds` ahead and waits until then. However many attempts run in parallel, no
# more than `per_second` a second get through, and none waits longer than the horizon.


def reserve_turn(scope: str, key: str, *, per_second: float, max_wait_seconds: float) -> float | None:
    """Seconds until the turn just claimed for `key`; None when every turn within the horizon is taken."""
    prefix = f"turn:{scope}:{_digest(key)}"
    now = time.time()
    first = math.ceil(now * per_second)
    with _cache_or_unavailable():
        for tick in range(first, first + int(max_wait_seconds * per_second) + 1):
            if cache.add(f"{prefix}:{tick}", 1, timeout=int(max_wait_seconds) + 2):
                return max(tick / per_second - now, 0.0)
    return None


# --- Marks: a fact remembered for a while ------------------------------------------------------------


def mark(scope: str, key: str, *, seconds: int) -> None:
    """Remember `key` in `scope` for `seconds` (again: for `seconds` from now)."""
    with _cache_or_unavailable():
        cache.set(f"mark:{scope}:{_digest(key)}", 1, timeout=seconds)


def marked(scope: str, key: str) -> bool:
    with _cache_or_unavailable():
        return cache.get(f"mark:{scope}:{_digest(key)}") is not None
