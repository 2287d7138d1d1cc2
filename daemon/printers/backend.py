"""The printer backend interface, the printer config, and the lazy backend registry.

A backend is a byte pipe with a read timeout: four hooks. Everything else (ESC/POS building,
status parsing, spooling, retries) lives once above it. Backends are looked up by name in
:mod:`daemon.registry` (built-ins plus the ``carddaemon.backends.printers`` entry points) and
their modules imported only when used, so importing ``daemon`` never imports usb, serial or
escpos. A backend class is constructed as ``cls(config)`` with its :class:`PrinterConfig`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

from daemon import registry
from daemon.errors import ConfigError
from daemon.printers.profiles import PrinterProfile, get_profile

__all__ = ["PrinterBackend", "PrinterConfig", "create_backend"]

logger = logging.getLogger(__name__)


class PrinterBackend(ABC):
    """A connection to one printer. ``write`` sends everything or raises."""

    def __init__(self) -> None:
        self.writes = 0
        self.bytes_written = 0

    @abstractmethod
    def open(self) -> None:
        """Connect; raise :class:`~daemon.errors.PrinterOffline` if the printer is not there."""

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, ``b""`` after ``timeout`` s; raise PrinterOffline if gone."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; idempotent."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @property
    def seconds_per_byte(self) -> float:
        """Wire time per byte (serial: 10 bits at the baud rate); 0 where it is negligible."""
        return 0.0

    def write(self, data: bytes) -> None:
        """Send ``data`` in one write call (counted, so tests and benches can check)."""
        self._write(data)
        self.writes += 1
        self.bytes_written += len(data)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """One ``[printers.<id>]`` table of the daemon config."""

    id: str
    backend: str = "network"
    host: str = "127.0.0.1"
    port: int = 9100
    device: str = ""
    baudrate: int = 9600
    dsrdtr: bool = False
    usb_vendor: int = 0
    usb_product: int = 0
    usb_in_ep: int = 0x82
    usb_out_ep: int = 0x01
    profile: str = "zh-80"
    drawer_pin: int = 2
    drawer_pulse_ms: int = 100
    drawer_open_level: bool = True
    poll_interval_s: float = 1.0
    timeout_s: float = 5.0
    confirm_timeout_s: float = 30.0
    logo_path: str = ""

    @classmethod
    def from_mapping(cls, printer_id: str, raw: Mapping[str, Any]) -> PrinterConfig:
        """Build and check a config table; errors name the key (``printers.front.port``)."""
        prefix = f"printers.{printer_id}"
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {"id": printer_id}
        for key, value in raw.items():
            if key not in known or key == "id":
                raise ConfigError(f"{prefix}.{key}", "unknown key")
            default = known[key].default
            want = type(default)
            ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                raise ConfigError(f"{prefix}.{key}", f"must be {want.__name__}, got {value!r}")
            values[key] = value
        cfg = cls(**values)
        cfg.check(prefix)
        return cfg

    def check(self, prefix: str) -> None:
        known = registry.names("printers")
        if self.backend not in known:
            raise ConfigError(
                f"{prefix}.backend",
                f"unknown printer backend {self.backend!r} (known: {', '.join(known)})",
            )
        if self.backend == "serial" and not self.device:
            raise ConfigError(f"{prefix}.device", "required for a serial printer")
        if self.backend == "usb" and not (self.usb_vendor and self.usb_product):
            raise ConfigError(f"{prefix}.usb_vendor", "usb_vendor and usb_product required")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{prefix}.port", f"out of range: {self.port}")
        if self.drawer_pin not in (2, 5):
            raise ConfigError(f"{prefix}.drawer_pin", "must be 2 or 5")
        if not 2 <= self.drawer_pulse_ms <= 510:
            raise ConfigError(f"{prefix}.drawer_pulse_ms", "must be 2..510 ms")
        for key in ("poll_interval_s", "timeout_s", "confirm_timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{prefix}.{key}", "must be > 0")
        try:
            get_profile(self.profile)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}.profile", exc.message) from None

    def printer_profile(self) -> PrinterProfile:
        return get_profile(self.profile)


def create_backend(config: PrinterConfig) -> PrinterBackend:
    """Instantiate the configured backend, importing its module only now."""
    key = f"printers.{config.id}.backend"
    cls: Any = registry.load("printers", config.backend, key=key)  # built as cls(config)
    if not issubclass(cls, PrinterBackend):
        raise ConfigError(key, f"{cls.__module__}.{cls.__qualname__} is not a PrinterBackend")
    backend: PrinterBackend = cls(config)
    return backend
