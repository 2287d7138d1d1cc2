"""One simulated USB device and one pyusb backend serving any of them, so the daemon's USB code
runs through pyusb exactly as with libusb: ``usb.core.find(..., backend=SimUsbBackend(dev))``.

What every device here does like a real one: the class driver (``usblp``, ``usbhid``) is bound
at plug-in, so claiming fails with EBUSY until it is detached and re-attaching fails while the
interface is claimed; ``unplug()`` makes every open handle fail with ENODEV and ``replug()``
gives a new address, so a handle from before stays dead and the host must enumerate again; a
transfer timeout of 0 means "wait forever" (libusb's rule). What a device carries on its
endpoints (printer bulk, HID-POS interrupt reports and feature reports) lives in its own module.
"""

from __future__ import annotations

import array
import errno
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import usb.backend
import usb.core

from daemon.readers.connection import ClosesOnExit

__all__ = [
    "Endpoint",
    "Interface",
    "SimUsbBackend",
    "SimUsbDevice",
    "busy_error",
    "pipe_error",
]

_D = TypeVar("_D", bound="SimUsbDevice")
_FOREVER_MS = 60_000  # a "wait forever" read still ends, so a broken test cannot hang


@dataclass(frozen=True)
class Endpoint:
    """One endpoint descriptor's worth of facts; the direction is bit 7 of the address."""

    address: int
    attributes: int  # 0x02 bulk, 0x03 interrupt
    max_packet: int = 64
    interval: int = 0


@dataclass(frozen=True)
class Interface:
    """The one interface (of the one configuration) a simulated device has."""

    cls: int
    subclass: int
    protocol: int
    endpoints: tuple[Endpoint, ...]
    config_attributes: int = 0x80  # bus-powered; 0xC0 self-powered
    class_descriptor_bytes: int = 0  # e.g. the 9-byte HID descriptor, counted in wTotalLength


