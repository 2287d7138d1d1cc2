"""A USB HID-POS barcode scanner presented through a pyusb backend of our own.

``usb.core.find(idVendor=..., backend=SimUsbBackend(...))`` finds the simulated device, and the
daemon then goes through pyusb exactly as with libusb: descriptors, kernel-driver detach, claim,
interrupt IN reads, release, re-attach. The device behaves like a real one where it matters:

- ``usbhid`` is bound at plug-in: claiming fails with EBUSY until the kernel driver is detached,
  and re-attaching fails while the interface is still claimed;
- reports produced while the kernel driver owns the interface go to the kernel (lost to us);
- ``unplug()`` makes every open handle fail with ENODEV; ``replug()`` gives a new address, so a
  handle from before the unplug stays dead and the host must enumerate again.
"""

from __future__ import annotations

import array
import errno
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import usb.backend
import usb.core

__all__ = ["SimHidPosDevice", "SimUsbBackend"]

REPORT_SIZE = 64
DATA_PER_REPORT = 56
_SET_REPORT = (0x21, 0x09)


@dataclass
class _Desc:
    """A descriptor: pyusb reads the fields it needs as attributes."""

    fields: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None


class SimHidPosDevice:
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
        self.vid, self.pid, self.bus, self.port_path = vid, pid, bus, port_path
        self.interface, self.endpoint = interface, endpoint
        self.address = 0
        self.plugged = False
        self.kernel_driver_attached = False
        self.claimed = False
        self.reports_to_kernel = 0
        self.reports_dropped_unplugged = 0
        self.feature_reports: list[bytes] = []
        self._reports: deque[bytes] = deque()
        self._cond = threading.Condition()
        self.replug()

    def close(self) -> None:
        """Unplug for good (idempotent); a context manager like every simulated device."""
        self.unplug()

    def __enter__(self) -> SimHidPosDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the physical world -------------------------------------------------------------------

    def unplug(self) -> None:
        with self._cond:
            self.plugged = False
            self.claimed = False
            self._reports.clear()
            self._cond.notify_all()

    def replug(self) -> None:
        """Plug in (again): new address, usbhid bound, nothing claimed."""
        with self._cond:
            self.address += 1
            self.plugged = True
            self.kernel_driver_attached = True
            self.claimed = False
            self._reports.clear()

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

    def _check(self, address: int) -> None:
        if not self.plugged or address != self.address:
            raise usb.core.USBError("No such device", errno=errno.ENODEV)

    def _read(self, address: int, size: int, timeout_ms: int) -> bytes:
        with self._cond:
            self._check(address)
            if not self.claimed:
                raise usb.core.USBError("Interface not claimed", errno=errno.EACCES)
            if not self._cond.wait_for(
                lambda: self._reports or not self.plugged or address != self.address,
                timeout_ms / 1000,
            ):
                raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
            self._check(address)
            report = self._reports.popleft()
            if len(report) > size:
                raise usb.core.USBError("Overflow", errno=errno.EOVERFLOW)
            return report


