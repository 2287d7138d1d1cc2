"""Quick builders for common test cards (factory programming, bypassing the chip's rules).

card = transport_card(bytes.fromhex("11223344"))
set_sector(card, 2, key_a=bytes(6), key_b=b"\xbb" * 6, access=bytes.fromhex("08778F"))
card.program(8, value_block(100, 8))
"""

from __future__ import annotations

import logging

from daemon.errors import InvalidArgument
from sim.card import CardSize, CardVariant, CardVendor, SimCard

__all__ = [
    "TRANSPORT_ACCESS",
    "TRANSPORT_KEY",
    "gen1a_card",
    "gen2_card",
    "set_sector",
    "seven_byte_card",
    "transport_card",
    "value_block",
]

logger = logging.getLogger(__name__)

TRANSPORT_KEY = b"\xff" * 6
TRANSPORT_ACCESS = bytes.fromhex("FF0780")
_DEFAULT_UID4 = bytes.fromhex("11223344")
_DEFAULT_UID7 = bytes.fromhex("04A1B2C3D4E5F6")


def transport_card(
    uid: bytes = _DEFAULT_UID4,
    size: CardSize = "1k",
    variant: CardVariant = "genuine",
    vendor: CardVendor | None = None,
) -> SimCard:
    """A card as delivered: keys FF..FF, access bits FF 07 80, GPB 69, valid block 0.

    ``vendor`` ("nxp", default for genuine cards, or "fudan") picks the maker's block-0 data.
    """
    return SimCard.blank(uid=uid, size=size, variant=variant, vendor=vendor)


def seven_byte_card(uid: bytes = _DEFAULT_UID7, size: CardSize = "1k") -> SimCard:
    """A genuine card with a 7-byte UID (NXP double-size UID)."""
    if len(uid) != 7:
        raise InvalidArgument("uid", f"a 7-byte UID is needed, got {len(uid)} bytes")
    return SimCard.blank(uid=uid, size=size)


def gen2_card(uid: bytes = _DEFAULT_UID4, size: CardSize = "1k") -> SimCard:
    """A gen2/CUID magic card: block 0 accepts an ordinary authenticated WRITE."""
    return SimCard.blank(uid=uid, size=size, variant="gen2")


def gen1a_card(uid: bytes = _DEFAULT_UID4, size: CardSize = "1k") -> SimCard:
    """A gen1a magic card: block 0 only through the backdoor (``backdoor_write``)."""
    return SimCard.blank(uid=uid, size=size, variant="gen1a")


def value_block(value: int, adr: int) -> bytes:
    """A value block image: V, ~V, V (int32 little-endian), Adr, ~Adr, Adr, ~Adr."""
    if not -(2**31) <= value < 2**31:
        raise InvalidArgument("value", f"{value} does not fit a signed 32-bit value block")
    if not 0 <= adr <= 0xFF:
        raise InvalidArgument("adr", f"{adr} is not a byte")
    v = value.to_bytes(4, "little", signed=True)
    return v + bytes(b ^ 0xFF for b in v) + v + bytes((adr, adr ^ 0xFF, adr, adr ^ 0xFF))


def set_sector(
    card: SimCard,
    sector: int,
    *,
    key_a: bytes = TRANSPORT_KEY,
    key_b: bytes = TRANSPORT_KEY,
    access: bytes = TRANSPORT_ACCESS,
    gpb: int = 0x69,
) -> None:
    """Program a sector trailer directly (no validity check: malformed bits brick it)."""
    if len(key_a) != 6 or len(key_b) != 6:
        raise InvalidArgument("key", f"sector {sector}: keys are 6 bytes")
    if len(access) != 3:
        raise InvalidArgument("access", f"sector {sector}: access bits are 3 bytes")
    first = sector * 4 if sector < 32 else 128 + (sector - 32) * 16
    trailer = first + (3 if sector < 32 else 15)
    card.program(trailer, key_a + access + bytes((gpb,)) + key_b)
