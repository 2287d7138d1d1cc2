"""Typed printer status from the four ``DLE EOT`` real-time replies.

Every ``DLE EOT`` reply has the fixed pattern ``0xx1xx10`` (bit 1 and bit 4 set, bits 0 and 7
clear); anything else is rejected rather than guessed at, so a stray data byte is never read as
"paper OK". ``GS r 1`` replies (answered in buffer order, used to confirm a job was printed)
have bit 4 clear, which is how the reader tells them apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.errors import PrinterError

__all__ = ["PrinterStatus", "is_dle_eot_reply", "is_gs_r_reply", "parse_status"]

logger = logging.getLogger(__name__)


def is_dle_eot_reply(byte: int) -> bool:
    """True for the ``0xx1xx10`` pattern of a ``DLE EOT`` answer."""
    return byte & 0x93 == 0x12


def is_gs_r_reply(byte: int) -> bool:
    """True for a ``GS r 1`` paper-sensor answer (bits 4 and 7 clear)."""
    return byte & 0x90 == 0x00


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said about itself; ``reachable`` is False when it did not answer."""

    reachable: bool = True
    online: bool = True
    drawer_open: bool | None = False  # None: this printer/drawer does not report it
    cover_open: bool = False
    feed_button: bool = False
    paper_end_stop: bool = False
    error: bool = False
    cutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    paper_near_end: bool = False
    paper_end: bool = False

    @property
    def ready(self) -> bool:
        """Can a job be sent and expected to print now?"""
        return (
            self.reachable
            and self.online
            and not (self.cover_open or self.paper_end or self.paper_end_stop)
            and not (self.cutter_error or self.unrecoverable_error or self.error)
        )

    @property
    def problem(self) -> str:
        """Stable short name of the most important problem, or ``""`` when ready."""
        checks = (
            (not self.reachable, "UNREACHABLE"),
            (self.cover_open, "COVER_OPEN"),
            (self.paper_end or self.paper_end_stop, "PAPER_OUT"),
            (self.cutter_error, "CUTTER_ERROR"),
            (self.unrecoverable_error, "UNRECOVERABLE_ERROR"),
            (self.error or self.auto_recoverable_error, "ERROR"),
            (not self.online, "OFFLINE"),
        )
        return next((name for bad, name in checks if bad), "")

    @classmethod
    def unreachable(cls) -> PrinterStatus:
        return cls(reachable=False, online=False)


def parse_status(reply: bytes, drawer_open_level: bool = True) -> PrinterStatus:
    """Decode the 4 bytes answering ``DLE EOT 1, 2, 3, 4`` (in that order).

    ``drawer_open_level`` says whether pin 3 HIGH means open: it depends on the drawer wiring.
    """
    if len(reply) != 4:
        raise PrinterError(f"status reply: expected 4 bytes to DLE EOT 1..4, got {len(reply)}")
    for n, byte in enumerate(reply, start=1):
        if not is_dle_eot_reply(byte):
            raise PrinterError(f"status reply: DLE EOT {n} answered 0x{byte:02X}, bad pattern")
    printer, offline, error, paper = reply
    pin3_high = bool(printer & 0x04)
    return PrinterStatus(
        online=not printer & 0x08,
        drawer_open=pin3_high == drawer_open_level,
        cover_open=bool(offline & 0x04),
        feed_button=bool(offline & 0x08),
        paper_end_stop=bool(offline & 0x20),
        error=bool(offline & 0x40),
        cutter_error=bool(error & 0x08),
        unrecoverable_error=bool(error & 0x20),
        auto_recoverable_error=bool(error & 0x40),
        paper_near_end=bool(paper & 0x0C),
        paper_end=bool(paper & 0x60),
    )
