"""The sliding-window limits behind RATE_LIMITED (in-process cache, or Redis when REDIS_URL is set)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from project import throttling


def hit(key: str = "0712345678", *, limit: int = 3, window: int = 2) -> bool:
    return throttling.hit("test", key, limit=limit, window_seconds=window)


def test_the_limit_holds_until_the_window_has_passed():
    assert [hit(window=1) for _ in range(4)] == [True, True, True, False]
    time.sleep(1.2)
    assert hit(window=1)


def test_no_burst_of_twice_the_limit_across_a_window_boundary():
    # A fixed window counted 3 just before its boundary and 3 more just after it.
    while not 0.5 <= time.time() % 2 < 1.5:
        time.sleep(0.05)
    assert [hit() for _ in range(3)] == [True, True, True]
    time.sleep(2 - time.time() % 2 + 0.1)  # just past the next multiple of the window
    assert not hit()


def test_keys_are_counted_apart():
    assert [hit("0711000001", limit=1), hit("0711000002", limit=1), hit("0711000001", limit=1)] == [True, True, False]


def test_concurrent_attempts_are_each_counted():
    # One bucket (a huge window): attempts straddling a bucket edge may read the older one mid-count.
    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(lambda _: hit(limit=10, window=10**6), range(60)))
    assert allowed.count(True) == 10


def test_a_huge_limit_costs_what_a_small_one_does(monkeypatch):
    """Operators raise the per-IP limit when all their customers share one NAT address."""
    from django.core.cache import cache

    asked = []
    get_many = cache.get_many
    monkeypatch.setattr(cache, "get_many", lambda keys: asked.append(len(keys)) or get_many(keys))
    assert hit(limit=10**6, window=600)
    assert asked == [throttling.BUCKETS - 1]
