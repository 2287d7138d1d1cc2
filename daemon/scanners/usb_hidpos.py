"""USB HID-POS scanners (usage page 0x8C) through pyusb.

The kernel's ``usbhid`` driver owns every HID interface, so we detach it, claim the interface and
read the interrupt IN endpoint ourselves; on close the kernel driver is attached again so the
device is left as we found it. pyusb is imported when a scanner is opened; ``backend`` lets the
simulator (or a technician's libusb0 build) supply the pyusb backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from daemon.errors import ConfigError, ScannerUnavailable
from daemon.scanners.base import RawScan, ScannerBackend
from daemon.scanners.hidpos import HidPosAssembler
from daemon.scanners.options import ScannerTable

__all__ = ["HidPosScanner"]

logger = logging.getLogger(__name__)

HID_CLASS = 0x03
# HID SET_REPORT(Feature, id 0xFE) = 1: switches Honeywell scanners into HID-POS reporting.
_SET_REPORT = (0x21, 0x09)
_ENABLE_REPORT_ID = 0xFE


class HidPosScanner(ScannerBackend):
    """A HID-POS scanner found by VID/PID (and optionally its USB port path)."""

    #: its ``[scanners.<id>]`` keys besides the common ones
    config_keys: ClassVar[frozenset[str]] = frozenset(
        {"vid", "pid", "port_path", "enable_report", "continuation_timeout_ms"}
    )

    def __init__(
        self,
        vid: int,
        pid: int,
        *,
        port_path: tuple[int, ...] | None = None,
        backend: Any = None,
        enable_report: bool = False,
        assembler: HidPosAssembler | None = None,
    ) -> None:
        self.vid = vid
        self.pid = pid
        self.port_path = port_path
        self.usb_backend = backend
        self.enable_report = enable_report
        self.assembler = assembler if assembler is not None else HidPosAssembler()
        self._dev: Any = None
        self._intf = -1
        self._ep_addr = 0
        self._packet = 64
        self._detached = False

    @classmethod
    def from_config(
        cls, scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
    ) -> HidPosScanner:
        """``vid``/``pid`` (required), ``port_path``, ``enable_report``, the assembler keys."""
        t = ScannerTable(scanner_id, table, cls.config_keys)
        vid, pid = t.get("vid", int, None), t.get("pid", int, None)
        for key, value in (("vid", vid), ("pid", pid)):
            if not 0 < value <= 0xFFFF:
                raise ConfigError(f"{t.where}.{key}", f"must be 1..0xFFFF, got {value}")
        path = t.get("port_path", list, [])
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in path):
            raise ConfigError(f"{t.where}.port_path", "must be a list of port numbers")
        return cls(
            vid,
            pid,
            port_path=tuple(path) or None,
            backend=usb_backend,
            enable_report=t.get("enable_report", bool, False),
            assembler=HidPosAssembler(
                timeout_s=t.positive("continuation_timeout_ms", 1000) / 1000,
                max_length=t.positive("max_length", 8192),
            ),
        )

    @property
    def description(self) -> str:
        where = "" if self.port_path is None else " port " + ".".join(map(str, self.port_path))
        return f"HID-POS {self.vid:04x}:{self.pid:04x}{where}"

    def open(self) -> None:
        if self._dev is not None:
            return
        import usb.core  # lazy: importing the daemon must not import pyusb
        import usb.util

        try:
            dev = usb.core.find(
                idVendor=self.vid,
                idProduct=self.pid,
                backend=self.usb_backend,
                custom_match=self._matches,
            )
        except (usb.core.USBError, usb.core.NoBackendError) as exc:
            raise ScannerUnavailable(f"{self.description}: USB enumeration failed ({exc})") from exc
        if dev is None:
            raise ScannerUnavailable(f"{self.description}: not connected")
        self._dev = dev
        try:
            self._claim(dev)
        except (usb.core.USBError, ValueError) as exc:
            self.close()
            raise ScannerUnavailable(f"{self.description}: cannot claim ({exc})") from exc
        self.assembler.abandon("scanner reopened")
        logger.info(
            "scanner %s opened (interface %d, endpoint 0x%02x)",
            self.description,
            self._intf,
            self._ep_addr,
        )

    def _matches(self, dev: Any) -> bool:
        if self.port_path is None:
            return True
        return tuple(dev.port_numbers or ()) == self.port_path

    def _claim(self, dev: Any) -> None:
        import usb.core
        import usb.util

        try:
            cfg = dev.get_active_configuration()
        except usb.core.USBError:
            dev.set_configuration()
            cfg = dev.get_active_configuration()
        intf = usb.util.find_descriptor(cfg, bInterfaceClass=HID_CLASS)
        if intf is None:
            raise ValueError("no HID interface")
        ep = usb.util.find_descriptor(
            intf,
            custom_match=lambda e: (
                usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
                and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
            ),
        )
        if ep is None:
            raise ValueError(f"interface {intf.bInterfaceNumber} has no interrupt IN endpoint")
        self._intf = int(intf.bInterfaceNumber)
        self._ep_addr = int(ep.bEndpointAddress)
        self._packet = int(ep.wMaxPacketSize)
        if dev.is_kernel_driver_active(self._intf):
            dev.detach_kernel_driver(self._intf)
            self._detached = True
        usb.util.claim_interface(dev, self._intf)
        if self.enable_report:
            dev.ctrl_transfer(
                *_SET_REPORT, (0x03 << 8) | _ENABLE_REPORT_ID, self._intf, bytes([0xFE, 0x01])
            )

    def read(self, timeout: float) -> list[RawScan]:
        dev = self._dev
        if dev is None:
            raise ScannerUnavailable(f"{self.description}: not open")
        import usb.core

        try:
            report = dev.read(self._ep_addr, self._packet, max(1, int(timeout * 1000)))
        except usb.core.USBTimeoutError:
            self.assembler.expire(time.monotonic_ns())
            return []
        except usb.core.USBError as exc:
            raise ScannerUnavailable(f"{self.description}: read failed ({exc})") from exc
        scan = self.assembler.feed(bytes(report), time.monotonic_ns())
        return [] if scan is None else [scan]

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        import usb.util

        self.assembler.abandon("scanner closed")
        try:
            if self._intf >= 0:
                usb.util.release_interface(dev, self._intf)
            if self._detached:
                dev.attach_kernel_driver(self._intf)
        except Exception:  # an unplugged device cannot be released; it is gone either way
            logger.debug("scanner %s release failed", self.description, exc_info=True)
        finally:
            self._detached = False
            self._intf = -1
            try:
                usb.util.dispose_resources(dev)
            except Exception:
                logger.debug("scanner %s dispose failed", self.description, exc_info=True)
        logger.info("scanner %s closed", self.description)
