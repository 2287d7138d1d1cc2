"""Serial scanners (RS-232, USB CDC-ACM ``/dev/ttyACM*``) through pyserial's ``serial_for_url``.

pyserial is imported when a port is opened, never when the daemon is imported. Use a stable path
(``/dev/serial/by-id/...``) so a scanner that is unplugged and plugged back is found again even
if the kernel gives it another ttyACM number; ``serial_for_url`` also accepts ``spy://`` (hex
dump for technicians) and ``loop://``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from daemon.errors import ScannerUnavailable
from daemon.scanners.base import RawScan, ScannerBackend
from daemon.scanners.framing import SerialFramer
from daemon.scanners.options import FRAMER_KEYS, ScannerTable, prefix_bytes, serial_framer

__all__ = ["SerialScanner"]

logger = logging.getLogger(__name__)


class SerialScanner(ScannerBackend):
    """A scanner on a serial port; frames bytes with a :class:`SerialFramer`."""

    #: its ``[scanners.<id>]`` keys besides the common ones
    config_keys: ClassVar[frozenset[str]] = FRAMER_KEYS | {"url", "baudrate", "prefix"}

    def __init__(
        self,
        url: str,
        framer: SerialFramer | None = None,
        *,
        baudrate: int = 9600,
        exclusive: bool = True,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.exclusive = exclusive
        self.framer = framer if framer is not None else SerialFramer()
        self._port: Any = None

    @classmethod
    def from_config(
        cls, scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
    ) -> SerialScanner:
        """``url`` (required), ``baudrate``, ``prefix`` and the framer keys."""
        t = ScannerTable(scanner_id, table, cls.config_keys)
        framer = serial_framer(t, prefix=prefix_bytes(t))
        return cls(t.get("url", str, None), framer, baudrate=t.positive("baudrate", 9600))

    @property
    def description(self) -> str:
        return f"serial {self.url} @{self.baudrate}"

    def open(self) -> None:
        if self._port is not None:
            return
        import serial  # lazy: importing the daemon must not import pyserial

        try:
            port = serial.serial_for_url(
                self.url,
                baudrate=self.baudrate,
                timeout=0.05,
                exclusive=self.exclusive,
                do_not_open=True,
            )
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScannerUnavailable(f"{self.description}: cannot open ({exc})") from exc
        self._port = port
        self.framer.reset()
        logger.info("scanner %s opened", self.description)

    def read(self, timeout: float) -> list[RawScan]:
        port = self._port
        if port is None:
            raise ScannerUnavailable(f"{self.description}: not open")
        import serial

        deadline = self.framer.deadline_ns()
        if deadline is not None:
            timeout = max(0.0, min(timeout, (deadline - time.monotonic_ns()) / 1e9))
        try:
            port.timeout = timeout
            chunk: bytes = port.read(port.in_waiting or 1)
            if chunk and port.in_waiting:
                chunk += port.read(port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise ScannerUnavailable(f"{self.description}: read failed ({exc})") from exc
        now = time.monotonic_ns()
        scans = self.framer.feed(chunk, now) if chunk else []
        scans += self.framer.poll(now)
        return scans

    def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        try:
            port.close()
        except Exception:  # a vanished device may fail to close; it is gone either way
            logger.debug("scanner %s close failed", self.description, exc_info=True)
        logger.info("scanner %s closed", self.description)
