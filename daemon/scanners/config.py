"""Building scanners from the ``[scanners.<id>]`` tables of the daemon's TOML config.

Validation happens here and in each backend's ``from_config``, once, with errors that name the
key (``scanners.front.suffix``). ``backend`` names the backend through :mod:`daemon.registry`
(built-ins ``serial``, ``hidpos``, ``wedge``, plus entry points such as the simulator's
``sim``); its module imports pyserial/pyusb only when a device opens.

    [scanners.front]              [scanners.lane2]
    backend = "serial"            backend = "hidpos"
    url = "/dev/serial/by-id/..." vid = 0x0c2e
    baudrate = 9600               pid = 0x0b61
    suffix = "CR"                 port_path = [1, 4]   # optional: this USB port only
    aim = true                    enable_report = true # Honeywell: switch on HID-POS reports

    [scanners.kbw]                # keyboard wedge, grabbed so it types into no window
    backend = "wedge"
    path = "/dev/input/by-id/usb-SCANNER-event-kbd"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon import registry
from daemon.errors import ConfigError
from daemon.scanners.base import ScannerBackend
from daemon.scanners.options import ScannerTable
from daemon.scanners.worker import Scanner, ScanSink

__all__ = ["build_backend", "build_scanner"]


def _backend_class(scanner_id: str, table: Mapping[str, Any]) -> type[ScannerBackend]:
    where = f"scanners.{scanner_id}"
    known = ", ".join(registry.names("scanners"))
    if "kind" in table:
        raise ConfigError(
            f"{where}.kind",
            f"'kind' is now 'backend': write backend = {table['kind']!r} (known: {known})",
        )
    name = table.get("backend")
    if not isinstance(name, str):
        what = "is required" if name is None else f"must be a string, got {name!r}"
        raise ConfigError(f"{where}.backend", f"{what} (known: {known})")
    cls = registry.load("scanners", name, key=f"{where}.backend")
    if not issubclass(cls, ScannerBackend):
        raise ConfigError(
            f"{where}.backend", f"{cls.__module__}.{cls.__qualname__} is not a ScannerBackend"
        )
    return cls


def build_backend(
    scanner_id: str, table: Mapping[str, Any], *, usb_backend: Any = None
) -> ScannerBackend:
    """The backend described by one ``[scanners.<id>]`` table (nothing is opened yet)."""
    cls = _backend_class(scanner_id, table)
    return cls.from_config(scanner_id, table, usb_backend=usb_backend)


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
    t = ScannerTable(scanner_id, table, table.keys())  # the backend has checked its keys
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
