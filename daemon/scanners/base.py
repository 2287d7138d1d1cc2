"""The small scanner interface every backend implements, and the raw scan it produces.

Backends only move bytes: open the device, hand back complete raw scans, close. Reconnecting,
classification, ordering and delivery live once, above this interface (``worker``, ``stream``),
so a new kind of scanner is about a hundred lines.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

__all__ = ["RawScan", "ScannerBackend", "ScannerState"]


@dataclass(frozen=True, slots=True)
class RawScan:
    """One complete scan as the device delivered it, AIM identifier already split off.

    ``data`` may be a payment code: it is excluded from ``repr`` so that logging a RawScan by
    accident never leaks it.
    """

    data: bytes = field(repr=False)
    aim: str | None = None
    received_ns: int = 0  # time.monotonic_ns() when the last byte arrived
    suffix_missing: bool = False  # framed by the idle timeout instead of the configured suffix


class ScannerState(enum.StrEnum):
    """Connection state of one scanner, as seen by its reader thread."""

    STARTING = "STARTING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    CLOSED = "CLOSED"


class ScannerBackend(abc.ABC):
    """One physical scanner. Called only from that scanner's reader thread (plus ``close``).

    ``open``/``read`` raise :class:`daemon.errors.ScannerUnavailable` when the device is absent
    or went away; the reader thread then closes the backend and opens it again later.
    """

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the scanner is (port, VID:PID), for logs and technicians. No scan data."""

    @abc.abstractmethod
    def open(self) -> None:
        """Open the device; idempotent while open."""

    @abc.abstractmethod
    def read(self, timeout: float) -> list[RawScan]:
        """Wait up to ``timeout`` seconds; return the scans completed meanwhile (maybe none)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; idempotent, never raises for an already-vanished device."""
