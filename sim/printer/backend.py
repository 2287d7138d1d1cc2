"""The simulated printer as an in-process printer backend (``[printers.<id>] backend = "sim"``).

Registered from ``pyproject.toml`` (entry point ``carddaemon.backends.printers``). The daemon's
printer service sends the same ESC/POS bytes as to a real printer; a :class:`VirtualPrinter`
decodes them and answers status requests through an in-memory link. :attr:`printer` is there
for scripting (paper out, cover open, render PNG); :meth:`unplug` drops the link like a pulled
cable. The table takes the ordinary printer keys; ``host``/``port``/``device`` are unused.
"""

from __future__ import annotations

import threading
import time

from daemon.errors import PrinterOffline
from daemon.printers.backend import PrinterBackend, PrinterConfig
from sim.printer.device import VirtualPrinter

__all__ = ["SimPrinterBackend"]


class SimPrinterBackend(PrinterBackend):
    """A :class:`VirtualPrinter` on the far side of an in-process byte pipe."""

    def __init__(self, config: PrinterConfig, printer: VirtualPrinter | None = None) -> None:
        super().__init__()
        self.config = config
        chars = config.printer_profile().chars_per_line
        self.printer = printer if printer is not None else VirtualPrinter(chars_per_line=chars)
        self._replies = bytearray()
        self._cond = threading.Condition()
        self._open = False
        self.unplugged = False

    @property
    def where(self) -> str:
        return f"simulated printer {self.config.id}"

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self._open:
            return
        if self.unplugged:
            raise PrinterOffline(f"printer {self.config.id}: cannot open {self.where} (unplugged)")
        with self._cond:
            self._replies.clear()
        self.printer.attach(self._reply)
        self._open = True

    def _reply(self, data: bytes) -> None:
        with self._cond:
            self._replies += data
            self._cond.notify_all()

    def _check(self, what: str) -> None:
        if not self._open:
            raise PrinterOffline(f"printer {self.config.id}: {what}: not open")

    def _write(self, data: bytes) -> None:
        self._check("write")
        self.printer.receive(data)

    def read(self, size: int, timeout: float) -> bytes:
        self._check("read")
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._replies and self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            self._check("read")
            data = bytes(self._replies[:size])
            del self._replies[:size]
            return data

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self.printer.attach(None)
        with self._cond:
            self._cond.notify_all()

    def unplug(self) -> None:
        """Pull the cable: the link closes now and opening fails until :meth:`plug`."""
        self.unplugged = True
        self.close()

    def plug(self) -> None:
        self.unplugged = False
