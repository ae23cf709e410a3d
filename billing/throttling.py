"""Sliding-window limits in the cache (per process by default, shared through Redis when scaled out).

Each key has `limit` slots; an attempt is allowed when it can claim a free slot, and a claimed slot
frees itself `window_seconds` later. So no stretch of `window_seconds` ever holds more than `limit`
allowed attempts (a fixed window allowed twice that across its boundary), and because claiming is
the cache's atomic `add`, concurrent attempts on several processes cannot share a slot.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache


def hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one attempt; False when `limit` attempts were already allowed in the last `window_seconds`."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no phone numbers or IPs in cache keys
    slots = [f"throttle:{scope}:{digest}:{slot}" for slot in range(limit)]
    taken = cache.get_many(slots)
    return any(cache.add(slot, 1, timeout=window_seconds) for slot in slots if slot not in taken)
