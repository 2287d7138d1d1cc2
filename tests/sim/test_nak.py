"""Every chip NAK halts the card until it is re-selected, on every reader model."""

from __future__ import annotations

import pytest

from sim.reader import SimReader
from sim.store import set_sector, transport_card, value_block
from tests.sim.helpers import KEY_A, tx

# (model, LOAD KEY slot 0 with key A, the model's answer once the card is halted)
MODELS = [
    ("acr1252u", "FF 82 00 00 06 A0 A1 A2 A3 A4 A5", "63 00"),  # LOAD KEY volatile slot 0
    ("acr122u", "FF 82 00 00 06 A0 A1 A2 A3 A4 A5", "63 00"),  # LOAD KEY volatile slot 0
    ("omnikey5x21", "FF 82 20 00 06 A0 A1 A2 A3 A4 A5", "69 82"),  # LOAD KEY non-volatile 0
    ("generic", "FF 82 00 00 06 A0 A1 A2 A3 A4 A5", "69 82"),  # LOAD KEY volatile slot 0
]
AUTH_8_A = "FF 86 00 00 05 01 00 08 60 00"  # GENERAL AUTHENTICATE block 8 key A slot 0

# Sector 2: value block 8, data block 10, access 08 77 8F (key A: read/decrement only).
NAKS = [
    "FF D6 00 08 10" + " 00" * 16,  # UPDATE BINARY block 8: write needs key B
    "FF B0 00 0C 10",  # READ BINARY block 12: sector 3 not authenticated
    "FF D6 00 0B 10" + " 00" * 16,  # UPDATE BINARY trailer 11: not writable with key A
]


def _reader(model: str, load: str) -> SimReader:
    card = transport_card()
    set_sector(card, 2, key_a=KEY_A, access=bytes.fromhex("08778F"))
    card.program(8, value_block(100, 8))
    reader = SimReader(model=model)  # type: ignore[arg-type]
    reader.insert(card)
    assert tx(reader, load) == "90 00"
    return reader


@pytest.mark.parametrize(("model", "load", "halted"), MODELS)
@pytest.mark.parametrize("refused", NAKS)
def test_nak_halts_until_reselect(model: str, load: str, halted: str, refused: str) -> None:
    reader = _reader(model, load)
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, refused) == halted
    assert tx(reader, "FF B0 00 08 10") == halted  # READ BINARY block 8: auth gone with the NAK
    assert tx(reader, AUTH_8_A) == halted  # GENERAL AUTHENTICATE right key: card silent
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID: reader's copy
    reader.reselect()
    assert tx(reader, AUTH_8_A) == "90 00"  # GENERAL AUTHENTICATE after re-select
    assert tx(reader, "FF B0 00 08 10") == (  # READ BINARY block 8: value 100
        "64 00 00 00 9B FF FF FF 64 00 00 00 08 F7 08 F7 90 00"
    )


@pytest.mark.parametrize(("model", "load", "halted"), MODELS)
def test_reconnect_of_a_connection_wakes_the_card(model: str, load: str, halted: str) -> None:
    reader = _reader(model, load)
    with reader.connect() as connection:
        assert connection.transmit(bytes.fromhex("FF B0 00 08 10")).sw == int(
            halted.replace(" ", ""), 16
        )  # READ BINARY block 8 before any authentication: NAK
        assert connection.transmit(bytes.fromhex(AUTH_8_A)).sw == int(halted.replace(" ", ""), 16)
        connection.reconnect()
        assert connection.transmit(bytes.fromhex(AUTH_8_A)).sw == 0x9000


def test_value_command_on_a_data_block_halts_the_card() -> None:
    reader = _reader("acr1252u", "FF 82 00 00 06 A0 A1 A2 A3 A4 A5")
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF D7 00 0A 05 02 00 00 00 01") == "63 00"  # VALUE decrement block 10
    assert reader.card is not None
    assert reader.card.halted
    assert tx(reader, "FF D7 00 08 05 02 00 00 00 01") == "63 00"  # VALUE decrement block 8
    assert reader.card.block(8) == value_block(100, 8)  # nothing reached the halted card


def test_reader_side_refusals_do_not_halt_the_card() -> None:
    reader = _reader("omnikey5x21", "FF 82 20 00 06 A0 A1 A2 A3 A4 A5")
    assert tx(reader, AUTH_8_A) == "90 00"
    assert tx(reader, "FF B0 00 40 10") == "6A 82"  # READ BINARY block 64: reader knows the size
    assert tx(reader, "FF D6 00 08 20" + " 00" * 32) == "67 00"  # UPDATE BINARY 32 bytes
    assert tx(reader, "FF 86 00 00 05 01 00 08 62 00") == "69 86"  # GENERAL AUTH key type 62
    assert tx(reader, "FF B0 00 08 04") == "64 00 00 00 90 00"  # READ BINARY block 8: still authed
