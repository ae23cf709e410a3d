"""Delivering IntaSend's webhook: a JSON POST of the flat invoice body, recorded with its answer.

Used by the simulator served by the app (from a background thread, so a server posting to its own
``/payments/webhook/`` never waits on itself) and by the tests' loopback server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

__all__ = ["WebhookDelivery", "WebhookSender"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookDelivery:
    invoice_id: str
    url: str
    body: dict[str, Any]
    status_code: int | None
    response_text: str | None
    error: str | None
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """POSTs webhook bodies and remembers every attempt (``deliveries``), thread-safe."""

    def __init__(self, *, max_deliveries: int | None = None) -> None:
        self._lock = threading.Lock()
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=max_deliveries)
        self._threads: list[threading.Thread] = []

    def post(
        self, url: str, body: dict[str, Any], *, timeout: float = 10, raise_errors: bool = True
    ) -> tuple[int, str]:
        """POST now; ``(status_code, response_text)``, or ``(0, "")`` on a network error when
        ``raise_errors`` is false. Every attempt is recorded."""
        try:
            resp = requests.post(url, json=body, timeout=timeout)
        except requests.RequestException as exc:
            self._record(WebhookDelivery(body["invoice_id"], url, body, None, None, repr(exc)))
            logger.warning("IntaSend simulator: webhook to %s failed: %r", url, exc)
            if raise_errors:
                raise
            return 0, ""
        self._record(WebhookDelivery(body["invoice_id"], url, body, resp.status_code, resp.text, None))
        return resp.status_code, resp.text

    def post_in_background(
        self, url: str, body: dict[str, Any], *, retries: int = 0, retry_delay: float = 1.0, timeout: float = 10
    ) -> threading.Thread:
        """POST from a daemon thread; network errors and 5xx answers are retried ``retries`` times
        with a doubling delay (IntaSend retries failed deliveries too)."""

        def deliver() -> None:
            delay = retry_delay
            for attempt in range(retries + 1):
                status, _ = self.post(url, body, timeout=timeout, raise_errors=False)
                if 0 < status < 500 or attempt == retries:
                    return
                time.sleep(delay)
                delay *= 2

        thread = threading.Thread(target=deliver, name=f"intasend-webhook-{body.get('invoice_id')}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def wait(self, timeout: float = 5.0) -> None:
        """Join background deliveries started so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def _record(self, delivery: WebhookDelivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)
