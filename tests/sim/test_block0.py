"""Block 0 (genuine read-only, gen2 writable, gen1a backdoor) and bricked sectors."""

from __future__ import annotations

import pytest

from sim.card import CardSilent
from sim.reader import SimReader
from sim.store import gen1a_card, gen2_card, seven_byte_card, transport_card
from tests.sim.helpers import tx

NEW_BLOCK0 = "AA BB CC DD 00 08 04 00 62 63 64 65 66 67 68 69"


def _auth_sector0(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert tx(reader, "FF 86 00 00 05 01 00 00 60 00") == "90 00"  # GENERAL AUTHENTICATE block 0


def test_genuine_block0_is_read_only() -> None:
    reader = SimReader()
    card = transport_card()
    reader.insert(card)
    _auth_sector0(reader)
    assert tx(reader, "FF B0 00 00 10") == (  # READ BINARY block 0
        "11 22 33 44 44 88 04 00 48 0E 15 27 43 0B 00 10 90 00"  # NXP MF1ICS5007 fingerprint
    )
    assert tx(reader, "FF D6 00 00 10 " + NEW_BLOCK0) == "63 00"  # UPDATE BINARY block 0 refused
    assert card.uid == bytes.fromhex("11223344")


def test_gen2_block0_write_changes_uid_after_reselect() -> None:
    reader = SimReader()
    card = gen2_card()
    reader.insert(card)
    _auth_sector0(reader)
    assert tx(reader, "FF D6 00 00 10 " + NEW_BLOCK0) == "90 00"  # UPDATE BINARY block 0 (gen2)
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID: still the old one
    reader.reselect()
    assert tx(reader, "FF CA 00 00 00") == "AA BB CC DD 90 00"  # GET DATA UID after re-select


def test_gen1a_only_through_the_backdoor() -> None:
    reader = SimReader()
    card = gen1a_card()
    reader.insert(card)
    _auth_sector0(reader)
    assert tx(reader, "FF D6 00 00 10 " + NEW_BLOCK0) == "63 00"  # UPDATE BINARY block 0 refused
    card.backdoor_write(0, bytes.fromhex(NEW_BLOCK0))
    assert card.backdoor_read(3)[0:6] == b"\xff" * 6  # the backdoor reads keys in clear
    with pytest.raises(CardSilent, match="genuine"):
        transport_card().backdoor_write(0, bytes(16))


def test_seven_byte_uid_block0_and_get_data() -> None:
    reader = SimReader(model="omnikey5x21")
    reader.insert(seven_byte_card())
    assert tx(reader, "FF CA 00 00 00") == "04 A1 B2 C3 D4 E5 F6 90 00"  # GET DATA UID 7 bytes
    assert tx(reader, "FF CA 00 00 04") == "6C 07"  # GET DATA UID Le too short


def test_malformed_trailer_write_bricks_sector_forever() -> None:
    reader = SimReader()
    card = transport_card()
    reader.insert(card)
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE block 4
    bad = " FF FF FF FF FF FF 00 00 00 69 FF FF FF FF FF FF"
    assert tx(reader, "FF D6 00 07 10" + bad) == "90 00"  # UPDATE BINARY trailer 7: all-zero bits
    assert card.sector_blocked(1)
    for _ in range(2):
        assert (
            tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"
        )  # GENERAL AUTHENTICATE block 4
        assert tx(reader, "FF B0 00 04 10") == "63 00"  # READ BINARY block 4: sector blocked
        reader.reselect()  # the NAK halted the card
        assert (
            tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"
        )  # GENERAL AUTHENTICATE block 4
        assert tx(reader, "FF B0 00 07 10") == "63 00"  # READ BINARY trailer 7: blocked
        reader.reselect()  # re-select does not help
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "90 00"  # GENERAL AUTHENTICATE block 8
    assert (
        tx(reader, "FF B0 00 08 10") == "00 " * 16 + "90 00"
    )  # READ BINARY block 8: sector 2 fine
