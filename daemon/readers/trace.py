"""APDU trace: a counter and a bounded ring of recent exchanges per reader.

Technicians read it ("what did the reader answer just before the error?"), benchmarks read
its counter and durations, and the storage layer dumps it to the log when something fails.
Key material never enters the ring: commands are stored as masked hex (LOAD KEY's key bytes
and the keys inside a trailer write show as ``**``), and responses are masked by the
command's ``response_secret`` (a trailer read). Individual exchanges are also logged at
level :data:`TRACE` (5, below DEBUG), only when that level is enabled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import InvalidArgument
from daemon.readers.apdu import Command, mask_hex
from daemon.readers.connection import Response

__all__ = ["DEFAULT_CAPACITY", "TRACE", "ApduTrace", "TraceEntry", "TraceHook"]

logger = logging.getLogger(__name__)

TRACE = 5
"""Log level of single APDU exchanges (below DEBUG, like python-can's frame traces)."""
logging.addLevelName(TRACE, "TRACE")

DEFAULT_CAPACITY = 32


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One exchange as technicians see it; ``apdu``/``response`` are already masked hex."""

    seq: int
    at: float  # wall clock (time.time()) when the command was sent
    reader: str
    command: str  # name and arguments, e.g. "GENERAL AUTHENTICATE block 8 key A slot 0"
    apdu: str
    response: str | None  # response data without SW; None if no answer came back
    sw: int | None
    duration_ms: float
    error: str | None = None  # reason of a transport failure, e.g. "CARD_REMOVED"

    def line(self) -> str:
        if self.sw is None:
            answer = f"!! {self.error or 'no answer'}"
        else:
            data = f"{self.response} " if self.response else ""
            answer = f"{data}[{self.sw >> 8:02X} {self.sw & 0xFF:02X}]"
        return f"#{self.seq} {self.command}: > {self.apdu} < {answer} ({self.duration_ms:.2f} ms)"


TraceHook = Callable[[TraceEntry], None]


class ApduTrace:
    """Counter + ring of the last ``capacity`` exchanges of one reader (thread-safe)."""

    def __init__(self, reader: str, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise InvalidArgument("capacity", f"a trace keeps at least 1 exchange, got {capacity}")
        self.reader = reader
        self._ring: deque[TraceEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._count = 0
        self._hooks: list[TraceHook] = []

    @property
    def count(self) -> int:
        """Exchanges recorded since creation (not bounded by the ring)."""
        return self._count

    @property
    def capacity(self) -> int:
        maxlen = self._ring.maxlen
        assert maxlen is not None
        return maxlen

    def add_hook(self, hook: TraceHook) -> None:
        """Call ``hook`` with every new entry (benchmarks, metrics). A hook that raises is
        logged and skipped: it runs after the card answered, and must never turn a completed
        write into an error."""
        with self._lock:
            self._hooks = [*self._hooks, hook]

    def remove_hook(self, hook: TraceHook) -> None:
        with self._lock:
            hooks = list(self._hooks)
            hooks.remove(hook)
            self._hooks = hooks

    def record(
        self,
        command: Command,
        response: Response | None,
        duration_s: float,
        *,
        error: BaseException | None = None,
        at: float | None = None,
    ) -> TraceEntry:
        """Add one exchange; ``response`` None means no answer came back (``error`` says why)."""
        if response is None:
            data_hex, sw = None, None
        else:
            data_hex, sw = mask_hex(response.data, command.response_secret), response.sw
        reason = None if error is None else str(getattr(error, "reason", type(error).__name__))
        with self._lock:
            self._count += 1
            entry = TraceEntry(
                seq=self._count,
                at=time.time() if at is None else at,
                reader=self.reader,
                command=command.describe(),
                apdu=command.masked_hex(),
                response=data_hex,
                sw=sw,
                duration_ms=duration_s * 1000.0,
                error=reason,
            )
            self._ring.append(entry)
            hooks = self._hooks
        if logger.isEnabledFor(TRACE):
            logger.log(TRACE, "%s %s", self.reader, entry.line())
        for hook in hooks:
            try:
                hook(entry)
            except Exception:
                logger.exception("%s: APDU trace hook %r failed", self.reader, hook)
        return entry

    def entries(self) -> list[TraceEntry]:
        """The ring, oldest first."""
        with self._lock:
            return list(self._ring)

    def last(self) -> TraceEntry | None:
        with self._lock:
            return self._ring[-1] if self._ring else None

    def durations_ms(self) -> list[float]:
        with self._lock:
            return [e.duration_ms for e in self._ring]

    def clear(self) -> None:
        """Empty the ring (the counter keeps counting)."""
        with self._lock:
            self._ring.clear()

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries()]

    def dump(self, why: str, *, level: int = logging.WARNING, log: logging.Logger = logger) -> None:
        """Write the ring to the log, one line per exchange, headed by ``why``."""
        if not log.isEnabledFor(level):
            return
        lines = self.lines()
        log.log(
            level,
            "%s: %s; last %d APDUs:\n  %s",
            self.reader,
            why,
            len(lines),
            "\n  ".join(lines) if lines else "(none)",
        )
