"""HID OMNIKEY 5x21 and generic PC/SC Part 3 dialects: specific status words, key slots."""

from __future__ import annotations

import pytest

from sim.reader import SimReader
from sim.store import transport_card
from tests.sim.helpers import tx


@pytest.fixture
def omnikey() -> SimReader:
    r = SimReader(model="omnikey5x21")
    r.insert(transport_card())
    return r


def test_omnikey_load_key_rules(omnikey: SimReader) -> None:
    assert omnikey.name == "HID Global OMNIKEY 5x21 Smart Card Reader 00 00"
    assert tx(omnikey, "FF 82 20 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY non-volatile 0
    assert tx(omnikey, "FF 82 00 00 06 FF FF FF FF FF FF") == "69 86"  # LOAD KEY volatile: refused
    assert tx(omnikey, "FF 82 20 20 06 FF FF FF FF FF FF") == "63 88"  # LOAD KEY slot 0x20
    assert tx(omnikey, "FF 82 20 00 05 FF FF FF FF FF") == "63 89"  # LOAD KEY 5-byte key
    assert tx(omnikey, "FF 82 20 00 06 FF FF FF FF FF") == "67 00"  # LOAD KEY Lc ≠ data length
    assert tx(omnikey, "FF 82 A0 00 06 FF FF FF FF FF FF") == "63 83"  # LOAD KEY reader key
    assert tx(omnikey, "FF 82 60 00 06 FF FF FF FF FF FF") == "63 85"  # LOAD KEY secured


def test_omnikey_auth_and_read_status_words(omnikey: SimReader) -> None:
    assert tx(omnikey, "FF 82 20 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY non-volatile 0
    assert tx(omnikey, "FF 82 20 01 06 00 00 00 00 00 00") == "90 00"  # LOAD KEY slot 1 wrong key
    assert tx(omnikey, "FF B0 00 04 10") == "69 82"  # READ BINARY before auth
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 00") == "69 82"  # GENERAL AUTH: card halted
    omnikey.reselect()
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 62 00") == "69 86"  # GENERAL AUTH key type 62
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 21") == "69 88"  # GENERAL AUTH slot 0x21
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 05") == "69 84"  # GENERAL AUTH empty slot 5
    assert tx(omnikey, "FF 86 00 00 05 01 00 40 60 00") == "65 81"  # GENERAL AUTH block 64
    assert tx(omnikey, "FF 86 00 00 04 01 00 04 60") == "67 00"  # GENERAL AUTH short
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTH block 4 slot 0
    assert tx(omnikey, "FF B0 00 04 00") == "00 " * 16 + "90 00"  # READ BINARY Le 00 = 16 bytes
    assert tx(omnikey, "FF B0 00 04 04") == "00 00 00 00 90 00"  # READ BINARY Le 4
    assert tx(omnikey, "FF B0 00 04 20") == "6C 10"  # READ BINARY Le 32: one block only
    assert tx(omnikey, "FF B0 00 40 10") == "6A 82"  # READ BINARY block 64
    assert tx(omnikey, "FF D6 00 04 20" + " 00" * 32) == "67 00"  # UPDATE BINARY 32 bytes
    assert tx(omnikey, "FF B0 00 08 10") == "69 82"  # READ BINARY block 8: other sector
    omnikey.reselect()  # the NAK halted the card
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 01") == "69 82"  # GENERAL AUTH wrong key
    assert tx(omnikey, "FF 86 00 00 05 01 00 04 60 00") == "69 82"  # GENERAL AUTH: card halted


def test_omnikey_unknown_commands(omnikey: SimReader) -> None:
    assert tx(omnikey, "FF D7 00 08 05 01 00 00 00 01") == "6D 00"  # ACS VALUE: not on OMNIKEY
    assert tx(omnikey, "FF 00 48 00 00") == "6D 00"  # ACS firmware query: not on OMNIKEY
    assert tx(omnikey, "00 A4 04 00 00") == "6E 00"  # ISO SELECT: CLA not FF
    assert tx(omnikey, "FF CA 02 00 00") == "6B 00"  # GET DATA P1 02
    assert tx(omnikey, "FF CA 01 00 00") == "6A 81"  # GET DATA ATS: not ISO 14443-4
    assert tx(omnikey, "FF") == "67 00"  # truncated APDU


def test_omnikey_keys_survive_unplug_acs_volatile_keys_do_not() -> None:
    for model, load, survives in (
        ("omnikey5x21", "FF 82 20 00 06 FF FF FF FF FF FF", True),  # LOAD KEY non-volatile
        ("acr1252u", "FF 82 00 00 06 FF FF FF FF FF FF", False),  # LOAD KEY volatile
    ):
        reader = SimReader(model=model)  # type: ignore[arg-type]
        reader.insert(transport_card())
        assert tx(reader, load) == "90 00"
        reader.unplug()
        reader.replug()
        answer = tx(reader, "FF 86 00 00 05 01 00 04 60 00")  # GENERAL AUTHENTICATE slot 0
        assert (answer == "90 00") == survives, model


def test_generic_reader() -> None:
    reader = SimReader(model="generic")
    reader.insert(transport_card())
    assert reader.name == "Generic PC/SC Part 3 Contactless Reader 00 00"
    assert tx(reader, "FF 82 00 03 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY volatile slot 3
    assert tx(reader, "FF 82 10 03 06 FF FF FF FF FF FF") == "6B 00"  # LOAD KEY P1 10: RFU
    assert tx(reader, "FF 88 00 04 60 03") == "90 00"  # AUTHENTICATE (obsolete) block 4 slot 3
    assert tx(reader, "FF 88 00 04 60") == "67 00"  # AUTHENTICATE (obsolete) too short
    assert tx(reader, "FF 86 00 00 05 02 00 04 60 03") == "6A 80"  # GENERAL AUTH version 2
    assert tx(reader, "FF 86 01 00 05 01 00 04 60 03") == "6B 00"  # GENERAL AUTH P1 01
    assert tx(reader, "FF D6 00 04 10" + " 5A" * 16) == "90 00"  # UPDATE BINARY block 4
    assert tx(reader, "FF D4 00 04 04 01 00 00 00") == "6D 00"  # OMNIKEY INCREMENT: not generic
    assert tx(reader, "FF B1 00 04 04") == "6D 00"  # ACS VALUE READ: not generic


def test_obsolete_authenticate_per_model() -> None:
    for model, load, answer in (
        ("omnikey5x21", "FF 82 20 00 06 FF FF FF FF FF FF", "67 00"),  # LOAD KEY non-volatile 0
        ("acr1252u", "FF 82 00 00 06 FF FF FF FF FF FF", "90 00"),  # LOAD KEY volatile 0
        ("acr122u", "FF 82 00 00 06 FF FF FF FF FF FF", "90 00"),  # LOAD KEY volatile 0
        ("generic", "FF 82 00 00 06 FF FF FF FF FF FF", "90 00"),  # LOAD KEY volatile 0
    ):
        reader = SimReader(model=model)  # type: ignore[arg-type]
        reader.insert(transport_card())
        assert tx(reader, load) == "90 00"
        assert tx(reader, "FF 88 00 04 60 00") == answer, model  # AUTHENTICATE (obsolete) blk 4
        assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE
        assert tx(reader, "FF B0 00 04 10") == "00 " * 16 + "90 00"  # READ BINARY block 4