class _Desc:
    """A descriptor: pyusb reads the fields it needs as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields, extra_descriptors=[])


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device", errno=errno.ENODEV)


def busy_error() -> usb.core.USBError:
    return usb.core.USBError("Resource busy", errno=errno.EBUSY)


def pipe_error() -> usb.core.USBError:
    """What the host sees when a device stalls an endpoint or request it does not have."""
    return usb.core.USBError("Pipe error", errno=errno.EPIPE)


class SimUsbDevice(ClosesOnExit):
    """Plug, address, kernel-driver and claim state of one simulated device; subclasses add
    their :class:`Interface` and override the transfers they support (the rest stall)."""

    #: Linux refuses SET_CONFIGURATION while a kernel driver holds an interface; the printer
    #: simulation has not modelled that yet (python-escpos sets it before the daemon detaches).
    config_busy_while_driver_bound: ClassVar[bool] = True

    def __init__(
        self,
        vid: int,
        pid: int,
        interface: Interface,
        *,
        bus: int = 1,
        port_path: tuple[int, ...] = (1,),
        interface_number: int = 0,
    ) -> None:
        self.vid, self.pid, self.bus, self.port_path = vid, pid, bus, port_path
        self.layout = interface
        self.interface = interface_number
        self.address = 0
        self.plugged = False
        self.kernel_driver_attached = False
        self.claimed = False
        self.resets = 0
        self._cond = threading.Condition()
        self.replug()

    def close(self) -> None:
        """Unplug for good (idempotent)."""
        self.unplug()

    # --- the physical world -------------------------------------------------------------------

    def unplug(self) -> None:
        with self._cond:
            self.plugged = False
            self.claimed = False
            self._discard_pending()
            self._cond.notify_all()

    def replug(self) -> None:
        """Plug in (again): new address, the class driver bound, nothing claimed or pending."""
        with self._cond:
            self.address += 1
            self.plugged = True
            self.kernel_driver_attached = True
            self.claimed = False
            self._discard_pending()
            self._cond.notify_all()

    def _discard_pending(self) -> None:
        """Drop data waiting on IN endpoints (called with the lock held)."""

    # --- what the backend asks ----------------------------------------------------------------

    def check(self, address: int) -> None:
        """A handle is good only for the address the device had when it was opened."""
        if not self.plugged or address != self.address:
            raise _gone()

    def _wait(self, address: int, ready: Callable[[], object], timeout_ms: int) -> None:
        """With the lock held: wait until ``ready()`` or this handle's device is gone."""
        if not self._cond.wait_for(
            lambda: ready() or not self.plugged or address != self.address,
            (timeout_ms or _FOREVER_MS) / 1000,
        ):
            raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
        self.check(address)

    def set_configuration(self, address: int) -> None:
        self.check(address)
        if self.config_busy_while_driver_bound and self.kernel_driver_attached:
            raise busy_error()

    def claim(self, address: int) -> None:
        with self._cond:
            self.check(address)
            if self.kernel_driver_attached:
                raise busy_error()
            self.claimed = True

    def release(self, address: int) -> None:
        with self._cond:
            self.check(address)
            self.claimed = False

    def detach_driver(self, address: int) -> None:
        with self._cond:
            self.check(address)
            if not self.kernel_driver_attached:
                raise usb.core.USBError("Entity not found", errno=errno.ENOENT)
            self.kernel_driver_attached = False

    def attach_driver(self, address: int) -> None:
        with self._cond:
            self.check(address)
            if self.kernel_driver_attached or self.claimed:
                raise busy_error()
            self.kernel_driver_attached = True

    def bulk_write(self, address: int, ep: int, data: bytes, timeout_ms: int) -> int:
        raise pipe_error()

    def bulk_read(self, address: int, ep: int, size: int, timeout_ms: int) -> bytes:
        raise pipe_error()

    def intr_read(self, address: int, ep: int, size: int, timeout_ms: int) -> bytes:
        raise pipe_error()

    def ctrl_transfer(
        self, address: int, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> int:
        self.check(address)
        raise pipe_error()


@dataclass(frozen=True)
class _Ref:
    device: SimUsbDevice
    address: int


def _into(buff: array.array[int], data: bytes) -> int:
    buff[: len(data)] = array.array("B", data)
    return len(data)


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """pyusb backend serving :class:`SimUsbDevice` objects; transfers go to the device."""

    def __init__(self, *devices: SimUsbDevice) -> None:
        super().__init__()
        self.devices = list(devices)

    def add(self, device: _D) -> _D:
        self.devices.append(device)
        return device

    def enumerate_devices(self) -> Iterator[_Ref]:
        for dev in list(self.devices):
            if dev.plugged:
                yield _Ref(dev, dev.address)

    def get_device_descriptor(self, ref: _Ref) -> _Desc:
        d = ref.device
        return _Desc(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=d.vid, idProduct=d.pid,
            bcdDevice=0x0100, iManufacturer=0, iProduct=0, iSerialNumber=0, bNumConfigurations=1,
            address=ref.address, bus=d.bus, port_number=d.port_path[-1],
            port_numbers=d.port_path, speed=2,
        )  # fmt: skip

    def get_configuration_descriptor(self, ref: _Ref, config: int) -> _Desc:
        if config != 0:
            raise IndexError(config)
        i = ref.device.layout
        total = 9 + 9 + i.class_descriptor_bytes + 7 * len(i.endpoints)
        return _Desc(
            bLength=9, bDescriptorType=2, wTotalLength=total, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=i.config_attributes,
            bMaxPower=50,
        )  # fmt: skip

    def get_interface_descriptor(self, ref: _Ref, intf: int, alt: int, config: int) -> _Desc:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError(intf)
        i = ref.device.layout
        return _Desc(
            bLength=9, bDescriptorType=4, bInterfaceNumber=ref.device.interface,
            bAlternateSetting=0, bNumEndpoints=len(i.endpoints), bInterfaceClass=i.cls,
            bInterfaceSubClass=i.subclass, bInterfaceProtocol=i.protocol, iInterface=0,
        )  # fmt: skip

    def get_endpoint_descriptor(
        self, ref: _Ref, ep: int, intf: int, alt: int, config: int
    ) -> _Desc:
        endpoints = ref.device.layout.endpoints
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(endpoints):
            raise IndexError(ep)
        e = endpoints[ep]
        return _Desc(
            bLength=7, bDescriptorType=5, bEndpointAddress=e.address, bmAttributes=e.attributes,
            wMaxPacketSize=e.max_packet, bInterval=e.interval, bRefresh=0, bSynchAddress=0,
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
        handle.device.set_configuration(handle.address)

    def set_interface_altsetting(self, handle: _Ref, intf: int, alt: int) -> None:
        handle.device.check(handle.address)

    def reset_device(self, handle: _Ref) -> None:
        handle.device.check(handle.address)
        handle.device.resets += 1

    def claim_interface(self, handle: _Ref, intf: int) -> None:
        handle.device.claim(handle.address)

    def release_interface(self, handle: _Ref, intf: int) -> None:
        handle.device.release(handle.address)

    def is_kernel_driver_active(self, handle: _Ref, intf: int) -> bool:
        handle.device.check(handle.address)
        return handle.device.kernel_driver_attached

    def detach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        handle.device.detach_driver(handle.address)

    def attach_kernel_driver(self, handle: _Ref, intf: int) -> None:
        handle.device.attach_driver(handle.address)

    def bulk_write(
        self, handle: _Ref, ep: int, intf: int, data: array.array[int], timeout: int
    ) -> int:
        return handle.device.bulk_write(handle.address, ep, data.tobytes(), timeout)

    def bulk_read(
        self, handle: _Ref, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        size = len(buff) * buff.itemsize
        return _into(buff, handle.device.bulk_read(handle.address, ep, size, timeout))

    def intr_read(
        self, handle: _Ref, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        size = len(buff) * buff.itemsize
        return _into(buff, handle.device.intr_read(handle.address, ep, size, timeout))

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
        return handle.device.ctrl_transfer(
            handle.address, bm_request_type, b_request, w_value, w_index, bytes(data)
        )
