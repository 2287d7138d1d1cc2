"""Value blocks: INC/DEC/RESTORE fill the transfer buffer, TRANSFER is the only commit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.card import KEY_A as AUTH_A
from sim.card import KEY_B as AUTH_B
from sim.card import CardNak, NotValueBlock
from sim.reader import SimReader
from sim.store import value_block
from tests.sim.helpers import KEY_A, KEY_B, tx, value_sector_card


def test_increment_without_transfer_is_lost_on_removal() -> None:
    reader = SimReader()
    card = value_sector_card()
    reader.insert(card)
    card.authenticate(8, AUTH_B, KEY_B)
    card.increment(8, 50)
    buffered = card.transfer_buffer
    assert buffered == value_block(150, 8)
    assert card.block(8) == value_block(100, 8)  # nothing stored yet
    reader.remove()
    assert card.transfer_buffer is None
    reader.insert(card)
    card.authenticate(8, AUTH_B, KEY_B)
    with pytest.raises(CardNak, match="empty transfer buffer"):
        card.transfer(8)
    assert card.block(8) == value_block(100, 8)


def test_reselect_loses_the_buffer_and_reauth_keeps_it() -> None:
    card = value_sector_card()
    card.select()
    card.authenticate(8, AUTH_A, KEY_A)
    card.decrement(8, 30)
    card.authenticate(9, AUTH_A, KEY_A)  # same card session: buffer survives re-authentication
    card.transfer(9)
    assert card.block(9) == value_block(70, 8)  # Adr comes from the source block
    card.decrement(8, 1)
    card.select()
    assert card.transfer_buffer is None


def test_value_ops_refuse_non_value_blocks() -> None:
    card = value_sector_card()
    card.program(10, bytes(16))
    card.select()
    card.authenticate(8, AUTH_B, KEY_B)
    ops: list[Callable[[], None]] = [lambda: card.increment(10, 1), lambda: card.decrement(10, 1)]
    for op in ops:
        with pytest.raises(NotValueBlock, match="block 10"):
            op()
        assert card.halted  # the NAK halted the chip
        card.select()
        card.authenticate(8, AUTH_B, KEY_B)
    with pytest.raises(NotValueBlock):
        card.restore(10)


def test_increment_wraps_like_the_hardware_adder() -> None:
    card = value_sector_card(value=2**31 - 1)
    card.select()
    card.authenticate(8, AUTH_B, KEY_B)
    card.increment(8, 1)
    card.transfer(8)
    assert card.block(8) == value_block(-(2**31), 8)


def test_acs_restore_copies_within_sector_only() -> None:
    reader = SimReader()
    card = value_sector_card()
    card.program(9, value_block(5, 9))
    reader.insert(card)
    assert tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"  # LOAD KEY slot 0 key A
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTHENTICATE block 8
    assert tx(reader, "FF D7 00 08 02 03 09") == "90 00"  # VALUE RESTORE 8 + TRANSFER 9
    assert card.block(9) == value_block(100, 8)  # copy keeps the source Adr
    assert tx(reader, "FF D7 00 08 02 03 0C") == "63 00"  # VALUE RESTORE 8 → 12: other sector
    assert tx(reader, "FF D7 00 0A 02 03 09") == "63 00"  # VALUE RESTORE 10: not a value block
    reader.reselect()  # the NAK halted the card
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTHENTICATE block 8
    assert tx(reader, "FF B1 00 0A 04") == "63 00"  # VALUE READ block 10: not a value block
    assert tx(reader, "FF B1 00 0B 04") == "63 00"  # VALUE READ trailer 11


def test_omnikey_increment_decrement_little_endian() -> None:
    reader = SimReader(model="omnikey5x21")
    card = value_sector_card()
    card.program(10, bytes(16))
    reader.insert(card)
    assert tx(reader, "FF 82 20 01 06 B0 B1 B2 B3 B4 B5") == "90 00"  # LOAD KEY non-volatile 1
    assert tx(reader, "FF 86 00 00 05 01 00 08 61 01") == "90 00"  # GENERAL AUTHENTICATE key B
    assert tx(reader, "FF D4 00 08 04 2C 01 00 00") == "90 00"  # INCREMENT block 8 by 300
    assert card.block(8) == value_block(400, 8)
    assert tx(reader, "FF D8 00 08 04 64 00 00 00") == "90 00"  # DECREMENT block 8 by 100
    assert card.block(8) == value_block(300, 8)
    assert tx(reader, "FF D4 00 0A 04 01 00 00 00") == "69 81"  # INCREMENT block 10: not a value
    reader.reselect()  # the NAK halted the card
    assert tx(reader, "FF D4 00 40 04 01 00 00 00") == "6A 82"  # INCREMENT block 64: no such block
    assert tx(reader, "FF D4 00 08 03 01 00 00") == "67 00"  # INCREMENT with 3-byte value


def test_operand_is_a_signed_integer_and_the_sum_wraps() -> None:
    # MF1S50yyX Table 23: "Operand (4 byte signed integer)"; overflow unspecified: 32-bit wrap
    card = value_sector_card(value=100)
    card.select()
    card.authenticate(8, AUTH_A, KEY_A)  # 08 77 8F: key A may decrement, not increment
    card.decrement(8, -5)
    assert card.transfer_buffer == value_block(105, 8)  # a negative DECREMENT adds
    card.decrement(8, 2**31)  # operand bytes 00 00 00 80 = -2**31
    card.transfer(8)
    assert card.block(8) == value_block(100 + 2**31 - 2**32, 8)  # 100 - (-2**31) wraps


def test_acs_value_operand_is_signed_msb_first() -> None:
    reader = SimReader()
    reader.insert(value_sector_card(value=100))
    assert tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"  # LOAD KEY slot 0 key A
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTHENTICATE 8 A
    assert tx(reader, "FF D7 00 08 05 02 FF FF FF FB") == "90 00"  # VALUE decrement by -5
    assert tx(reader, "FF B1 00 08 04") == "00 00 00 69 90 00"  # VALUE READ block 8: 105
