"""Reassembling HID-POS (usage page 0x8C, Bar Code Scanner) input reports into scans.

Vendor-typical input report, 64 bytes on the interrupt IN endpoint::

    [0]      report ID 0x02 (scanned data report)
    [1]      data length in this report (0..56)
    [2:5]    AIM symbology identifier "]cm" (zeros when the scanner does not send one)
    [5:61]   data
    [61:63]  vendor bytes (Honeywell code id) -- ignored
    [63]     continuation flag: non-zero = more reports follow for this code

Codes longer than one report arrive as several reports; only the first one's AIM id counts.
Pure logic (time passed in), so malformed and interrupted sequences are plain unit tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.scanners.aim import split_aim
from daemon.scanners.base import RawScan

__all__ = ["SCAN_REPORT_ID", "HidPosAssembler", "HidPosStats"]

logger = logging.getLogger(__name__)

SCAN_REPORT_ID = 0x02
_HEADER = 5  # report id, length, 3-byte AIM id


@dataclass(slots=True)
class HidPosStats:
    reports: int = 0
    scans: int = 0
    ignored_reports: int = 0  # other report IDs (status, vendor)
    malformed: int = 0
    abandoned: int = 0  # continuation never completed


class HidPosAssembler:
    """Joins continuation reports; drops a half-assembled code after ``timeout_s`` of silence."""

    def __init__(self, *, timeout_s: float = 1.0, max_length: int = 8192) -> None:
        self._timeout_ns = int(timeout_s * 1e9)
        self.max_length = max_length
        self._parts = bytearray()
        self._aim: str | None = None
        self._pending = False
        self._last_ns = 0
        self.stats = HidPosStats()

    def feed(self, report: bytes, now_ns: int) -> RawScan | None:
        """Add one input report; return a scan when it completes one."""
        self.stats.reports += 1
        self.expire(now_ns)
        if not report or report[0] != SCAN_REPORT_ID:
            self.stats.ignored_reports += 1
            return None
        if len(report) < _HEADER + 1:
            self._malformed(f"report of {len(report)} bytes is shorter than its header")
            return None
        length = report[1]
        flag_at = len(report) - 1
        if _HEADER + length > flag_at:
            self._malformed(f"length byte {length} overruns a {len(report)}-byte report")
            return None
        if not self._pending:
            aim_id = bytes(report[2:5])
            self._aim = aim_id.decode("ascii") if split_aim(aim_id)[0] else None
        self._parts += report[_HEADER : _HEADER + length]
        self._last_ns = now_ns
        if len(self._parts) > self.max_length:
            self._malformed(f"code longer than max_length {self.max_length}")
            return None
        if report[flag_at]:
            self._pending = True
            return None
        data, aim = bytes(self._parts), self._aim
        self._reset()
        if not data:
            return None
        self.stats.scans += 1
        return RawScan(data=data, aim=aim, received_ns=now_ns)

    def expire(self, now_ns: int) -> None:
        """Drop a continuation that stalled (scanner unplugged or a report lost)."""
        if self._pending and now_ns - self._last_ns >= self._timeout_ns:
            self.abandon("continuation report did not arrive in time")

    def abandon(self, why: str) -> None:
        if self._pending:
            self.stats.abandoned += 1
            logger.warning("HID-POS partial code of %d bytes dropped: %s", len(self._parts), why)
        self._reset()

    def _malformed(self, why: str) -> None:
        self.stats.malformed += 1
        logger.warning("HID-POS malformed report: %s", why)
        self._reset()

    def _reset(self) -> None:
        self._parts.clear()
        self._aim = None
        self._pending = False
