"""The MIFARE Classic chip's rule data, written from the NXP datasheets (MF1S50yyX/MF1S70yyX).

Literal tables, not derived from ``daemon.mifare``: the simulator must not share the daemon's
codecs, or a bug there would be mirrored here and every test would still pass. Also the chip's
refusals (:class:`CardNak` and subclasses), which the reader models turn into status words.

Every NAK halts the card, exactly like a failed authentication: a memory command the chip
refuses (not authenticated for that sector, access denied, block 0 read-only, malformed access
bits, not a value block, no such block, TRANSFER with an empty buffer) is answered with a 4-bit
NAK (MF1S50yyX Table 10, "invalid operation") and the chip falls back to IDLE, dropping its
Crypto1 session; it answers nothing but REQA/WUPA until it is re-selected. Emulators written
from the datasheet do the same (Flipper Zero ``mf_classic_listener``: NAK, reset state, sleep).
No PC/SC reader is documented to re-activate the card by itself: the PN532 in an ACR122U needs a
new InListPassiveTarget (Seeed-Studio/PN532#74), MCT offers "auto reconnect" for this, and
docs/reference/mifare.md §1.4 tells the daemon to ``SCardReconnect`` after a failure. So the
simulated readers answer every later card command with their failure SW until
:meth:`SimCard.select` (``SimConnection.reconnect``). GET DATA UID still answers: the reader
keeps the UID from anticollision.

Simulator choices beyond the datasheet text, marked [D]: the transfer buffer survives
re-authentication of another sector (pm3 ``hf mf value --res --transfer`` with ``--tkey``
transfers across sectors this way) but not a re-select (a PC/SC reconnect resets the field);
increment/decrement wrap modulo 2**32 - no source found states what the chip does on overflow
(emulators written from the datasheet, Flipper Zero and ChameleonMini, add in 32 bits and
wrap; some reader firmware refuses it itself: Elatec "sign overflow", metraTec "result
smaller/bigger than +-2,147,483,647"), so the daemon must range-check a value before it sends
it; the simulator shows a missing check as a wrong balance. The operand is "4 byte signed
integer" (MF1S50yyX Table 23), so it is taken as two's complement: a DECREMENT by -5 adds 5
with nothing but the decrement right [?: tools such as the Chameleon Ultra CLI only offer
0..2**31-1; the daemon must never send a negative operand].
"""

from __future__ import annotations

import random
from typing import Literal

from daemon.errors import InvalidArgument

__all__ = [
    "CLONE_DATA",
    "DATA_ACCESS",
    "KEY_B_READABLE",
    "TRAILER_ACCESS",
    "AccessDenied",
    "AuthFailed",
    "CardNak",
    "CardSilent",
    "CardVendor",
    "NoSuchBlock",
    "NotAuthenticated",
    "NotValueBlock",
    "SectorBlocked",
    "WeakCells",
    "WriteTorn",
    "blank_image",
    "decode_access",
    "first_block",
    "group_of_block",
    "is_value_format",
    "manufacturer_block",
    "permits",
    "sector_of_block",
    "trailer_of_block",
    "value_image",
]

CardVendor = Literal["nxp", "fudan"]

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


class WeakCells:
    """EEPROM cells a torn programming cycle left half-charged: every read can differ.

    Where ``old`` and ``new`` disagree, each bit reads back as either, afresh on each READ,
    until the block is programmed again (tear-off research on NXP EEPROM tags, e.g. Quarkslab
    and pm3 ``hw tearoff`` notes: a torn cell sits between states and reads unstably). The
    random source is the fault plan's, so a seed reproduces the sequence.
    """

    def __init__(self, old: bytes, new: bytes, rng: random.Random) -> None:
        self.old = bytes(old)
        self.new = bytes(new)
        self._rng = rng

    def sample(self) -> bytes:
        """One read of the block: each differing bit from old or new at random."""
        out = bytearray(self.old)
        for i, (a, b) in enumerate(zip(self.old, self.new, strict=True)):
            pick = self._rng.randrange(256)
            out[i] = (a & ~pick | b & pick) & 0xFF if a != b else a
        return bytes(out)


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


