"""Cutting a serial scanner's byte stream into scans.

Serial scanners send ``[prefix][AIM id]data[suffix]`` with a configured suffix (CR, LF, CRLF) or
none at all. Bytes arrive in arbitrary pieces (USB-serial adapters flush every few ms), lines pick
up noise when a scanner powers up (NUL, 0xFF), and a misconfigured scanner may never send the
suffix. The framer is pure (no I/O, time passed in) so every edge case is a plain unit test.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from daemon.errors import ConfigError
from daemon.scanners.aim import split_aim
from daemon.scanners.base import RawScan

__all__ = ["FramingStats", "MissingSuffix", "SerialFramer", "Terminator"]

logger = logging.getLogger(__name__)


class Terminator(enum.StrEnum):
    """The suffix a serial scanner is programmed to send after each code."""

    CR = "CR"
    LF = "LF"
    CRLF = "CRLF"
    NONE = "NONE"  # frames end after an idle gap

    @property
    def suffix(self) -> bytes:
        return {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "NONE": b""}[self.value]


class MissingSuffix(enum.StrEnum):
    """What to do with bytes left without a suffix when the line goes quiet."""

    FLUSH = "FLUSH"  # deliver them as a scan marked ``suffix_missing``
    DISCARD = "DISCARD"  # drop them (counted, logged by length only)


# Line noise: NUL and 0xFF appear when a scanner powers up or a cable is (un)plugged.
_NOISE_DELETE = b"\x00\xff"
# Control bytes trimmed at the ends of a frame; GS/RS/EOT are GS1/ISO 15434 separators and stay.
_TRIM = bytes(c for c in range(0x20) if c not in (0x04, 0x1D, 0x1E))


@dataclass(slots=True)
class FramingStats:
    """Counters a technician can read to see why scans went missing."""

    frames: int = 0
    noise_bytes: int = 0
    empty_frames: int = 0
    no_prefix: int = 0
    missing_suffix: int = 0
    discarded: int = 0
    overflows: int = 0


class SerialFramer:
    """Stateful byte-stream → :class:`RawScan` splitter for one serial scanner."""

    def __init__(
        self,
        terminator: Terminator = Terminator.CR,
        *,
        prefix: bytes = b"",
        aim: bool = True,
        idle_gap_s: float = 0.05,
        suffix_timeout_s: float = 1.0,
        missing_suffix: MissingSuffix = MissingSuffix.FLUSH,
        max_length: int = 8192,
    ) -> None:
        if idle_gap_s <= 0:
            raise ConfigError("idle_gap_s", f"must be > 0, got {idle_gap_s}")
        if suffix_timeout_s <= 0:
            raise ConfigError("suffix_timeout_s", f"must be > 0, got {suffix_timeout_s}")
        if max_length < 16:
            raise ConfigError("max_length", f"must be at least 16 bytes, got {max_length}")
        self.terminator = terminator
        self.prefix = prefix
        self.aim = aim
        self.missing_suffix = missing_suffix
        self.max_length = max_length
        # In NONE mode the idle gap *is* the frame end; otherwise it only rescues stuck bytes.
        gap = idle_gap_s if terminator is Terminator.NONE else suffix_timeout_s
        self._gap_ns = int(gap * 1e9)
        self._buf = bytearray()
        self._last_ns = 0
        self._overflowing = False  # dropping an over-long run until the next frame boundary
        self.stats = FramingStats()

    def feed(self, chunk: bytes, now_ns: int) -> list[RawScan]:
        """Add bytes that arrived at ``now_ns``; return the scans they completed."""
        cleaned = chunk.translate(None, _NOISE_DELETE)
        self.stats.noise_bytes += len(chunk) - len(cleaned)
        if not chunk:
            return []
        self._last_ns = now_ns
        self._buf += cleaned
        out: list[RawScan] = []
        suffix = self.terminator.suffix
        if suffix:
            while (end := self._buf.find(suffix)) >= 0:
                frame = bytes(self._buf[:end])
                del self._buf[: end + len(suffix)]
                if self._overflowing:
                    self._overflowing = False  # the tail of the over-long code: drop it
                    continue
                scan = self._finish(frame, now_ns, suffix_missing=False)
                if scan is not None:
                    out.append(scan)
        if len(self._buf) > self.max_length:
            self._overflow(len(self._buf))
            self._buf.clear()
            self._overflowing = True
        elif self._overflowing:
            self._buf.clear()
        return out

    def poll(self, now_ns: int) -> list[RawScan]:
        """Close a frame when the line has been quiet for the gap; call at :meth:`deadline_ns`."""
        if now_ns - self._last_ns < self._gap_ns:
            return []
        self._overflowing = False
        if not self._buf:
            return []
        frame = bytes(self._buf)
        self._buf.clear()
        if self.terminator is Terminator.NONE:
            scan = self._finish(frame, self._last_ns, suffix_missing=False)
            return [] if scan is None else [scan]
        self.stats.missing_suffix += 1
        if self.missing_suffix is MissingSuffix.DISCARD:
            self.stats.discarded += 1
            logger.warning(
                "scanner sent %d bytes without the %s suffix; discarded",
                len(frame),
                self.terminator,
            )
            return []
        logger.warning(
            "scanner sent %d bytes without the %s suffix; delivered after %.0f ms idle",
            len(frame),
            self.terminator,
            self._gap_ns / 1e6,
        )
        scan = self._finish(frame, self._last_ns, suffix_missing=True)
        return [] if scan is None else [scan]

    def deadline_ns(self) -> int | None:
        """When :meth:`poll` must run next (monotonic ns), or None when nothing is pending."""
        if self._buf or self._overflowing:
            return self._last_ns + self._gap_ns
        return None

    def reset(self) -> None:
        """Forget a partial frame (the device went away mid-code)."""
        if self._buf:
            self.stats.discarded += 1
            logger.warning("scanner went away with %d bytes of a partial code", len(self._buf))
        self._buf.clear()
        self._overflowing = False

    def _overflow(self, length: int) -> None:
        self.stats.overflows += 1
        logger.warning(
            "scanner sent %d bytes without a frame end (max_length %d); dropped",
            length,
            self.max_length,
        )

    def _finish(self, frame: bytes, when_ns: int, *, suffix_missing: bool) -> RawScan | None:
        if self.prefix:
            start = frame.find(self.prefix)
            if start < 0:
                self.stats.no_prefix += 1
                logger.warning("scanner frame of %d bytes lacks the prefix; dropped", len(frame))
                return None
            self.stats.noise_bytes += start
            frame = frame[start + len(self.prefix) :]
        frame = frame.strip(_TRIM)
        if len(frame) > self.max_length:
            self._overflow(len(frame))
            return None
        aim: str | None = None
        if self.aim:
            aim, frame = split_aim(frame)
        if not frame:
            self.stats.empty_frames += 1
            return None
        self.stats.frames += 1
        return RawScan(data=frame, aim=aim, received_ns=when_ns, suffix_missing=suffix_missing)