@dataclass(frozen=True)
class _Ref:
    device: SimHidPosDevice
    address: int


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """pyusb backend serving :class:`SimHidPosDevice` objects."""

    def __init__(self, *devices: SimHidPosDevice) -> None:
        super().__init__()
        self.devices = list(devices)

    def add(self, device: SimHidPosDevice) -> SimHidPosDevice:
        self.devices.append(device)
        return device

    def enumerate_devices(self) -> Any:
        for dev in list(self.devices):
            if dev.plugged:
                yield _Ref(dev, dev.address)

    def get_device_descriptor(self, ref: _Ref) -> _Desc:
        d = ref.device
        return _Desc({
            "bLength": 18, "bDescriptorType": 1, "bcdUSB": 0x0200, "bDeviceClass": 0,
            "bDeviceSubClass": 0, "bDeviceProtocol": 0, "bMaxPacketSize0": 64,
            "idVendor": d.vid, "idProduct": d.pid, "bcdDevice": 0x0100, "iManufacturer": 0,
            "iProduct": 0, "iSerialNumber": 0, "bNumConfigurations": 1,
            "address": ref.address, "bus": d.bus, "port_number": d.port_path[-1],
            "port_numbers": d.port_path, "speed": 2,
        })  # fmt: skip

    def get_configuration_descriptor(self, ref: _Ref, config: int) -> _Desc:
        if config != 0:
            raise IndexError(config)
        return _Desc({
            "bLength": 9, "bDescriptorType": 2, "wTotalLength": 34, "bNumInterfaces": 1,
            "bConfigurationValue": 1, "iConfiguration": 0, "bmAttributes": 0x80,
            "bMaxPower": 50, "extra_descriptors": [],
        })  # fmt: skip

    def get_interface_descriptor(self, ref: _Ref, intf: int, alt: int, config: int) -> _Desc:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError(intf)
        return _Desc({
            "bLength": 9, "bDescriptorType": 4, "bInterfaceNumber": ref.device.interface,
            "bAlternateSetting": 0, "bNumEndpoints": 1, "bInterfaceClass": 3,
            "bInterfaceSubClass": 0, "bInterfaceProtocol": 0, "iInterface": 0,
            "extra_descriptors": [],
        })  # fmt: skip

    def get_endpoint_descriptor(
        self, ref: _Ref, ep: int, intf: int, alt: int, config: int
    ) -> _Desc:
        if (ep, intf, alt, config) != (0, 0, 0, 0):
            raise IndexError(ep)
        return _Desc({
            "bLength": 7, "bDescriptorType": 5, "bEndpointAddress": ref.device.endpoint,
            "bmAttributes": 0x03, "wMaxPacketSize": REPORT_SIZE, "bInterval": 1,
            "bRefresh": 0, "bSynchAddress": 0, "extra_descriptors": [],
        })  # fmt: skip

    def open_device(self, ref: _Ref) -> _Ref:
        ref.device._check(ref.address)
        return ref

    def close_device(self, handle: _Ref) -> None:
        return None

    def get_configuration(self, handle: _Ref) -> int:
        handle.device._check(handle.address)
        return 1

    def set_configuration(self, handle: _Ref, value: int) -> None:
        handle.device._check(handle.address)
        if handle.device.kernel_driver_attached:
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)

    def set_interface_altsetting(self, handle: _Ref, intf: int, alt: int) -> None:
        handle.device._check(handle.address)

    def claim_interface(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        with d._cond:
            d._check(handle.address)
            if d.kernel_driver_attached:
                raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
            d.claimed = True

    def release_interface(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        with d._cond:
            d._check(handle.address)
            d.claimed = False

    def is_kernel_driver_active(self, handle: _Ref, intf: int) -> bool:
        handle.device._check(handle.address)
        return handle.device.kernel_driver_attached

    def detach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        d._check(handle.address)
        if not d.kernel_driver_attached:
            raise usb.core.USBError("Entity not found", errno=errno.ENOENT)
        d.kernel_driver_attached = False

    def attach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        d = handle.device
        d._check(handle.address)
        if d.kernel_driver_attached or d.claimed:
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
        d.kernel_driver_attached = True

    def intr_read(
        self, handle: _Ref, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        report = handle.device._read(handle.address, len(buff) * buff.itemsize, timeout)
        buff[: len(report)] = array.array("B", report)
        return len(report)

    def ctrl_transfer(
        self,
        handle: _Ref,
        bm_request_type: int,
        b_request: int,
        w_value: int,
        w_index: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        d = handle.device
        d._check(handle.address)
        if (bm_request_type, b_request) == _SET_REPORT and w_value >> 8 == 0x03:
            d.feature_reports.append(bytes(data))
            return len(data)
        raise usb.core.USBError("Pipe error", errno=errno.EPIPE)
