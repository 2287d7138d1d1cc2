"""The MIFARE Classic chip's rule data, written from the NXP datasheets (MF1S50yyX/MF1S70yyX).

Literal tables, not derived from ``daemon.mifare``: the simulator must not share the daemon's
codecs, or a bug there would be mirrored here and every test would still pass. Also the chip's
refusals (:class:`CardNak` and subclasses), which the reader models turn into status words.
"""

from __future__ import annotations

__all__ = [
    "DATA_ACCESS",
    "KEY_B_READABLE",
    "TRAILER_ACCESS",
    "AccessDenied",
    "AuthFailed",
    "CardNak",
    "CardSilent",
    "NoSuchBlock",
    "NotAuthenticated",
    "NotValueBlock",
    "SectorBlocked",
    "WriteTorn",
    "decode_access",
    "is_value_format",
    "permits",
    "value_image",
]

# Data blocks, index C1C2C3 as a 3-bit number: who may (read, write, increment,
# decrement/transfer/restore). "AB" = key A or key B, "" = never.  [NXP MF1S50yyX Table 8]
DATA_ACCESS: dict[int, tuple[str, str, str, str]] = {
    0b000: ("AB", "AB", "AB", "AB"),
    0b010: ("AB", "", "", ""),
    0b100: ("AB", "B", "", ""),
    0b110: ("AB", "B", "B", "AB"),
    0b001: ("AB", "", "", "AB"),
    0b011: ("B", "B", "", ""),
    0b101: ("B", "", "", ""),
    0b111: ("", "", "", ""),
}
# Sector trailer: (key A write, access bits read, access bits write, key B read, key B write).
# Key A is never readable.  [NXP MF1S50yyX Table 7]
TRAILER_ACCESS: dict[int, tuple[str, str, str, str, str]] = {
    0b000: ("A", "A", "", "A", "A"),
    0b010: ("", "A", "", "A", ""),
    0b100: ("B", "AB", "", "", "B"),
    0b110: ("", "AB", "", "", ""),
    0b001: ("A", "A", "A", "A", "A"),
    0b011: ("B", "AB", "B", "", "B"),
    0b101: ("", "AB", "B", "", ""),
    0b111: ("", "AB", "", "", ""),
}
KEY_B_READABLE = frozenset(c for c, row in TRAILER_ACCESS.items() if row[3])


class CardNak(Exception):
    """The chip refused a command (NAK) or did not answer."""


class CardSilent(CardNak):
    """The card is halted after a NAK (failed authentication included): silent until re-selected."""


class AuthFailed(CardNak):
    """Wrong key: the three-pass authentication failed and the card halted."""


class NotAuthenticated(CardNak):
    """No authentication for the sector holding the block."""


class AccessDenied(CardNak):
    """The access conditions (or block 0 being read-only) forbid the command."""


class SectorBlocked(AccessDenied):
    """The sector's access bits are malformed: every memory access is refused, forever."""


class NoSuchBlock(CardNak):
    """The block number is beyond this card's memory."""


class NotValueBlock(CardNak):
    """INCREMENT/DECREMENT/RESTORE on a block that is not in value-block format."""


class WriteTorn(Exception):
    """A programming cycle was torn by a fault: the card has left the field."""


def permits(rule: str, key_type: int) -> bool:
    """Does an access rule ("A", "B", "AB", "") let this key type (0x60/0x61) do it?"""
    return ("A" if key_type == 0x60 else "B") in rule


def is_value_format(block: bytes) -> bool:
    """V, ~V, V and Adr, ~Adr, Adr, ~Adr (datasheet §8.6.2.1)."""
    inv = bytes(b ^ 0xFF for b in block[0:4])
    return (
        block[0:4] == block[8:12]
        and block[4:8] == inv
        and block[12] == block[14]
        and block[13] == block[15]
        and block[12] ^ 0xFF == block[13]
    )


def value_image(value: int, adr: int) -> bytes:
    v = (value & 0xFFFFFFFF).to_bytes(4, "little")
    inv = bytes(b ^ 0xFF for b in v)
    return v + inv + v + bytes((adr, adr ^ 0xFF, adr, adr ^ 0xFF))


def decode_access(b6: int, b7: int, b8: int) -> tuple[int, int, int, int] | None:
    """C1C2C3 (as 3-bit numbers) for groups 0-3, or None if the inverted copies disagree."""
    if (b6 & 0xF) ^ 0xF != b7 >> 4 or (b6 >> 4) ^ 0xF != b8 & 0xF or (b7 & 0xF) ^ 0xF != b8 >> 4:
        return None
    c1, c2, c3 = b7 >> 4, b8 & 0xF, b8 >> 4
    conds = [((c1 >> i) & 1) << 2 | ((c2 >> i) & 1) << 1 | ((c3 >> i) & 1) for i in range(4)]
    return conds[0], conds[1], conds[2], conds[3]
