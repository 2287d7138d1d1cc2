"""Building scanners from the ``[scanners.<id>]`` tables of the daemon's TOML config.

Validation happens here, once, with errors that name the key (``scanners.front.suffix``).
Backends are chosen by ``kind``; their modules import pyserial/pyusb only when a device opens.

    [scanners.front]              [scanners.lane2]
    kind = "serial"               kind = "hidpos"
    url = "/dev/serial/by-id/..." vid = 0x0c2e
    baudrate = 9600               pid = 0x0b61
    suffix = "CR"                 port_path = [1, 4]   # optional: this USB port only
    aim = true                    enable_report = true # Honeywell: switch on HID-POS reports

    [scanners.kbw]                # keyboard wedge, grabbed so it types into no window
    kind = "wedge"
    path = "/dev/input/by-id/usb-SCANNER-event-kbd"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.errors import ConfigError
from daemon.scanners.base import ScannerBackend
from daemon.scanners.framing import MissingSuffix, SerialFramer, Terminator
from daemon.scanners.hidpos import HidPosAssembler
from daemon.scanners.worker import Scanner, ScanSink

__all__ = ["KINDS", "build_backend", "build_scanner"]

KINDS = ("serial", "hidpos", "wedge")
_COMMON = {"kind", "one_shot", "backoff_max_ms", "max_length"}
_SERIAL = _COMMON | {
    "url",
    "baudrate",
    "suffix",
    "prefix",
    "aim",
    "idle_gap_ms",
    "suffix_timeout_ms",
    "missing_suffix",
}
_HIDPOS = _COMMON | {"vid", "pid", "port_path", "enable_report", "continuation_timeout_ms"}
_WEDGE = (_SERIAL - {"url", "baudrate", "prefix"}) | {"path", "grab"}


class _Table:
    """Typed reads from one config table; every error names ``scanners.<id>.<key>``."""

    def __init__(self, scanner_id: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        self.where = f"scanners.{scanner_id}"
        self.table = table
        for key in table:
            if key not in allowed:
                raise ConfigError(f"{self.where}.{key}", "unknown key")

    def get(self, key: str, kind: type, default: Any) -> Any:
        value = self.table.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}.{key}", "is required")
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{self.where}.{key}", f"must be {kind.__name__}, got {value!r}")
        return value

    def positive(self, key: str, default: int | None) -> int:
        value: int = self.get(key, int, default)
        if value <= 0:
            raise ConfigError(f"{self.where}.{key}", f"must be > 0, got {value}")
        return value

    def choice(self, key: str, enum_type: Any, default: str) -> Any:
        value = self.get(key, str, default)
        try:
            return enum_type(value.upper())
        except ValueError:
            names = ", ".join(m.value for m in enum_type)
            raise ConfigError(f"{self.where}.{key}", f"must be one of {names}") from None


def _framer(t: _Table, *, prefix: bytes) -> SerialFramer:
    return SerialFramer(
        t.choice("suffix", Terminator, "CR"),
        prefix=prefix,
        aim=t.get("aim", bool, True),
        idle_gap_s=t.positive("idle_gap_ms", 50) / 1000,
        suffix_timeout_s=t.positive("suffix_timeout_ms", 1000) / 1000,
        missing_suffix=t.choice("missing_suffix", MissingSuffix, "FLUSH"),
        max_length=t.positive("max_length", 8192),
    )


def _prefix_bytes(t: _Table) -> bytes:
    """The prefix as the bytes on the wire: one character per byte (``"\u0002"`` is STX)."""
    text: str = t.get("prefix", str, "")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{t.where}.prefix", "one byte per character: use \\u0000..\\u00ff escapes"
        ) from None


def build_backend(
    scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
) -> ScannerBackend:
    """The backend described by one ``[scanners.<id>]`` table (nothing is opened yet)."""
    kind = table.get("kind")
    if kind == "serial":
        from daemon.scanners.serial_port import SerialScanner

        t = _Table(scanner_id, table, _SERIAL)
        framer = _framer(t, prefix=_prefix_bytes(t))
        return SerialScanner(t.get("url", str, None), framer, baudrate=t.positive("baudrate", 9600))
    if kind == "wedge":
        from daemon.scanners.wedge import KeyboardWedgeScanner, evdev_available

        t = _Table(scanner_id, table, _WEDGE)
        framer = _framer(t, prefix=b"")
        if framer.terminator not in (Terminator.CR, Terminator.NONE):
            raise ConfigError(f"{t.where}.suffix", "a keyboard wedge ends codes with CR or NONE")
        if not evdev_available():
            raise ConfigError(
                f"{t.where}.kind", "a keyboard wedge needs python-evdev (carddaemon[wedge])"
            )
        grab = t.get("grab", bool, True)
        return KeyboardWedgeScanner(t.get("path", str, None), framer, grab=grab)
    if kind == "hidpos":
        from daemon.scanners.usb_hidpos import HidPosScanner

        t = _Table(scanner_id, table, _HIDPOS)
        vid, pid = t.get("vid", int, None), t.get("pid", int, None)
        for key, value in (("vid", vid), ("pid", pid)):
            if not 0 < value <= 0xFFFF:
                raise ConfigError(f"{t.where}.{key}", f"must be 1..0xFFFF, got {value}")
        path = t.get("port_path", list, [])
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in path):
            raise ConfigError(f"{t.where}.port_path", "must be a list of port numbers")
        return HidPosScanner(
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
    raise ConfigError(f"scanners.{scanner_id}.kind", f"must be one of {', '.join(KINDS)}")


def build_scanner(
    scanner_id: str,
    table: Mapping[str, Any],
    sink: ScanSink,
    *,
    usb_backend: Any = None,
) -> Scanner:
    """A :class:`Scanner` (not started) for one config table; ``one_shot`` is applied to ``sink``
    when it supports it (a :class:`~daemon.scanners.stream.ScanStream`)."""
    backend = build_backend(scanner_id, table, usb_backend=usb_backend)
    t = _Table(scanner_id, table, _SERIAL | _HIDPOS | _WEDGE)
    one_shot = t.get("one_shot", bool, False)
    set_one_shot = getattr(sink, "set_one_shot", None)
    if one_shot and set_one_shot is None:
        raise ConfigError(f"{t.where}.one_shot", "this sink cannot disable a scanner")
    if set_one_shot is not None:
        set_one_shot(scanner_id, one_shot)
    backoff = t.positive("backoff_max_ms", 2000) / 1000
    return Scanner(
        scanner_id, backend, sink, backoff_initial_s=min(0.05, backoff), backoff_max_s=backoff
    )
