"""A virtual clock: simulated readers charge their latency here so tests never sleep.

``VirtualClock.now_ms`` only moves when something calls :meth:`VirtualClock.advance`; a reader
created with ``realtime=True`` additionally sleeps for real (demos only).
"""

from __future__ import annotations

import logging
import threading

from daemon.errors import InvalidArgument

__all__ = ["VirtualClock"]

logger = logging.getLogger(__name__)


class VirtualClock:
    """Milliseconds of simulated time; thread-safe, shareable between readers."""

    def __init__(self, start_ms: float = 0.0) -> None:
        if start_ms < 0:
            raise InvalidArgument("start_ms", f"must be >= 0, got {start_ms}")
        self._now = float(start_ms)
        self._lock = threading.Lock()

    @property
    def now_ms(self) -> float:
        with self._lock:
            return self._now

    def advance(self, ms: float) -> float:
        """Move time forward by ``ms`` (>= 0) and return the new time."""
        if ms < 0:
            raise InvalidArgument("ms", f"time cannot go backwards ({ms} ms)")
        with self._lock:
            self._now += ms
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self.now_ms})"
