"""The scan stream: every scan, classified and numbered, to every subscriber, in order.

Scanner threads call :meth:`ScanStream.on_scan`; it publishes to the
:class:`~daemon.events.EventHub` (source ``scanners/<id>``, kinds ``scan`` and ``status``; each
scanner's last status is its snapshot) and never blocks on a subscriber: the hub's bounded queues
drop the oldest event and say so in the next one. Masking is per subscriber: :func:`role_view`
shows payment codes and member tokens in clear to the POS role only. Two UnifiedPOS-style options
shape delivery:
``one_shot`` (AutoDisable: one scan, then the scanner is ignored until :meth:`arm`) and a
duplicate-suppression window (the same code from the same scanner again within the window -
measured from the last time it was *read*, so a phone held under the scanner stays one scan).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from daemon.errors import ConfigError
from daemon.events import Event, EventHub, Subscription
from daemon.scanners.base import RawScan, ScannerState
from daemon.scanners.classify import Classifier, decode_scan
from daemon.scanners.events import Role, ScanEvent, StatusEvent

__all__ = ["SCAN", "STATUS", "ScanStream", "StreamStats", "role_view"]

logger = logging.getLogger(__name__)

_DUP_PRUNE_AT = 4096
SCAN = "scan"
STATUS = "status"


@dataclass(slots=True)
class StreamStats:
    published: int = 0
    duplicates_suppressed: int = 0
    ignored_while_disarmed: int = 0


def role_view(role: Role) -> Callable[[Event], Event]:
    """A hub view showing scans as ``role`` may see them (every client subscription needs one:
    the hub itself holds scans in clear)."""
    role = Role(role)

    def view(event: Event) -> Event:
        payload = event.payload
        if isinstance(payload, ScanEvent):
            shown = payload.for_role(role)
            if shown is not payload:
                return replace(event, payload=shown)
        return event

    return view


class ScanStream:
    """Classifies, numbers and fans out scans; the :class:`ScanSink` of every scanner."""

    def __init__(
        self,
        classifier: Classifier | None = None,
        *,
        duplicate_window_s: float = 0.0,
        default_queue: int = 1024,
        history: int = 256,
        hub: EventHub | None = None,
    ) -> None:
        """``history`` and ``default_queue`` shape the private hub made when ``hub`` is None."""
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
        self._own_hub = hub is None
        self.hub = (
            hub if hub is not None else EventHub(history=history, default_queue=default_queue)
        )
        self._lock = threading.Lock()
        self._one_shot: set[str] = set()
        self._disarmed: set[str] = set()
        self._last_read: dict[tuple[str, str], int] = {}
        self._states: dict[str, ScannerState] = {}

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

    def is_one_shot(self, scanner_id: str) -> bool:
        with self._lock:
            return scanner_id in self._one_shot

    # --- subscribers --------------------------------------------------------------------------

    def subscribe(
        self,
        role: Role = Role.POS,
        *,
        maxsize: int | None = None,
        notify: Callable[[], None] | None = None,
        after: int | None = None,
    ) -> Subscription:
        """A hub subscription to every scanner, masked for ``role``: each scanner's status
        first, then scans and status changes; ``after`` resumes (see :mod:`daemon.events`)."""
        size = self.default_queue if maxsize is None else maxsize
        if size < 1:
            raise ConfigError("scanners.subscriber_queue", f"must be >= 1, got {size}")
        return self.hub.subscribe(
            sources="scanners/",
            view=role_view(role),
            maxsize=size,
            notify=notify,
            after=after,
            name=str(Role(role)),
        )

    def snapshot(self) -> tuple[int, dict[str, ScannerState]]:
        """The hub's last sequence number and each scanner's state."""
        with self._lock:
            return self.hub.last_seq, dict(self._states)

    def close(self) -> None:
        """Close the private hub and so its subscriptions (idempotent); a shared one stays."""
        if self._own_hub:
            self.hub.close()

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

            def build(seq: int) -> ScanEvent:
                logger.info(  # before delivery, so the log never trails what a subscriber saw
                    "scan %d from %s: %s%s %s",
                    seq,
                    scanner_id,
                    verdict.kind.value,
                    "" if verdict.valid else " (invalid)",
                    redacted,
                )
                return ScanEvent(
                    sequence=seq,
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
            self.hub.publish_numbered(f"scanners/{scanner_id}", SCAN, build)

    def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None:
        def build(seq: int) -> StatusEvent:
            return StatusEvent(seq, scanner_id, state, detail, time.monotonic_ns())

        with self._lock:
            self._states[scanner_id] = state
            self.hub.publish_numbered(f"scanners/{scanner_id}", STATUS, build, state="event")
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
