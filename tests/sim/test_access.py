"""Access conditions: the chip against the NXP datasheet tables, exhaustively and over APDUs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.card import KEY_A as AUTH_A
from sim.card import KEY_B as AUTH_B
from sim.card import AccessDenied, CardNak, SimCard
from sim.reader import SimReader
from sim.store import set_sector, transport_card, value_block
from tests.sim.helpers import KEY_A, KEY_B, access_bytes, tx

# MF1S50yyX Table 8 (data blocks) as printed: read, write, increment, decrement/transfer/restore
DATA_TABLE = """
000  AB AB AB AB
010  AB -  -  -
100  AB B  -  -
110  AB B  B  AB
001  AB -  -  AB
011  B  B  -  -
101  B  -  -  -
111  -  -  -  -
"""
# MF1S50yyX Table 7 (trailer): key A write, access bits read, access bits write, key B read,
# key B write (key A is never readable). Key B rows with A-only read: B is unusable there.
TRAILER_TABLE = """
000  A  A  -  A  A
010  -  A  -  A  -
100  B  AB -  -  B
110  -  AB -  -  -
001  A  A  A  A  A
011  B  AB B  -  B
101  -  AB B  -  -
111  -  AB -  -  -
"""


def _rows(table: str) -> list[tuple[str, list[str]]]:
    rows = []
    for line in table.strip().splitlines():
        cond, *cells = line.split()
        rows.append((cond, cells))
    return rows


def _card(data_cond: str, trailer_cond: str = "011") -> SimCard:
    card = transport_card()
    access = access_bytes(data_cond, data_cond, data_cond, trailer_cond)
    set_sector(card, 1, key_a=KEY_A, key_b=KEY_B, access=access)
    card.program(4, value_block(50, 4))
    card.program(5, value_block(60, 5))
    card.select()
    return card


def _allowed(op: Callable[[], object]) -> bool:
    try:
        op()
    except AccessDenied:
        return False
    return True


OPS: list[tuple[str, Callable[[SimCard], object]]] = [
    ("read", lambda c: c.read(4)),
    ("write", lambda c: c.write(4, value_block(7, 4))),
    ("increment", lambda c: c.increment(4, 1)),
    ("decrement", lambda c: c.decrement(4, 1)),
    ("restore", lambda c: c.restore(4)),
]


@pytest.mark.parametrize(("cond", "cells"), _rows(DATA_TABLE))
@pytest.mark.parametrize(("key_type", "key", "who"), [(AUTH_A, KEY_A, "A"), (AUTH_B, KEY_B, "B")])
def test_data_block_matrix(
    cond: str, cells: list[str], key_type: int, key: bytes, who: str
) -> None:
    rules = {"read": cells[0], "write": cells[1], "increment": cells[2]}
    rules["decrement"] = rules["restore"] = rules["transfer"] = cells[3]
    for name, op in OPS:
        fresh = _card(cond)
        fresh.authenticate(4, key_type, key)
        assert _allowed(lambda: op(fresh)) == (who in rules[name]), (cond, name, who)  # noqa: B023
    # TRANSFER needs a filled buffer: fill it from block 5 with a full-rights key first
    card = _card(cond)
    card.program(7, KEY_A + access_bytes(cond, "000", cond, "011") + b"\x69" + KEY_B)
    card.authenticate(4, key_type, key)
    card.restore(5)
    assert _allowed(lambda: card.transfer(4)) == (who in rules["transfer"]), (cond, "transfer")


@pytest.mark.parametrize(("cond", "cells"), _rows(TRAILER_TABLE))
@pytest.mark.parametrize(("key_type", "key", "who"), [(AUTH_A, KEY_A, "A"), (AUTH_B, KEY_B, "B")])
def test_trailer_matrix(cond: str, cells: list[str], key_type: int, key: bytes, who: str) -> None:
    ka_w, ac_r, ac_w, kb_r, kb_w = ((who in cell) for cell in cells)
    card = _card("000", cond)
    old = card.block(7)
    card.authenticate(4, key_type, key)
    if not ac_r:  # key B where key B is readable: every access refused
        with pytest.raises(AccessDenied):
            card.read(7)
        return
    got = card.read(7)
    assert got[0:6] == bytes(6)  # key A never readable
    assert got[6:10] == old[6:10]
    assert got[10:16] == (KEY_B if kb_r else bytes(6))
    new_access = access_bytes("000", "000", "000", "011" if cond != "011" else "001")
    new = b"\x01" * 6 + new_access + b"\x42" + b"\x02" * 6
    card.authenticate(4, key_type, key)
    if not (ka_w or ac_w or kb_w):
        with pytest.raises(AccessDenied):
            card.write(7, new)
        assert card.block(7) == old
        return
    card.write(7, new)
    after = card.block(7)
    assert after[0:6] == (new[0:6] if ka_w else KEY_A)
    assert after[6:10] == (new[6:10] if ac_w else old[6:10])
    assert after[10:16] == (new[10:16] if kb_w else KEY_B)


def _load(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"  # LOAD KEY slot 0 key A
    assert tx(reader, "FF 82 00 01 06 B0 B1 B2 B3 B4 B5") == "90 00"  # LOAD KEY slot 1 key B


AUTH_8_A = "FF 86 00 00 05 01 00 08 60 00"  # GENERAL AUTHENTICATE block 8 key A slot 0
AUTH_8_B = "FF 86 00 00 05 01 00 08 61 01"  # GENERAL AUTHENTICATE block 8 key B slot 1


def test_value_sector_08778f_over_acs() -> None:
    card = transport_card()
    set_sector(card, 2, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("08778F"))
    card.program(8, value_block(100, 8))
    reader = SimReader()
    reader.insert(card)
    _load(reader)
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF B1 00 08 04") == "00 00 00 64 90 00"  # VALUE READ block 8: 100
    assert tx(reader, "FF D7 00 08 05 02 00 00 00 01") == "90 00"  # VALUE decrement 1 with key A
    assert tx(reader, "FF D7 00 08 05 01 00 00 00 01") == "63 00"  # VALUE increment with key A
    assert tx(reader, AUTH_8_A) == "63 00"  # the NAK halted the card: re-select first
    reader.reselect()
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF D6 00 08 10" + " 00" * 16) == "63 00"  # UPDATE BINARY block 8, key A
    reader.reselect()
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF B0 00 0B 10") == (  # READ BINARY trailer 11: key B not readable
        "00 00 00 00 00 00 08 77 8F 69 00 00 00 00 00 00 90 00"
    )
    assert tx(reader, AUTH_8_B) == "90 00"
    assert tx(reader, "FF D7 00 08 05 01 00 00 00 0B") == "90 00"  # VALUE increment 11, key B
    assert tx(reader, "FF B1 00 08 04") == "00 00 00 6E 90 00"  # VALUE READ block 8: 110
    assert tx(reader, "FF D6 00 09 10" + " 11" * 16) == "90 00"  # UPDATE BINARY block 9, key B


def test_key_b_managed_trailer_7f0788_over_acs() -> None:
    card = transport_card()
    set_sector(card, 2, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("7F0788"))
    reader = SimReader()
    reader.insert(card)
    _load(reader)
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF D6 00 08 10" + " 22" * 16) == "90 00"  # UPDATE BINARY block 8, key A
    new_trailer = " 0C" * 6 + " 7F 07 88 69" + " B0 B1 B2 B3 B4 B5"
    assert tx(reader, "FF D6 00 0B 10" + new_trailer) == "63 00"  # UPDATE BINARY trailer, key A
    reader.reselect()  # the NAK halted the card
    assert tx(reader, AUTH_8_B) == "90 00"
    assert tx(reader, "FF D6 00 0B 10" + new_trailer) == "90 00"  # UPDATE BINARY trailer, key B
    assert card.block(11)[0:6] == b"\x0c" * 6  # key A changed by the key-B holder
    assert tx(reader, "FF 82 00 00 06 0C 0C 0C 0C 0C 0C") == "90 00"  # LOAD KEY slot 0 new key A
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF B0 00 08 10") == "22 " * 16 + "90 00"  # READ BINARY block 8


def test_transport_ff0780_over_acs() -> None:
    reader = SimReader()
    reader.insert(transport_card())
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
    assert tx(reader, "FF 86 00 00 05 01 00 0C 60 00") == "90 00"  # GENERAL AUTHENTICATE block 12
    assert tx(reader, "FF D7 00 0C 05 00 00 00 01 00") == "90 00"  # VALUE store 256 in block 12
    assert tx(reader, "FF B0 00 0C 10") == (  # READ BINARY block 12: value block, Adr = 12
        "00 01 00 00 FF FE FF FF 00 01 00 00 0C F3 0C F3 90 00"
    )
    assert tx(reader, "FF D7 00 0C 05 01 00 00 00 01") == "90 00"  # VALUE increment 1
    assert tx(reader, "FF B1 00 0C 04") == "00 00 01 01 90 00"  # VALUE READ block 12: 257
    trailer = " A0 A1 A2 A3 A4 A5 08 77 8F 69 B0 B1 B2 B3 B4 B5"
    assert tx(reader, "FF D6 00 0F 10" + trailer) == "90 00"  # UPDATE BINARY trailer 15, key A


def test_nak_names_why() -> None:
    card = _card("010")
    card.authenticate(4, AUTH_A, KEY_A)
    with pytest.raises(CardNak, match="block 4: write not allowed"):
        card.write(4, bytes(16))
