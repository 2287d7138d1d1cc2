"""Sector trailer: key A (0-5), access bits (6-8), general purpose byte (9), key B (10-15).

Two shapes, because a trailer as *written* and a trailer as *read back* are different things:
a chip never returns key A and returns key B only where the access bits make it readable
(zeros otherwise). Keys are kept out of ``repr`` so a logged trailer never leaks them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from daemon.errors import InvalidArgument
from daemon.mifare._bytes import require_bytes
from daemon.mifare.access import TRANSPORT, AccessConditions
from daemon.mifare.geometry import BLOCK_SIZE, KEY_SIZE

__all__ = [
    "DEFAULT_GPB",
    "DEFAULT_KEY",
    "SectorTrailer",
    "TrailerReadback",
    "build_trailer",
    "parse_trailer_read",
    "transport_trailer",
]

logger = logging.getLogger(__name__)

DEFAULT_KEY = b"\xff" * KEY_SIZE
"""Factory key A and key B of a new card."""
DEFAULT_GPB = 0x69
"""General purpose byte most cards ship with (``FF 07 80 69``)."""

_ZERO_KEY = bytes(KEY_SIZE)


def _check_key(name: str, key: object) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        shown = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
        raise InvalidArgument(name, f"must be {KEY_SIZE} bytes, got {shown}")
    return bytes(key)


def _check_gpb(gpb: object) -> int:
    if not isinstance(gpb, int) or isinstance(gpb, bool) or not 0 <= gpb <= 0xFF:
        raise InvalidArgument("GPB", f"general purpose byte must be 0..255, got {gpb!r}")
    return gpb


@dataclass(frozen=True)
class SectorTrailer:
    """A trailer to write: both keys known. ``repr`` hides the keys."""

    key_a: bytes = field(repr=False)
    access: AccessConditions
    key_b: bytes = field(repr=False)
    gpb: int = DEFAULT_GPB

    def __post_init__(self) -> None:
        _check_key("key A", self.key_a)
        _check_key("key B", self.key_b)
        _check_gpb(self.gpb)
        if not isinstance(self.access, AccessConditions):
            raise InvalidArgument("access", "expected AccessConditions")

    @classmethod
    def from_bytes(cls, data: object, *, block: int | None = None) -> SectorTrailer:
        """Parse a trailer whose keys are real (a dump file with keys, a build plan).

        For bytes read from a card use :func:`parse_trailer_read`: keys read back are not keys.
        """
        raw = require_bytes(data, "trailer", BLOCK_SIZE, block)
        access = AccessConditions.from_bytes(raw[6:9], block=block)
        return cls(raw[0:6], access, raw[10:16], raw[9])

    def to_bytes(self, *, allow_permanent_lock: bool = False) -> bytes:
        """The 16 bytes to write; refuses a permanent lock unless the technician flag is set."""
        access = self.access.to_bytes(allow_permanent_lock=allow_permanent_lock)
        return self.key_a + access + bytes((self.gpb,)) + self.key_b


def build_trailer(
    key_a: bytes,
    access: AccessConditions,
    key_b: bytes,
    gpb: int = DEFAULT_GPB,
    *,
    allow_permanent_lock: bool = False,
) -> bytes:
    """Build trailer bytes for a WRITE. See :meth:`SectorTrailer.to_bytes` for the safety rule."""
    trailer = SectorTrailer(key_a, access, key_b, gpb)
    return trailer.to_bytes(allow_permanent_lock=allow_permanent_lock)


def transport_trailer() -> bytes:
    """Factory trailer ``FF..FF FF 07 80 69 FF..FF``: erase target for a personalisation station."""
    return build_trailer(DEFAULT_KEY, TRANSPORT, DEFAULT_KEY)


@dataclass(frozen=True)
class TrailerReadback:
    """A trailer as a READ returned it.

    ``key_b`` is the readable key B when the access bits make it readable, else ``None``.
    ``key_a_nonzero`` flags a card (or emulator) that returned key A bytes, which a genuine
    chip never does.
    """

    access: AccessConditions
    gpb: int
    key_b_readable: bool
    key_b: bytes | None = field(repr=False)
    key_a_nonzero: bool = False
    key_b_nonzero_unreadable: bool = False

    @property
    def anomalies(self) -> tuple[str, ...]:
        """Things a genuine chip would not have returned."""
        found = []
        if self.key_a_nonzero:
            found.append("key A read back non-zero (a genuine chip returns zeros)")
        if self.key_b_nonzero_unreadable:
            found.append("key B read back non-zero although not readable")
        return tuple(found)


def parse_trailer_read(data: object, *, block: int | None = None) -> TrailerReadback:
    """Decode 16 bytes read from a trailer block.

    Raises :class:`~daemon.errors.MalformedBlock` naming the block and field when the length
    or the access bits are wrong.
    """
    raw = require_bytes(data, "trailer", BLOCK_SIZE, block)
    access = AccessConditions.from_bytes(raw[6:9], block=block)
    readable = access.key_b_readable
    key_b = raw[10:16]
    return TrailerReadback(
        access=access,
        gpb=raw[9],
        key_b_readable=readable,
        key_b=key_b if readable else None,
        key_a_nonzero=raw[0:6] != _ZERO_KEY,
        key_b_nonzero_unreadable=not readable and key_b != _ZERO_KEY,
    )
