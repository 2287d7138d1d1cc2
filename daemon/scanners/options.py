"""Typed reads from one ``[scanners.<id>]`` table, shared by the scanner backends' builders.

Each backend class builds itself from its table (``from_config``); the reads and the framer
options several of them share live once here, every error naming ``scanners.<id>.<key>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from daemon.errors import ConfigError
from daemon.scanners.base import COMMON_KEYS
from daemon.scanners.framing import MissingSuffix, SerialFramer, Terminator

__all__ = ["FRAMER_KEYS", "ScannerTable", "prefix_bytes", "serial_framer"]

#: the keys :func:`serial_framer` reads
FRAMER_KEYS = frozenset(
    {"suffix", "aim", "idle_gap_ms", "suffix_timeout_ms", "missing_suffix", "max_length"}
)


class ScannerTable:
    """One table; unknown keys (outside ``allowed`` and the common keys) are refused at once."""

    def __init__(self, scanner_id: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
        self.where = f"scanners.{scanner_id}"
        self.table = table
        known = COMMON_KEYS | set(allowed)
        for key in table:
            if key not in known:
                raise ConfigError(
                    f"{self.where}.{key}", f"unknown key (valid here: {', '.join(sorted(known))})"
                )

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


def serial_framer(t: ScannerTable, *, prefix: bytes) -> SerialFramer:
    """The framer of a byte-stream scanner (serial port, keyboard wedge)."""
    return SerialFramer(
        t.choice("suffix", Terminator, "CR"),
        prefix=prefix,
        aim=t.get("aim", bool, True),
        idle_gap_s=t.positive("idle_gap_ms", 50) / 1000,
        suffix_timeout_s=t.positive("suffix_timeout_ms", 1000) / 1000,
        missing_suffix=t.choice("missing_suffix", MissingSuffix, "FLUSH"),
        max_length=t.positive("max_length", 8192),
    )


def prefix_bytes(t: ScannerTable) -> bytes:
    """The prefix as the bytes on the wire: one character per byte (``"\u0002"`` is STX)."""
    text: str = t.get("prefix", str, "")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{t.where}.prefix", "one byte per character: use \\u0000..\\u00ff escapes"
        ) from None
