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
