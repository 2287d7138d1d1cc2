"""The scan stream: every scan, classified and numbered, to every subscriber, in order.

Scanner threads call :meth:`ScanStream.on_scan`; it never blocks on a subscriber. Each subscriber
has a bounded queue: when it is full the new event is dropped for that subscriber only and
counted (its ``dropped`` counter, and a gap in the sequence numbers it sees), so a slow POS can
never stall a scanner or another subscriber. Two UnifiedPOS-style options shape delivery:
``one_shot`` (AutoDisable: one scan, then the scanner is ignored until :meth:`arm`) and a
duplicate-suppression window (the same code from the same scanner again within the window -
measured from the last time it was *read*, so a phone held under the scanner stays one scan).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import ConfigError, InvalidArgument, ScannerError
from daemon.scanners.base import RawScan, ScannerState
from daemon.scanners.classify import Classifier, decode_scan
from daemon.scanners.events import Role, ScanEvent, StatusEvent, StreamEvent

__all__ = ["ScanStream", "StreamStats", "Subscription"]

logger = logging.getLogger(__name__)

_DUP_PRUNE_AT = 4096


@dataclass(slots=True)
class StreamStats:
    published: int = 0
    duplicates_suppressed: int = 0
    ignored_while_disarmed: int = 0


class Subscription:
    """One subscriber's bounded, ordered queue. Context manager; idempotent close."""

    def __init__(
        self,
        stream: ScanStream,
        role: Role,
        maxsize: int,
        notify: Callable[[], None] | None,
    ) -> None:
        self.role = role
        self.maxsize = maxsize
        self.dropped = 0
        self.replay_gap = 0
        self._stream = stream
        self._notify = notify
        self._queue: deque[StreamEvent] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def _offer(self, event: StreamEvent) -> None:
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= self.maxsize:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    logger.warning(
                        "%s subscriber too slow: %d events dropped", self.role, self.dropped
                    )
                return
            self._queue.append(event)
            self._cond.notify()
        self._wake()

    def _wake(self) -> None:
        if self._notify is None:
            return
        try:
            self._notify()
        except Exception:  # one consumer's bug must not cost the others their event
            logger.exception("%s subscriber notify callback failed", self.role)

    def get(self, timeout: float | None = None) -> StreamEvent | None:
        """Next event, or None after ``timeout`` seconds; raises once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._closed, timeout):
                return None
            if self._queue:
                return self._queue.popleft()
            raise ScannerError("scan subscription is closed")

    def get_nowait(self) -> StreamEvent | None:
        with self._cond:
            return self._queue.popleft() if self._queue else None

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stream._unsubscribe(self)
        self._wake()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScanStream:
    """Classifies, numbers and fans out scans; the :class:`ScanSink` of every scanner."""

    def __init__(
        self,
        classifier: Classifier | None = None,
        *,
        duplicate_window_s: float = 0.0,
        default_queue: int = 1024,
        history: int = 256,
    ) -> None:
        if duplicate_window_s < 0:
            raise ConfigError("scanners.duplicate_window_s", "must be >= 0")
        if history < 0:
            raise ConfigError("scanners.replay_history", f"must be >= 0, got {history}")
        if default_queue < 1:
            raise ConfigError("scanners.subscriber_queue", "must be >= 1")
        self.classifier = classifier if classifier is not None else Classifier()
        self.duplicate_window_ns = int(duplicate_window_s * 1e9)
        self.default_queue = default_queue
        self.stats = StreamStats()
        self._lock = threading.Lock()
        self._seq = 0
        self._subs: list[Subscription] = []
        self._one_shot: set[str] = set()
        self._disarmed: set[str] = set()
        self._last_read: dict[tuple[str, str], int] = {}
        self._states: dict[str, ScannerState] = {}
        # Recent events (unmasked, memory only) for subscribers resuming after a reconnect.
        self._history: deque[StreamEvent] = deque(maxlen=history)

    # --- configuration ------------------------------------------------------------------------

    def set_one_shot(self, scanner_id: str, enabled: bool = True) -> None:
        """AutoDisable: after one delivered scan, ignore ``scanner_id`` until :meth:`arm`."""
        with self._lock:
            if enabled:
                self._one_shot.add(scanner_id)
            else:
                self._one_shot.discard(scanner_id)
                self._disarmed.discard(scanner_id)

    def arm(self, scanner_id: str) -> None:
        """Let a one-shot scanner deliver its next scan."""
        with self._lock:
            self._disarmed.discard(scanner_id)

    def is_armed(self, scanner_id: str) -> bool:
        with self._lock:
            return scanner_id not in self._disarmed

    # --- subscribers --------------------------------------------------------------------------

    def subscribe(
        self,
        role: Role = Role.POS,
        *,
        maxsize: int | None = None,
        notify: Callable[[], None] | None = None,
        after_sequence: int | None = None,
    ) -> Subscription:
        """A new subscriber; it sees events published from now on, masked for ``role``.

        With ``after_sequence`` (the last sequence number a reconnecting client saw) it first
        gets the retained events after that one, with no gap and no duplicate between replay
        and live events. Events already gone from the history are counted in ``replay_gap``.

        ``notify`` (optional) is called from the publishing thread after each queued event,
        e.g. ``lambda: loop.call_soon_threadsafe(flag.set)`` for an asyncio consumer. It runs
        while the stream is locked: it must return at once and must not call the stream.
        """
        size = self.default_queue if maxsize is None else maxsize
        if size < 1:
            raise ConfigError("scanners.subscriber_queue", f"must be >= 1, got {size}")
        sub = Subscription(self, Role(role), size, notify)
        with self._lock:
            if after_sequence is not None:
                self._replay(sub, after_sequence)
            self._subs.append(sub)
        return sub

    def _replay(self, sub: Subscription, after: int) -> None:
        if not 0 <= after <= self._seq:
            raise InvalidArgument(
                "after_sequence", f"{after} is not in 0..{self._seq} (the stream restarted?)"
            )
        oldest = self._history[0].sequence if self._history else self._seq + 1
        sub.replay_gap = max(0, oldest - after - 1)
        if sub.replay_gap:
            logger.warning("%s subscriber resumed %d events too late", sub.role, sub.replay_gap)
        for event in self._history:
            if event.sequence > after:
                sub._offer(event.for_role(sub.role))

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def snapshot(self) -> tuple[int, dict[str, ScannerState]]:
        """Last sequence number issued and each scanner's state (an event stream's first frame)."""
        with self._lock:
            return self._seq, dict(self._states)

    def close(self) -> None:
        """Close every subscription (idempotent)."""
        with self._lock:
            subs, self._subs = list(self._subs), []
        for sub in subs:
            sub.close()

    def __enter__(self) -> ScanStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- ScanSink -----------------------------------------------------------------------------

    def on_scan(self, scanner_id: str, raw: RawScan) -> None:
        text = decode_scan(raw.data)
        verdict = self.classifier.classify(text, raw.aim)
        redacted = self.classifier.redact(text, verdict)
        with self._lock:
            if self._is_duplicate(scanner_id, text, raw.received_ns):
                self.stats.duplicates_suppressed += 1
                logger.debug("scanner %s: duplicate %s suppressed", scanner_id, redacted)
                return
            if scanner_id in self._disarmed:
                self.stats.ignored_while_disarmed += 1
                logger.info("scanner %s: scan ignored, one-shot not re-armed", scanner_id)
                return
            if scanner_id in self._one_shot:
                self._disarmed.add(scanner_id)
            self._seq += 1
            event = ScanEvent(
                sequence=self._seq,
                scanner_id=scanner_id,
                text=text,
                redacted=redacted,
                aim=raw.aim,
                classification=verdict,
                received_ns=raw.received_ns,
                published_ns=time.monotonic_ns(),
                suffix_missing=raw.suffix_missing,
            )
            self.stats.published += 1
            self._history.append(event)
            logger.info(  # before delivery, so the log never trails what a subscriber saw
                "scan %d from %s: %s%s %s",
                event.sequence,
                scanner_id,
                verdict.kind.value,
                "" if verdict.valid else " (invalid)",
                redacted,
            )
            for sub in self._subs:
                sub._offer(event.for_role(sub.role))

    def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None:
        with self._lock:
            self._states[scanner_id] = state
            self._seq += 1
            event = StatusEvent(self._seq, scanner_id, state, detail, time.monotonic_ns())
            self._history.append(event)
            for sub in self._subs:
                sub._offer(event)
        logger.info("scanner %s %s: %s", scanner_id, state.value, detail)

    def _is_duplicate(self, scanner_id: str, text: str, when_ns: int) -> bool:
        if self.duplicate_window_ns <= 0:
            return False
        key = (scanner_id, text)
        last = self._last_read.get(key)
        self._last_read[key] = when_ns
        if len(self._last_read) > _DUP_PRUNE_AT:
            horizon = when_ns - self.duplicate_window_ns
            self._last_read = {k: t for k, t in self._last_read.items() if t >= horizon}
        return last is not None and 0 <= when_ns - last < self.duplicate_window_ns
