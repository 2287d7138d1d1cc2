"""The small scanner interface every backend implements, and the raw scan it produces.

Backends only move bytes: open the device, hand back complete raw scans, close. Reconnecting,
classification, ordering and delivery live once, above this interface (``worker``, ``stream``),
so a new kind of scanner is about a hundred lines.

Backends are found by name through :mod:`daemon.registry` (``[scanners.<id>] backend = ...``;
built-ins plus the ``carddaemon.backends.scanners`` entry points) and build themselves from
their config table with :meth:`ScannerBackend.from_config`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from daemon.errors import ConfigError

__all__ = ["COMMON_KEYS", "RawScan", "ScannerBackend", "ScannerState"]

#: keys every ``[scanners.<id>]`` table may carry whatever its backend (the worker reads them;
#: a backend's ``from_config`` must accept them and may read ``max_length``)
COMMON_KEYS: Final = frozenset({"backend", "one_shot", "backoff_max_ms", "max_length"})


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

    @classmethod
    def from_config(
        cls, scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
    ) -> ScannerBackend:
        """The backend one ``[scanners.<id>]`` table describes, nothing opened yet; errors are
        ``ConfigError`` naming ``scanners.<id>.<key>``. ``usb_backend`` is a pyusb backend for
        USB devices (the simulator's), else ignored."""
        raise ConfigError(
            f"scanners.{scanner_id}.backend", f"{cls.__name__} cannot be built from a config table"
        )

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
