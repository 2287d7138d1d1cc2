"""Helpers for simulator tests: send hex APDUs, get hex answers, build a value sector."""

from __future__ import annotations

from sim.card import SimCard
from sim.reader import SimReader
from sim.store import set_sector, transport_card, value_block

KEY_A = bytes.fromhex("A0A1A2A3A4A5")
KEY_B = bytes.fromhex("B0B1B2B3B4B5")


def tx(reader: SimReader, apdu_hex: str) -> str:
    """Send one APDU written as spaced hex; return the raw answer as spaced upper-case hex."""
    return reader.process(bytes.fromhex(apdu_hex)).hex(" ").upper()


def value_sector_card(access: str = "08778F", value: int = 100) -> SimCard:
    """Transport card whose sector 2 has KEY_A/KEY_B, the given access bits, block 8 = value."""
    card = transport_card()
    set_sector(card, 2, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex(access))
    card.program(8, value_block(value, 8))
    card.program(9, value_block(value, 9))
    return card


def access_bytes(*groups: str) -> bytes:
    """Bytes 6-8 of a trailer from four C1C2C3 strings (blocks 0, 1, 2, trailer), datasheet Fig.10.

    Written here, in the test, from the byte layout alone (not shared with sim/ or daemon/).
    """
    assert len(groups) == 4
    c1 = sum(int(g[0]) << i for i, g in enumerate(groups))
    c2 = sum(int(g[1]) << i for i, g in enumerate(groups))
    c3 = sum(int(g[2]) << i for i, g in enumerate(groups))
    return bytes(((~c2 & 0xF) << 4 | (~c1 & 0xF), c1 << 4 | (~c3 & 0xF), c3 << 4 | c2))
