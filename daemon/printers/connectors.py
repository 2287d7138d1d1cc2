"""Backends over python-escpos' connectors (Network, Serial, Usb), through their public interface.

What we use: the connector classes' ``open()`` / ``close()`` and the public ``device`` property
(the open socket, ``serial.Serial`` or ``usb.core.Device``; its setter is how python-escpos
itself marks a connector closed: ``False``). Nothing reaches into ``_device``.

What python-escpos cannot do for a receipt, and so what we do ourselves:

* **one write per receipt**: its public printing methods (``text``, ``image``, ``qr``...) each
  write on their own and encode text through its code-page table, which has no GB18030 and no
  Kanji mode (``FS &``). The daemon renders the whole receipt (:mod:`daemon.printers.encoder`)
  and hands it over in one buffer through ``_raw``, the one write primitive every connector
  implements and python-escpos' own methods call; 3.1 has no public name for it.
* **``GS r`` / ``DLE EOT`` status**: ``query_status`` reads with ``_read``, which blocks for the
  connector-wide timeout and cannot tell "no answer yet" from "gone"; we read the ``device``
  with a bounded timeout per call.
* **TCP connect**: ``Network.open`` leaves the socket unclosed when the connect fails; we
  connect ourselves and set the connector's ``device``.

Imported lazily by the backend registry.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from daemon.errors import PrinterOffline
from daemon.printers.backend import PrinterBackend, PrinterConfig

__all__ = ["NetworkBackend", "SerialBackend", "UsbBackend"]

logger = logging.getLogger(__name__)


class _EscposBackend(PrinterBackend):
    def __init__(self, config: PrinterConfig) -> None:
        super().__init__()
        self.config = config
        self._conn: Any = None

    @property
    def where(self) -> str:
        raise NotImplementedError

    def _connector(self) -> Any:
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def open(self) -> None:
        if self._conn is not None:
            return
        conn = self._connector()
        try:
            conn.open()  # on failure python-escpos sets device None itself: no auto-open later
        except Exception as exc:  # DeviceNotFoundError, USBError, NoBackendError, OSError
            raise PrinterOffline(f"printer {self.config.id}: cannot open {self.where}") from exc
        self._conn = conn
        self._after_open()

    def _after_open(self) -> None:
        """Transport-specific tuning once the device is open."""

    def _write(self, data: bytes) -> None:
        if self._conn is None:
            raise PrinterOffline(f"printer {self.config.id}: not open")
        try:
            self._conn._raw(data)  # the whole receipt in one write; see the module docstring
        except Exception as exc:  # every driver failure means "gone" here
            self.close()
            raise PrinterOffline(f"printer {self.config.id}: write to {self.where} failed") from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        device = conn.device  # open, so the getter does not auto-open
        try:
            conn.close()  # sets device False on success
        except Exception:  # a dead device fails its flush; close the handle anyway
            logger.debug("printer %s: close of %s failed", self.config.id, self.where)
            with contextlib.suppress(Exception):
                device.close()
            conn.device = False  # closed: python-escpos' __del__ must not close (and fail) again


class NetworkBackend(_EscposBackend):
    """Raw TCP (JetDirect, port 9100)."""

    @property
    def where(self) -> str:
        return f"tcp://{self.config.host}:{self.config.port}"

    def _connector(self) -> Any:
        from escpos.printer import Network

        return Network(self.config.host, self.config.port, timeout=self.config.timeout_s)

    def open(self) -> None:
        """Connect ourselves: python-escpos' ``Network.open`` leaks the socket on failure."""
        if self._conn is not None:
            return
        conn = self._connector()
        try:
            sock = socket.create_connection(
                (self.config.host, self.config.port), timeout=self.config.timeout_s
            )
        except OSError as exc:
            conn.device = None  # opened and failed: never auto-open from __del__/device
            raise PrinterOffline(f"printer {self.config.id}: cannot open {self.where}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.device = sock
        self._conn = conn

    def read(self, size: int, timeout: float) -> bytes:
        if self._conn is None:
            raise PrinterOffline(f"printer {self.config.id}: not open")
        sock: socket.socket = self._conn.device
        try:
            sock.settimeout(timeout)
            data = sock.recv(size)
        except TimeoutError:
            return b""
        except OSError as exc:
            self.close()
            raise PrinterOffline(f"printer {self.config.id}: read from {self.where}") from exc
        finally:
            if self._conn is not None:
                sock.settimeout(self.config.timeout_s)
        if not data:
            self.close()
            raise PrinterOffline(f"printer {self.config.id}: {self.where} closed the connection")
        return data


class SerialBackend(_EscposBackend):
    """RS-232 / USB-serial via pyserial."""

    @property
    def where(self) -> str:
        return f"serial {self.config.device}@{self.config.baudrate}"

    def _connector(self) -> Any:
        from escpos.printer import Serial

        return Serial(
            self.config.device,
            baudrate=self.config.baudrate,
            timeout=self.config.timeout_s,
            dsrdtr=self.config.dsrdtr,
        )

    @property
    def seconds_per_byte(self) -> float:
        return 10.0 / self.config.baudrate

    def _write(self, data: bytes) -> None:
        if self._conn is not None:  # a long receipt at 9600 baud takes seconds on the wire
            self._conn.device.write_timeout = (
                self.config.timeout_s + len(data) * self.seconds_per_byte
            )
        super()._write(data)

    def read(self, size: int, timeout: float) -> bytes:
        if self._conn is None:
            raise PrinterOffline(f"printer {self.config.id}: not open")
        import serial

        port = self._conn.device
        try:
            port.timeout = timeout
            data: bytes = port.read(1)  # read(size) would wait the full timeout for `size`
            waiting = port.in_waiting if data else 0
            if waiting:
                data += port.read(min(size - 1, waiting))
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise PrinterOffline(f"printer {self.config.id}: read from {self.where}") from exc
        return data


class UsbBackend(_EscposBackend):
    """USB printer class device via pyusb (needs a udev rule for access)."""

    def __init__(self, config: PrinterConfig, usb_backend: Any = None) -> None:
        super().__init__(config)
        self.usb_backend = usb_backend  # a pyusb backend (the simulator); None: libusb

    @property
    def where(self) -> str:
        return f"usb {self.config.usb_vendor:04x}:{self.config.usb_product:04x}"

    def _connector(self) -> Any:
        from escpos.printer import Usb

        return Usb(
            self.config.usb_vendor,
            self.config.usb_product,
            usb_args={} if self.usb_backend is None else {"backend": self.usb_backend},
            timeout=int(self.config.timeout_s * 1000),
            in_ep=self.config.usb_in_ep,
            out_ep=self.config.usb_out_ep,
        )

    def _after_open(self) -> None:
        """Take the interface from ``usblp`` whatever the pyusb backend: python-escpos only
        detaches it under libusb1, and a printer still bound to usblp refuses our transfers."""
        import usb.core

        dev = self._conn.device
        try:
            if dev.is_kernel_driver_active(0):
                dev.detach_kernel_driver(0)
        except NotImplementedError:  # backends without kernel drivers (Windows, libusb0)
            pass
        except usb.core.USBError as exc:
            self.close()
            raise PrinterOffline(
                f"printer {self.config.id}: {self.where} is held by a kernel driver"
            ) from exc

    def read(self, size: int, timeout: float) -> bytes:
        if self._conn is None:
            raise PrinterOffline(f"printer {self.config.id}: not open")
        import usb.core

        ms = max(1, int(timeout * 1000))  # libusb reads 0 ms as "wait forever"
        try:
            data = self._conn.device.read(self.config.usb_in_ep, size, ms)
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            self.close()
            raise PrinterOffline(f"printer {self.config.id}: read from {self.where}") from exc
        return bytes(data)