# --- block 0 ---------------------------------------------------------------------------------
# What follows UID/BCC/SAK/ATQA in block 0 is the chip maker's production data. Fingerprints
# from the proxmark3 ``hf mf info`` table (cmdhfmf.c; docs/reference/mifare.md §3.3):
# * UID-changeable clones (gen1a, gen2/CUID) ship "62 63 64 65 66 67 68 69" ('bcdefghi');
#   pm3 calls that "Fudan-based clone", the daemon's block-0 check flags it MAGIC_DEFAULT_DATA.
# * NXP MF1ICS50xx store the SAK with bit 7 set and an IC version byte: "88 04 00 48" is the
#   MF1ICS5007 (1K), "89 04 00 47" the MF1ICS2006 (Mini). pm3 lists no 4K entry; the 4K block
#   here keeps SAK 18 as is. The remaining bytes are lot data of no meaning [D: fixed values].
# * Fudan FM11RF08 (1K): "08 04 00", byte 8 in 01..03, byte 15 = 1D (bytes 9-14 a hash);
#   FM11RF32N (4K): "18 02 00 46 44 53 37 30 56 30 31" ("FDS70V01"). Fudan makes no Mini here.
CLONE_DATA = bytes.fromhex("6263646566676869")
_NXP_4B: dict[str, bytes] = {
    "1k": bytes.fromhex("88 0400 48 0E 15 27 43 0B 00 10"),
    "mini": bytes.fromhex("89 0400 47 0E 15 27 43 0B 00 10"),
    "4k": bytes.fromhex("18 0200 46 0E 15 27 43 0B 00 10"),
}
_FUDAN_4B: dict[str, bytes] = {
    "1k": bytes.fromhex("08 0400 02 5B 3E 71 C4 A9 26 1D"),
    "4k": bytes.fromhex("18 0200 46 44 53 37 30 56 30 31"),
}
_SAK = {"mini": 0x09, "1k": 0x08, "4k": 0x18}


def manufacturer_block(uid: bytes, size: str, clone: bool, vendor: CardVendor | None) -> bytes:
    """Block 0 as the factory wrote it; ``vendor`` (default nxp) only for genuine chips."""
    if vendor is not None and (vendor not in ("nxp", "fudan") or clone):
        raise InvalidArgument("vendor", f"{vendor!r}: nxp or fudan, and only for a genuine card")
    vendor = vendor or "nxp"
    if len(uid) == 7:
        atqa = b"\x42\x00" if size == "4k" else b"\x44\x00"
        tail = b"\x00" * 5 + (b"\x1d" if vendor == "fudan" and not clone else b"\x00")
        return uid + bytes((_SAK[size],)) + atqa + tail
    bcc = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
    if clone:
        atqa = b"\x02\x00" if size == "4k" else b"\x04\x00"
        return uid + bytes((bcc, _SAK[size])) + atqa + CLONE_DATA
    rest = (_NXP_4B if vendor == "nxp" else _FUDAN_4B).get(size)
    if rest is None:
        raise InvalidArgument("vendor", f"{vendor!r} makes no {size} MIFARE Classic")
    return uid + bytes((bcc,)) + rest


# --- geometry (Mini/1K: 4-block sectors; 4K: sectors 32-39 hold 16 blocks) -----------------


def sector_of_block(block: int) -> int:
    return block // 4 if block < 128 else 32 + (block - 128) // 16


def first_block(sector: int) -> int:
    return sector * 4 if sector < 32 else 128 + (sector - 32) * 16


def trailer_of_block(block: int) -> int:
    return block | 3 if block < 128 else block | 15


def group_of_block(block: int) -> int:
    """Which access-bit group (0-3) governs the block (4K big sectors: groups of 5)."""
    if block < 128:
        return block % 4
    i = (block - 128) % 16
    return 3 if i == 15 else i // 5


def blank_image(block0: bytes, blocks: int) -> bytes:
    """Delivery state: block 0, zeros, every trailer FF..FF FF 07 80 69 FF..FF."""
    mem = bytearray(blocks * 16)
    mem[0:16] = block0
    trailer = b"\xff" * 6 + bytes.fromhex("ff078069") + b"\xff" * 6
    for b in range(blocks):
        if trailer_of_block(b) == b:
            mem[b * 16 : b * 16 + 16] = trailer
    return bytes(mem)
