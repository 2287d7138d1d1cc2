"""A card image as a dump file holds it, and reading one safely from disk.

Why a model above the raw bytes: dump files differ in what they *know*. A file written by
MIFARE Classic Tool or a Proxmark holds the keys the tool used, so a non-zero key A in its
trailer is a key, not the anomaly it would be in bytes read back from a chip; MCT marks the
bytes it could not read (``--``); a dump made from a card through the daemon knows no key at
all. :class:`CardImage` carries the bytes plus that knowledge, and
:meth:`CardImage.decode` hands both to :func:`daemon.mifare.dump.decode_dump`.

Reading is bounded: a dump is a few KiB, so :func:`read_dump_bytes` refuses anything that is
not a regular file (a FIFO, ``/dev/zero``, a terminal) before reading a byte, and reads at most
:data:`MAX_DUMP_FILE_BYTES`. The formats themselves live in :mod:`daemon.mifare.dumpformats`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from daemon.errors import InvalidArgument
from daemon.mifare.block0 import bcc
from daemon.mifare.dump import CardDump, decode_dump
from daemon.mifare.geometry import (
    BLOCK_SIZE,
    CardSize,
    block_count,
    sector_blocks,
    sector_count,
    trailer_block,
)

__all__ = [
    "MAX_DUMP_FILE_BYTES",
    "CardImage",
    "KeysKnown",
    "guess_uid_length",
    "read_dump_bytes",
]

logger = logging.getLogger(__name__)

#: the largest dump file read: a 4K card as Proxmark JSON with its access texts is ~60 KiB
MAX_DUMP_FILE_BYTES: Final = 256 * 1024

#: per sector, whether the trailer holds the real key A and key B
KeysKnown = tuple[bool, bool]
_BOTH: Final = (True, True)


def guess_uid_length(block0: bytes) -> int:
    """What a file that does not say leaves us: 4 when block 0 has a matching BCC; 7 when it
    has none but a double-size ATQA where a 7-byte UID puts it (bytes 8-9, ``44 00``); else 4,
    so a broken 4-byte block 0 is reported as one (BCC) rather than read as a 7-byte UID."""
    if bcc(block0[0:4]) == block0[4]:
        return 4
    return 7 if block0[8] & 0xC0 == 0x40 and block0[9] == 0 else 4


@dataclass(frozen=True)
class CardImage:
    """A whole card image and what is known of it.

    ``data`` holds every block (unknown bytes as 00). ``unread``: blocks the dump does not have.
    ``keys``: sector -> (key A known, key B known) for a dump file; ``None`` for bytes read from
    a card, whose trailers hold what a chip returns (zeros), not keys. ``format`` is the format
    it was read from; ``notes`` say what the reader had to assume.
    """

    size: CardSize
    data: bytes = field(repr=False)
    unread: frozenset[int] = frozenset()
    keys: Mapping[int, KeysKnown] | None = field(default=None, repr=False)
    uid_length: int = 4
    format: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        want = block_count(self.size) * BLOCK_SIZE
        if len(self.data) != want:
            raise InvalidArgument(
                "card image", f"{len(self.data)} bytes, a {self.size.label} has {want}"
            )
        if self.uid_length not in (4, 7):
            raise InvalidArgument("uid length", f"must be 4 or 7, got {self.uid_length}")

    @classmethod
    def from_blocks(
        cls,
        size: CardSize,
        blocks: Mapping[int, bytes],
        *,
        uid_length: int | None = None,
        keys: Mapping[int, KeysKnown] | None = None,
        format: str = "",
        notes: tuple[str, ...] = (),
    ) -> CardImage:
        """An image of the blocks given; the others are unread. ``keys=None``: read from a card
        (no key known, as the daemon's DumpCard returns them)."""
        data = bytearray(block_count(size) * BLOCK_SIZE)
        for n, raw in blocks.items():
            if len(raw) != BLOCK_SIZE:
                raise InvalidArgument(f"block {n}", f"{len(raw)} bytes, a block has {BLOCK_SIZE}")
            data[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE] = raw
        unread = frozenset(range(block_count(size))) - set(blocks)
        if uid_length is None:
            uid_length = 4 if 0 in unread else guess_uid_length(bytes(data[:BLOCK_SIZE]))
        return cls(size, bytes(data), unread, keys, uid_length, format, notes)

    @classmethod
    def from_file_bytes(
        cls, raw: bytes, *, format: str, uid_length: int | None = None
    ) -> CardImage:
        """A whole image from a file that holds the keys of every trailer (.mfd, .eml)."""
        size = next((s for s in CardSize if block_count(s) * BLOCK_SIZE == len(raw)), None)
        if size is None:
            raise InvalidArgument(
                "card image", f"{len(raw)} bytes is not a MIFARE Mini/1K/4K image"
            )
        keys = dict.fromkeys(range(sector_count(size)), _BOTH)
        length = uid_length or guess_uid_length(raw[:BLOCK_SIZE])
        return cls(size, raw, frozenset(), keys, length, format)

    @property
    def uid(self) -> bytes:
        return b"" if 0 in self.unread else self.data[: self.uid_length]

    def block(self, n: int) -> bytes | None:
        """Block ``n``, or ``None`` when the dump does not have it."""
        if n in self.unread:
            return None
        return self.data[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]

    def keys_known(self, sector: int) -> KeysKnown:
        """Whether the trailer of ``sector`` holds its real key A / key B."""
        if self.keys is None or trailer_block(sector, self.size) in self.unread:
            return (False, False)
        return self.keys.get(sector, (False, False))

    def sectors_read(self) -> list[int]:
        """Sectors of which the dump has at least one block."""
        return [
            s
            for s in range(sector_count(self.size))
            if any(b not in self.unread for b in sector_blocks(s, self.size))
        ]

    def decode(self) -> CardDump:
        """The decoded card; trailer keys of a dump file are keys, not read-back anomalies."""
        key_file = None
        if self.keys is not None:
            key_file = {s: self.keys_known(s) for s in range(sector_count(self.size))}
        return decode_dump(
            self.data, uid_length=self.uid_length, unread=self.unread, key_file=key_file
        )


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def read_dump_bytes(path: Path, limit: int = MAX_DUMP_FILE_BYTES) -> bytes:
    """The bytes of a dump file, or :class:`InvalidArgument` naming the file: never blocks on a
    FIFO (opened non-blocking, refused by its type), never reads a device file, never more than
    ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InvalidArgument(str(path), f"cannot open ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:
            raise InvalidArgument(str(path), f"is {kind}, not a dump file")
        if st.st_size > limit:
            raise InvalidArgument(
                str(path), f"{st.st_size} bytes is larger than any card dump (at most {limit})"
            )
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            raw = fh.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(raw) > limit:  # grew while we looked
        raise InvalidArgument(str(path), f"is larger than any card dump (at most {limit} bytes)")
    logger.debug("read %d bytes of %s", len(raw), path)
    return raw
