"""A USB HID-POS barcode scanner presented through the simulator's pyusb backend (:mod:`sim.usb`).

``usb.core.find(idVendor=..., backend=SimUsbBackend(...))`` finds the simulated device, and the
daemon then goes through pyusb exactly as with libusb: descriptors, kernel-driver detach, claim,
interrupt IN reads, release, re-attach. Plug, address, driver and claim rules are those of
:mod:`sim.usb` (``usbhid`` bound at plug-in); what is the scanner's own:

- reports produced while the kernel driver owns the interface go to the kernel (lost to us);
- a code longer than one report is split with a continuation flag; feature reports sent with
  SET_REPORT are recorded, any other control request stalls.
"""

from __future__ import annotations

import errno
from collections import deque

import usb.core

from sim.usb import Endpoint, Interface, SimUsbBackend, SimUsbDevice, pipe_error

__all__ = ["SimHidPosDevice", "SimUsbBackend"]

REPORT_SIZE = 64
DATA_PER_REPORT = 56
_SET_REPORT = (0x21, 0x09)
_HID_CLASS = 0x03
_INTERRUPT = 0x03


class SimHidPosDevice(SimUsbDevice):
    """A HID-POS scanner (usage page 0x8C): one HID interface, one interrupt IN endpoint."""

    def __init__(
        self,
        vid: int = 0x0C2E,
        pid: int = 0x0B61,
        *,
        bus: int = 1,
        port_path: tuple[int, ...] = (1,),
        interface: int = 0,
        endpoint: int = 0x81,
    ) -> None:
        self.endpoint = endpoint
        self.reports_to_kernel = 0
        self.reports_dropped_unplugged = 0
        self.feature_reports: list[bytes] = []
        self._reports: deque[bytes] = deque()
        layout = Interface(
            _HID_CLASS,
            subclass=0,
            protocol=0,
            endpoints=(Endpoint(endpoint, _INTERRUPT, REPORT_SIZE, interval=1),),
            class_descriptor_bytes=9,  # the HID descriptor
        )
        super().__init__(vid, pid, layout, bus=bus, port_path=port_path, interface_number=interface)

    def _discard_pending(self) -> None:
        self._reports.clear()

    # --- the physical world -------------------------------------------------------------------

    def scan(self, code: str | bytes, *, aim: str | None = "]Q1", encoding: str = "utf-8") -> None:
        """Scan a code: split into 0x02 reports, continuation flag on all but the last."""
        data = code.encode(encoding) if isinstance(code, str) else code
        ident = (aim or "").encode("ascii").ljust(3, b"\0")[:3]
        chunks = [data[i : i + DATA_PER_REPORT] for i in range(0, len(data), DATA_PER_REPORT)]
        for n, chunk in enumerate(chunks or [b""]):
            report = bytearray(REPORT_SIZE)
            report[0] = 0x02
            report[1] = len(chunk)
            report[2:5] = ident
            report[5 : 5 + len(chunk)] = chunk
            report[63] = 1 if n < len(chunks) - 1 else 0
            self.send_report(bytes(report))

    def send_report(self, report: bytes) -> None:
        """Put one raw input report on the interrupt endpoint (malformed ones included)."""
        with self._cond:
            if not self.plugged:
                self.reports_dropped_unplugged += 1
                return
            if self.kernel_driver_attached or not self.claimed:
                self.reports_to_kernel += 1
                return
            self._reports.append(bytes(report))
            self._cond.notify_all()

    # --- what the backend asks ----------------------------------------------------------------

    def intr_read(self, address: int, ep: int, size: int, timeout_ms: int) -> bytes:
        with self._cond:
            self.check(address)
            if not self.claimed:
                raise usb.core.USBError("Interface not claimed", errno=errno.EACCES)
            self._wait(address, lambda: self._reports, timeout_ms)
            report = self._reports.popleft()
            if len(report) > size:
                raise usb.core.USBError("Overflow", errno=errno.EOVERFLOW)
            return report

    def ctrl_transfer(
        self, address: int, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> int:
        self.check(address)
        if (request_type, request) == _SET_REPORT and value >> 8 == 0x03:
            self.feature_reports.append(data)
            return len(data)
        raise pipe_error()
