"""READ/UPDATE BINARY lengths as each reader model documents them: exact bytes in and out."""

from __future__ import annotations

import pytest

from sim.reader import SimReader
from sim.store import transport_card
from tests.sim.helpers import tx

LOAD = {
    "acr122u": "FF 82 00 00 06 FF FF FF FF FF FF",  # LOAD KEY volatile slot 0
    "acr1252u": "FF 82 00 00 06 FF FF FF FF FF FF",  # LOAD KEY volatile slot 0
    "omnikey5x21": "FF 82 20 00 06 FF FF FF FF FF FF",  # LOAD KEY non-volatile slot 0
}
AUTH_4 = "FF 86 00 00 05 01 00 04 60 00"  # GENERAL AUTHENTICATE block 4 key A slot 0


def _reader(model: str, size: str = "1k") -> SimReader:
    reader = SimReader(model=model)  # type: ignore[arg-type]
    card = transport_card(size=size)  # type: ignore[arg-type]
    for b in (4, 5, 6):
        card.program(b, bytes([b]) * 16)
    reader.insert(card)
    assert tx(reader, LOAD[model]) == "90 00"
    assert tx(reader, AUTH_4) == "90 00"
    return reader


BLOCK4 = "04 " * 16
BLOCK5 = "05 " * 16
BLOCK6 = "06 " * 16


@pytest.mark.parametrize(
    ("model", "le", "answer"),
    [
        ("acr122u", "10", BLOCK4 + "90 00"),  # READ BINARY Le 16: one block
        ("acr122u", "04", "04 04 04 04 90 00"),  # READ BINARY Le 4: first 4 bytes
        ("acr122u", "00", "63 00"),  # READ BINARY Le 00: not documented
        ("acr122u", "20", "63 00"),  # READ BINARY Le 32: "Maximum 16 bytes"
        ("acr1252u", "10", BLOCK4 + "90 00"),  # READ BINARY Le 16: single block mode
        ("acr1252u", "04", "63 00"),  # READ BINARY Le 4: not a multiple of 16
        ("acr1252u", "00", "63 00"),  # READ BINARY Le 00
        ("acr1252u", "30", BLOCK4 + BLOCK5 + BLOCK6 + "90 00"),  # READ BINARY 4..6
        ("acr1252u", "40", "63 00"),  # READ BINARY Le 64 on a 1K: 3 blocks at most
        ("omnikey5x21", "00", BLOCK4 + "90 00"),  # READ BINARY Le 00 = 16 bytes
        ("omnikey5x21", "04", "04 04 04 04 90 00"),  # READ BINARY Le 4
        ("omnikey5x21", "20", "6C 10"),  # READ BINARY Le 32: one block, correct Le 16
    ],
)
def test_read_binary_le(model: str, le: str, answer: str) -> None:
    reader = _reader(model)
    assert tx(reader, f"FF B0 00 04 {le}") == answer
    assert tx(reader, "FF B0 00 05 10") == BLOCK5 + "90 00"  # READ BINARY 5: no NAK happened


@pytest.mark.parametrize(
    ("model", "lc", "answer"),
    [
        ("acr122u", 16, "90 00"),  # UPDATE BINARY 16 bytes
        ("acr122u", 32, "63 00"),  # UPDATE BINARY 32 bytes: 16 only
        ("acr122u", 4, "63 00"),  # UPDATE BINARY 4 bytes (Ultralight page size)
        ("acr1252u", 48, "90 00"),  # UPDATE BINARY 4..6
        ("acr1252u", 20, "63 00"),  # UPDATE BINARY 20 bytes: not a multiple of 16
        ("acr1252u", 64, "63 00"),  # UPDATE BINARY 64 bytes on a 1K
        ("omnikey5x21", 16, "90 00"),  # UPDATE BINARY 16 bytes
        ("omnikey5x21", 32, "67 00"),  # UPDATE BINARY 32 bytes: wrong length
    ],
)
def test_update_binary_lc(model: str, lc: int, answer: str) -> None:
    reader = _reader(model)
    apdu = f"FF D6 00 04 {lc:02X}" + " AA" * lc
    assert tx(reader, apdu) == answer
    card = reader.card
    assert card is not None
    written = answer == "90 00"
    assert card.block(4) == (b"\xaa" * 16 if written else b"\x04" * 16)
    assert card.block(6) == (b"\xaa" * 16 if lc == 48 and written else b"\x06" * 16)


def test_acr1252u_reads_and_writes_15_blocks_of_a_4k_big_sector() -> None:
    reader = SimReader(model="acr1252u")
    reader.insert(transport_card(size="4k"))
    assert tx(reader, LOAD["acr1252u"]) == "90 00"
    assert tx(reader, "FF 86 00 00 05 01 00 80 60 00") == "90 00"  # GENERAL AUTH block 128
    data = " ".join(f"{i:02X}" for i in range(240))
    assert tx(reader, "FF D6 00 80 F0 " + data) == "90 00"  # UPDATE BINARY 128..142
    assert tx(reader, "FF B0 00 80 F0") == data + " 90 00"  # READ BINARY 128..142
    assert tx(reader, "FF B0 00 81 F0") == "63 00"  # READ BINARY 129..143: trailer 143
    assert tx(reader, "FF B0 00 70 40") == "63 00"  # READ BINARY 112..115: trailer 115
