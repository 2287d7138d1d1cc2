"""A scriptable in-process scanner backend (``[scanners.<id>] backend = "sim"``).

Registered from ``pyproject.toml`` (entry point ``carddaemon.backends.scanners``). It sits
where a serial or HID-POS backend sits, below the daemon's scanner thread, so classification,
ordering and delivery run as for a real scanner. :meth:`SimScanner.inject` is a code being
scanned; :meth:`unplug`/:meth:`replug` pull and reconnect the cable. Keys: the common ones
(``backend``, ``one_shot``, ``backoff_max_ms``, ``max_length``: a longer code is cut off as a
real scanner's buffer would) and ``aim`` (default true; false: the scanner is programmed not to
send AIM identifiers, so scans arrive without one).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from daemon.errors import ConfigError, InvalidArgument, ScannerUnavailable
from daemon.scanners.base import COMMON_KEYS, RawScan, ScannerBackend

__all__ = ["SimScanner"]

logger = logging.getLogger(__name__)

_AIM: Final = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_DEFAULT_MAX: Final = 8192
_KEYS: Final = COMMON_KEYS | {"aim"}


class SimScanner(ScannerBackend):
    """Scans arrive only while the scanner is plugged and opened by the daemon."""

    def __init__(
        self, name: str = "sim", *, max_length: int = _DEFAULT_MAX, aim: bool = True
    ) -> None:
        self.name = name
        self.max_length = max_length
        self.sends_aim = aim
        self._cond = threading.Condition()
        self._pending: list[RawScan] = []
        self._open = False
        self.plugged = True
        self.opens = 0
        self.delivered = 0

    @classmethod
    def from_config(
        cls, scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
    ) -> SimScanner:
        where = f"scanners.{scanner_id}"
        valid = ", ".join(sorted(_KEYS))
        for key in table:
            if key not in _KEYS:
                raise ConfigError(
                    f"{where}.{key}", f"unknown key for a simulated scanner (valid: {valid})"
                )
        limit = table.get("max_length", _DEFAULT_MAX)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ConfigError(f"{where}.max_length", f"must be an int > 0, got {limit!r}")
        aim = table.get("aim", True)
        if not isinstance(aim, bool):
            raise ConfigError(f"{where}.aim", f"must be bool, got {aim!r}")
        return cls(scanner_id, max_length=limit, aim=aim)

    @property
    def description(self) -> str:
        return f"simulated scanner {self.name}"

    @property
    def is_open(self) -> bool:
        return self._open

    # --- scripting ---------------------------------------------------------------------------

    def inject(self, data: bytes, aim: str | None = None) -> bool:
        """Scan ``data`` (AIM identifier such as ``"]E0"`` given apart, as the framer splits
        it). False when nobody can receive it: unplugged or not opened, the scan is lost."""
        if aim is not None and not _AIM.fullmatch(aim):
            raise InvalidArgument("aim", f"{aim!r} is not an AIM identifier like ']E0'")
        with self._cond:
            if not (self.plugged and self._open):
                logger.debug("sim scanner %s: scan lost (not connected)", self.name)
                return False
            sent_aim = aim if self.sends_aim else None
            self._pending.append(
                RawScan(bytes(data[: self.max_length]), sent_aim, received_ns=time.monotonic_ns())
            )
            self._cond.notify_all()
        return True

    def unplug(self) -> None:
        """Pull the cable: the daemon's read fails, scans not yet read are lost."""
        with self._cond:
            self.plugged = False
            self._pending.clear()
            self._cond.notify_all()

    def replug(self) -> None:
        with self._cond:
            self.plugged = True
            self._cond.notify_all()

    def wait_open(self, timeout: float = 5.0) -> bool:
        """Block until the daemon has the scanner open (so an injected scan is delivered)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._open and self.plugged, timeout)

    # --- the backend interface ---------------------------------------------------------------

    def open(self) -> None:
        with self._cond:
            if not self.plugged:
                raise ScannerUnavailable(f"{self.description}: unplugged")
            if not self._open:
                self._open = True
                self.opens += 1
                self._cond.notify_all()

    def read(self, timeout: float) -> list[RawScan]:
        with self._cond:
            self._cond.wait_for(
                lambda: self._pending or not self.plugged or not self._open, timeout
            )
            if not self.plugged:
                raise ScannerUnavailable(f"{self.description}: unplugged")
            if not self._open:
                raise ScannerUnavailable(f"{self.description}: not open")
            scans, self._pending = self._pending, []
            self.delivered += len(scans)
            return scans

    def close(self) -> None:
        with self._cond:
            self._open = False
            self._pending.clear()
            self._cond.notify_all()
