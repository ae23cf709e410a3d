"""Sliding-window limits in the cache (per process by default, shared through Redis when scaled out).

Attempts are counted in tenths of the window (the cache's atomic `incr`), and an attempt is allowed
while the last ten tenths hold no more than `limit`. So a burst straddling a window boundary is
still counted together (a fixed window allowed twice the limit there), at most the oldest tenth
slips out early, and the cost is three cache calls whatever the limit.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

BUCKETS = 10


def hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one attempt; False when the last `window_seconds` already hold `limit` attempts."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no phone numbers or IPs in cache keys
    prefix = f"throttle:{scope}:{digest}:{window_seconds}"
    now = int(time.time() * BUCKETS // window_seconds)
    current = f"{prefix}:{now}"
    cache.add(current, 0, timeout=window_seconds + 1)
    try:
        count = cache.incr(current)
    except ValueError:  # expired between add and incr
        cache.set(current, 1, timeout=window_seconds + 1)
        count = 1
    earlier = cache.get_many([f"{prefix}:{bucket}" for bucket in range(now - BUCKETS + 1, now)])
    return count + sum(earlier.values()) <= limit
