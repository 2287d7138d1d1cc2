"""ACS ACR1252U / ACR122U dialect: exact bytes in, exact bytes out."""

from __future__ import annotations

import pytest

from sim.reader import SimReader
from sim.store import transport_card
from tests.sim.helpers import tx


@pytest.fixture
def reader() -> SimReader:
    r = SimReader(model="acr1252u")
    r.insert(transport_card())
    return r


def test_atr_and_uid(reader: SimReader) -> None:
    assert (
        reader.atr.hex(" ").upper() == "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"
    )
    assert reader.name == "ACS ACR1252 1S CL Reader PICC 00 00"
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID, Le 00
    assert tx(reader, "FF CA 00 00 04") == "11 22 33 44 90 00"  # GET DATA UID, Le = UID length
    assert tx(reader, "FF CA 00 00 02") == "6C 04"  # GET DATA UID, Le too short
    assert tx(reader, "FF CA 00 00 08") == "11 22 33 44 62 82"  # GET DATA UID, Le too long
    assert tx(reader, "FF CA 01 00 00") == "6A 81"  # GET DATA ATS: not ISO 14443-4
    assert tx(reader, "FF CA 05 00 00") == "6A 81"  # GET DATA unknown P1


def test_transport_card_read_write(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
    assert tx(reader, "FF B0 00 04 10") == "63 00"  # READ BINARY block 4 before auth
    assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "63 00"  # GENERAL AUTH: card halted
    reader.reselect()
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key A slot 0
    assert tx(reader, "FF D6 00 04 10" + " 01" * 16) == "90 00"  # UPDATE BINARY block 4
    assert tx(reader, "FF B0 00 04 10") == "01 " * 16 + "90 00"  # READ BINARY block 4
    assert tx(
        reader, "FF B0 00 07 10"
    ) == (  # READ BINARY trailer 7: key A as zeros, key B readable
        "00 00 00 00 00 00 FF 07 80 69 FF FF FF FF FF FF 90 00"
    )
    assert tx(reader, "FF B0 00 05 30") == "63 00"  # READ BINARY 5..7 would include trailer 7
    assert tx(reader, "FF B0 00 04 20") == "01 " * 16 + "00 " * 16 + "90 00"  # READ BINARY 4..5


def test_load_key_slot_rules(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 01 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 1
    assert (
        tx(reader, "FF 82 00 02 06 FF FF FF FF FF FF") == "63 00"
    )  # LOAD KEY slot 2: no such slot
    assert (
        tx(reader, "FF 82 20 00 06 FF FF FF FF FF FF") == "63 00"
    )  # LOAD KEY non-volatile: reserved
    assert tx(reader, "FF 82 00 00 05 FF FF FF FF FF") == "63 00"  # LOAD KEY 5-byte key


def test_acr122u_firmware_has_no_status_word() -> None:
    r = SimReader(model="acr122u")
    r.insert(transport_card())
    assert r.name == "ACS ACR122U PICC Interface 00 00"
    assert r.process(bytes.fromhex("FF 00 48 00 00")) == b"ACR122U207"  # GET FIRMWARE, bare string
    assert tx(r, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
    assert tx(r, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE block 4 key A
    assert tx(r, "FF B0 00 04 20") == "63 00"  # READ BINARY 32 bytes: ACR122U reads 16 max


def test_acr1252u_firmware_with_status_word(reader: SimReader) -> None:
    assert reader.process(bytes.fromhex("FF 00 48 00 00")) == b"ACR1252U_V202.2\x90\x00"


def test_update_binary_lengths() -> None:
    for model, lc, expected in (
        ("acr122u", "20", "63 00"),  # UPDATE BINARY 32 bytes: ACR122U writes one block
        ("acr1252u", "20", "90 00"),  # UPDATE BINARY 32 bytes: ACR1252U multi-block
        ("acr1252u", "11", "63 00"),  # UPDATE BINARY 17 bytes
    ):
        reader = SimReader(model=model)  # type: ignore[arg-type]
        reader.insert(transport_card())
        assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
        assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTHENTICATE
        data = " 33" * int(lc, 16)
        assert tx(reader, f"FF D6 00 04 {lc}{data}") == expected, model
    assert tx(reader, "FF D6 00 04 10 00") == "63 00"  # UPDATE BINARY Lc ≠ data length
    assert tx(reader, "FF D6 01 04 10" + " 00" * 16) == "63 00"  # UPDATE BINARY P1 01
    assert tx(reader, "FF D7 00 04 05 03 00 00 00 01") == "63 00"  # VALUE unknown op 03
    assert tx(reader, "FF D7 00 04 02 03 50") == "63 00"  # VALUE RESTORE to block 80
    assert tx(reader, "FF B1 00 04 05") == "63 00"  # VALUE READ with Le 5
    assert tx(reader, "00 B0 00 04 10") == "63 00"  # READ BINARY with CLA 00
    assert tx(reader, "FF 99 00 00 00") == "63 00"  # unknown INS


def test_key_slots_belong_to_the_reader_not_the_card() -> None:
    # ACS: volatile slots 00-01 live in the reader: a card swap keeps them, unplugging does not
    for model in ("acr1252u", "acr122u"):
        reader = SimReader(model=model)
        reader.insert(transport_card())
        assert tx(reader, "FF 82 00 01 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 1
        reader.remove()
        reader.insert(transport_card(bytes.fromhex("A1B2C3D4")))
        assert tx(reader, "FF 86 00 00 05 01 00 04 60 01") == "90 00"  # GENERAL AUTH slot 1
        reader.unplug()
        reader.replug()
        assert tx(reader, "FF 86 00 00 05 01 00 04 60 01") == "63 00"  # GENERAL AUTH: slot empty
        assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 again
        assert tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"  # GENERAL AUTH slot 0
