"""What subscribers of the scan stream receive, and how events are masked per role.

Only the POS role sees payment codes and member tokens in clear; technicians, issuers and any
other viewer get the redacted text (``1012**********3456``). ``repr`` never shows sensitive
text, so an event logged by accident does not leak it either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from daemon.scanners.base import ScannerState
from daemon.scanners.classify import Classification

__all__ = ["Role", "ScanEvent", "StatusEvent", "StreamEvent"]


class Role(enum.StrEnum):
    """Who is listening; matches the daemon's listener roles."""

    POS = "pos"
    TECHNICIAN = "technician"
    ISSUER = "issuer"


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """One scan, in stream order. ``masked`` tells that ``text`` is the redacted form."""

    sequence: int
    scanner_id: str
    text: str = field(repr=False)
    redacted: str = field(repr=False)
    aim: str | None
    classification: Classification
    received_ns: int
    published_ns: int
    suffix_missing: bool = False
    masked: bool = False

    def for_role(self, role: Role) -> ScanEvent:
        """This event as ``role`` may see it."""
        if role is Role.POS or self.masked or not self.classification.sensitive:
            return self
        return replace(self, text=self.redacted, masked=True)

    def __repr__(self) -> str:
        shown = self.redacted if self.classification.sensitive else self.text
        return (
            f"ScanEvent(sequence={self.sequence}, scanner_id={self.scanner_id!r}, "
            f"kind={self.classification.kind.value}, text={shown!r}, aim={self.aim!r})"
        )


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A scanner connected, went away, or was closed."""

    sequence: int
    scanner_id: str
    state: ScannerState
    detail: str
    published_ns: int

    def for_role(self, role: Role) -> StatusEvent:
        return self


StreamEvent = ScanEvent | StatusEvent
