"""A USB receipt printer (printer class 7, bulk OUT 0x01 / bulk IN 0x82) behind a pyusb backend
of our own, so the daemon's USB backend runs through python-escpos and pyusb exactly as with
libusb: ``usb.core.find(..., backend=SimUsbPrinterBackend(...))``.

What a real one does and the simulator does too: ``usblp`` owns the interface after plug-in
(transfers fail with EBUSY until it is detached), status answers wait in the IN endpoint until
read, a read timeout of 0 means "wait forever" (libusb's rule), and ``unplug()`` makes every
handle fail with ENODEV; ``replug()`` gives a new address. Bus resets (python-escpos resets the
device on every open) are counted, nothing more: what a real printer does with its buffer on a
reset is model-specific.
"""

from __future__ import annotations

import array
import errno
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import usb.backend
import usb.core

from sim.printer.device import VirtualPrinter

__all__ = ["SimUsbPrinter", "SimUsbPrinterBackend"]

logger = logging.getLogger(__name__)

PRINTER_CLASS = 0x07
OUT_EP, IN_EP = 0x01, 0x82
PACKET = 64


class _Desc:
    """A descriptor: pyusb reads the fields it needs as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields, extra_descriptors=[])


class SimUsbPrinter:
    """The USB side of a :class:`VirtualPrinter`: what pyusb talks to."""

    def __init__(self, printer: VirtualPrinter, vid: int = 0x0416, pid: int = 0x5011) -> None:
        self.printer = printer
        self.vid, self.pid = vid, pid
        self.address = 0
        self.plugged = False
        self.kernel_driver_attached = False
        self.claimed = False
        self.resets = 0
        self.read_timeouts_ms: list[int] = []  # as the host asked (0 = forever)
        self._replies: deque[int] = deque()
        self._cond = threading.Condition()
        self.replug()

    def close(self) -> None:
        """Unplug for good (idempotent); a context manager like every simulated device."""
        self.unplug()

    def __enter__(self) -> SimUsbPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unplug(self) -> None:
        with self._cond:
            self.plugged = False
            self.claimed = False
            self._replies.clear()
            self._cond.notify_all()
        self.printer.attach(None)

    def replug(self) -> None:
        """Plug in (again): new address, ``usblp`` bound, the printer's replies routed here."""
        with self._cond:
            self.address += 1
            self.plugged = True
            self.kernel_driver_attached = True
            self.claimed = False
            self._replies.clear()
        self.printer.attach(self._queue_reply)

    def _queue_reply(self, data: bytes) -> None:
        with self._cond:
            if self.plugged:
                self._replies.extend(data)
                self._cond.notify_all()

    def check(self, address: int) -> None:
        if not self.plugged or address != self.address:
            raise usb.core.USBError("No such device", errno=errno.ENODEV)

    def bulk_write(self, address: int, data: bytes) -> int:
        with self._cond:
            self.check(address)
            if self.kernel_driver_attached:  # usblp has the interface
                raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
            self.claimed = True  # pyusb claims implicitly on first transfer
        self.printer.receive(data)
        return len(data)

    def bulk_read(self, address: int, size: int, timeout_ms: int) -> bytes:
        with self._cond:
            self.check(address)
            self.read_timeouts_ms.append(timeout_ms)
            if not self._cond.wait_for(
                lambda: self._replies or not self.plugged, (timeout_ms or 60_000) / 1000
            ):
                raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
            self.check(address)
            n = min(size, len(self._replies))
            return bytes(self._replies.popleft() for _ in range(n))


@dataclass(frozen=True)
class _Ref:
    device: SimUsbPrinter
    address: int


class SimUsbPrinterBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """pyusb backend serving :class:`SimUsbPrinter` objects."""

    def __init__(self, *devices: SimUsbPrinter) -> None:
        super().__init__()
        self.devices = list(devices)

    def enumerate_devices(self) -> Any:
        for dev in list(self.devices):
            if dev.plugged:
                yield _Ref(dev, dev.address)

    def get_device_descriptor(self, ref: _Ref) -> _Desc:
        d = ref.device
        return _Desc(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=d.vid, idProduct=d.pid,
            bcdDevice=0x0100, iManufacturer=0, iProduct=0, iSerialNumber=0, bNumConfigurations=1,
            address=ref.address, bus=1, port_number=1, port_numbers=(1,), speed=2,
        )  # fmt: skip

    def get_configuration_descriptor(self, ref: _Ref, config: int) -> _Desc:
        if config != 0:
            raise IndexError(config)
        return _Desc(
            bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0xC0, bMaxPower=50,
        )  # fmt: skip

    def get_interface_descriptor(self, ref: _Ref, intf: int, alt: int, config: int) -> _Desc:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError(intf)
        return _Desc(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=2, bInterfaceClass=PRINTER_CLASS, bInterfaceSubClass=1,
            bInterfaceProtocol=2, iInterface=0,
        )  # fmt: skip

    def get_endpoint_descriptor(
        self, ref: _Ref, ep: int, intf: int, alt: int, config: int
    ) -> _Desc:
        if (intf, alt, config) != (0, 0, 0) or ep not in (0, 1):
            raise IndexError(ep)
        return _Desc(
            bLength=7, bDescriptorType=5, bEndpointAddress=(OUT_EP, IN_EP)[ep],
            bmAttributes=0x02, wMaxPacketSize=PACKET, bInterval=0, bRefresh=0, bSynchAddress=0,
        )  # fmt: skip

    def open_device(self, ref: _Ref) -> _Ref:
        ref.device.check(ref.address)
        return ref

    def close_device(self, handle: _Ref) -> None:
        return None

    def get_configuration(self, handle: _Ref) -> int:
        handle.device.check(handle.address)
        return 1

    def set_configuration(self, handle: _Ref, value: int) -> None:
        handle.device.check(handle.address)

    def set_interface_altsetting(self, handle: _Ref, intf: int, alt: int) -> None:
        handle.device.check(handle.address)

    def reset_device(self, handle: _Ref) -> None:
        handle.device.check(handle.address)
        handle.device.resets += 1

    def claim_interface(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        d.check(handle.address)
        if d.kernel_driver_attached:
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
        d.claimed = True

    def release_interface(self, handle: _Ref, intf: int) -> None:
        handle.device.check(handle.address)
        handle.device.claimed = False

    def is_kernel_driver_active(self, handle: _Ref, intf: int) -> bool:
        handle.device.check(handle.address)
        return handle.device.kernel_driver_attached

    def detach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        handle.device.check(handle.address)
        handle.device.kernel_driver_attached = False

    def attach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        d.check(handle.address)
        if d.claimed:
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
        d.kernel_driver_attached = True

    def bulk_write(
        self, handle: _Ref, ep: int, intf: int, data: array.array[int], timeout: int
    ) -> int:
        if ep != OUT_EP:
            raise usb.core.USBError("Pipe error", errno=errno.EPIPE)
        return handle.device.bulk_write(handle.address, data.tobytes())

    def bulk_read(
        self, handle: _Ref, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        if ep != IN_EP:
            raise usb.core.USBError("Pipe error", errno=errno.EPIPE)
        data = handle.device.bulk_read(handle.address, len(buff) * buff.itemsize, timeout)
        buff[: len(data)] = array.array("B", data)
        return len(data)
