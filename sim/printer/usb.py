"""A USB receipt printer (printer class 7, bulk OUT 0x01 / bulk IN 0x82) behind the simulator's
pyusb backend (:mod:`sim.usb`), so the daemon's USB backend runs through python-escpos and pyusb
exactly as with libusb: ``usb.core.find(..., backend=SimUsbPrinterBackend(...))``.

What a real one does and the simulator does too: ``usblp`` owns the interface after plug-in
(transfers fail with EBUSY until it is detached), status answers wait in the IN endpoint until
read, and plug, address and claim behave as :mod:`sim.usb` describes. Bus resets (python-escpos
resets the device on every open) are counted, nothing more: what a real printer does with its
buffer on a reset is model-specific.
"""

from __future__ import annotations

import logging
from collections import deque

from sim.printer.device import VirtualPrinter
from sim.usb import Endpoint, Interface, SimUsbBackend, SimUsbDevice, busy_error, pipe_error

__all__ = ["SimUsbPrinter", "SimUsbPrinterBackend"]

logger = logging.getLogger(__name__)

PRINTER_CLASS = 0x07
OUT_EP, IN_EP = 0x01, 0x82
PACKET = 64
_BULK = 0x02
_INTERFACE = Interface(
    PRINTER_CLASS,
    subclass=1,
    protocol=2,  # bidirectional
    endpoints=(Endpoint(OUT_EP, _BULK, PACKET), Endpoint(IN_EP, _BULK, PACKET)),
    config_attributes=0xC0,  # self-powered
)

#: The printer is served by the one simulated-USB backend; the old name stays for callers.
SimUsbPrinterBackend = SimUsbBackend


class SimUsbPrinter(SimUsbDevice):
    """The USB side of a :class:`VirtualPrinter`: what pyusb talks to."""

    config_busy_while_driver_bound = False  # see SimUsbDevice

    def __init__(self, printer: VirtualPrinter, vid: int = 0x0416, pid: int = 0x5011) -> None:
        self.printer = printer
        self.read_timeouts_ms: list[int] = []  # as the host asked (0 = forever)
        self._replies: deque[int] = deque()
        super().__init__(vid, pid, _INTERFACE)

    def unplug(self) -> None:
        super().unplug()
        self.printer.attach(None)

    def replug(self) -> None:
        """Plug in (again): new address, ``usblp`` bound, the printer's replies routed here."""
        super().replug()
        self.printer.attach(self._queue_reply)

    def _discard_pending(self) -> None:
        self._replies.clear()

    def _queue_reply(self, data: bytes) -> None:
        with self._cond:
            if self.plugged:
                self._replies.extend(data)
                self._cond.notify_all()

    def bulk_write(self, address: int, ep: int, data: bytes, timeout_ms: int) -> int:
        if ep != OUT_EP:
            raise pipe_error()
        with self._cond:
            self.check(address)
            if self.kernel_driver_attached:  # usblp has the interface
                raise busy_error()
            self.claimed = True  # pyusb claims implicitly on first transfer
        self.printer.receive(data)
        return len(data)

    def bulk_read(self, address: int, ep: int, size: int, timeout_ms: int) -> bytes:
        if ep != IN_EP:
            raise pipe_error()
        with self._cond:
            self.check(address)
            self.read_timeouts_ms.append(timeout_ms)
            self._wait(address, lambda: self._replies, timeout_ms)
            n = min(size, len(self._replies))
            return bytes(self._replies.popleft() for _ in range(n))
