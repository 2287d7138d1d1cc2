"""Block and sector arithmetic for MIFARE Classic Mini, 1K and 4K.

Every other MIFARE module asks this one where a block lives, so the 4K's uneven layout
(32 sectors of 4 blocks, then 8 sectors of 16 blocks) is written down exactly once.
"""

from __future__ import annotations

import enum
import logging

from daemon.errors import BlockNotFound

__all__ = [
    "BLOCK_SIZE",
    "KEY_SIZE",
    "MANUFACTURER_BLOCK",
    "CardSize",
    "access_group",
    "block_count",
    "blocks_in_sector",
    "check_block",
    "check_sector",
    "data_blocks",
    "first_block",
    "is_manufacturer_block",
    "is_trailer",
    "sector_blocks",
    "sector_count",
    "sector_of_block",
    "size_for_image_length",
    "trailer_block",
]

logger = logging.getLogger(__name__)

BLOCK_SIZE = 16
KEY_SIZE = 6
MANUFACTURER_BLOCK = 0

_SMALL_SECTOR_BLOCKS = 4
_LARGE_SECTOR_BLOCKS = 16
# 4K: sectors 0..31 have 4 blocks (blocks 0..127), sectors 32..39 have 16 (blocks 128..255).
_4K_SMALL_SECTORS = 32


class CardSize(enum.Enum):
    """The three MIFARE Classic memory sizes; the value is the number of sectors."""

    MINI = 5
    CLASSIC_1K = 16
    CLASSIC_4K = 40

    @property
    def label(self) -> str:
        """Name a technician recognises, used in error messages."""
        return _LABELS[self]


_LABELS = {
    CardSize.MINI: "MIFARE Mini",
    CardSize.CLASSIC_1K: "MIFARE Classic 1K",
    CardSize.CLASSIC_4K: "MIFARE Classic 4K",
}


def sector_count(size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Number of sectors on a card of this size."""
    return int(size.value)


def block_count(size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Number of 16-byte blocks on a card of this size (20, 64 or 256)."""
    if size is CardSize.CLASSIC_4K:
        return _4K_SMALL_SECTORS * _SMALL_SECTOR_BLOCKS + 8 * _LARGE_SECTOR_BLOCKS
    return int(size.value) * _SMALL_SECTOR_BLOCKS


def size_for_image_length(length: int) -> CardSize:
    """Card size of a raw image of ``length`` bytes (320, 1024 or 4096)."""
    for size in CardSize:
        if block_count(size) * BLOCK_SIZE == length:
            return size
    raise BlockNotFound(f"image of {length} bytes is not a MIFARE Mini/1K/4K card (320/1024/4096)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_block(block: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Return ``block`` if it exists on this card, else raise :class:`BlockNotFound` naming it."""
    if not _is_int(block):
        raise BlockNotFound(f"block {block!r} is not a block number")
    if not 0 <= block < block_count(size):
        raise BlockNotFound(
            f"block {block} does not exist on a {size.label} (blocks 0..{block_count(size) - 1})"
        )
    return block


def check_sector(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Return ``sector`` if it exists on this card, else raise :class:`BlockNotFound` naming it."""
    if not _is_int(sector):
        raise BlockNotFound(f"sector {sector!r} is not a sector number")
    if not 0 <= sector < sector_count(size):
        raise BlockNotFound(
            f"sector {sector} does not exist on a {size.label} "
            f"(sectors 0..{sector_count(size) - 1})"
        )
    return sector


def blocks_in_sector(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """4, or 16 for the upper eight sectors of a 4K."""
    check_sector(sector, size)
    if size is CardSize.CLASSIC_4K and sector >= _4K_SMALL_SECTORS:
        return _LARGE_SECTOR_BLOCKS
    return _SMALL_SECTOR_BLOCKS


def first_block(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Absolute number of the sector's first block."""
    check_sector(sector, size)
    if sector < _4K_SMALL_SECTORS:
        return sector * _SMALL_SECTOR_BLOCKS
    return (
        _4K_SMALL_SECTORS * _SMALL_SECTOR_BLOCKS
        + (sector - _4K_SMALL_SECTORS) * _LARGE_SECTOR_BLOCKS
    )


def sector_of_block(block: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Sector that holds ``block``."""
    check_block(block, size)
    small_blocks = _4K_SMALL_SECTORS * _SMALL_SECTOR_BLOCKS
    if block < small_blocks:
        return block // _SMALL_SECTOR_BLOCKS
    return _4K_SMALL_SECTORS + (block - small_blocks) // _LARGE_SECTOR_BLOCKS


def trailer_block(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Absolute number of the sector trailer (last block of the sector)."""
    return first_block(sector, size) + blocks_in_sector(sector, size) - 1


def is_trailer(block: int, size: CardSize = CardSize.CLASSIC_1K) -> bool:
    """True when ``block`` is a sector trailer (keys and access bits)."""
    return block == trailer_block(sector_of_block(block, size), size)


def is_manufacturer_block(block: int, size: CardSize = CardSize.CLASSIC_1K) -> bool:
    """True for block 0 (UID, BCC, SAK, ATQA; read-only on genuine chips)."""
    check_block(block, size)
    return block == MANUFACTURER_BLOCK


def sector_blocks(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> range:
    """All blocks of a sector, trailer included."""
    start = first_block(sector, size)
    return range(start, start + blocks_in_sector(sector, size))


def data_blocks(sector: int, size: CardSize = CardSize.CLASSIC_1K) -> tuple[int, ...]:
    """Blocks of a sector that may hold application data: not the trailer, not block 0."""
    blocks = sector_blocks(sector, size)
    return tuple(b for b in blocks[:-1] if b != MANUFACTURER_BLOCK)


def access_group(block: int, size: CardSize = CardSize.CLASSIC_1K) -> int:
    """Which C1C2C3 triple governs ``block``: 0, 1, 2 for data, 3 for the trailer.

    In 16-block sectors the datasheet groups blocks 0-4, 5-9 and 10-14 under one triple each.
    """
    sector = sector_of_block(block, size)
    offset = block - first_block(sector, size)
    if blocks_in_sector(sector, size) == _SMALL_SECTOR_BLOCKS:
        return offset
    return 3 if offset == _LARGE_SECTOR_BLOCKS - 1 else offset // 5
