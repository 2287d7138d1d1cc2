"""Authentication state rules of the simulated chip, driven through an ACR1252U."""

from __future__ import annotations

import pytest

from sim.card import KEY_A as CMD_KEY_A
from sim.card import AuthFailed, CardSilent, NotAuthenticated, SimCard
from sim.reader import SimReader
from sim.store import set_sector, transport_card
from tests.sim.helpers import KEY_A, KEY_B, tx


@pytest.fixture
def reader() -> SimReader:
    r = SimReader()
    card = transport_card()
    set_sector(card, 2, key_a=KEY_A, key_b=KEY_B, access=bytes.fromhex("7F0788"))
    r.insert(card)
    return r


def test_authenticating_another_sector_drops_the_first(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key A
    assert tx(reader, "FF B0 00 04 10") == "00 " * 16 + "90 00"  # READ BINARY block 4
    assert (
        tx(reader, "FF 86 00 00 05 01 00 00 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 0 key A
    assert tx(reader, "FF B0 00 01 10") == "00 " * 16 + "90 00"  # READ BINARY block 1 (sector 0)
    assert tx(reader, "FF B0 00 04 10") == "63 00"  # READ BINARY block 4: sector 1 no longer authed
    # the NAK sent the chip back to idle: sector 0 is gone and so is every later answer
    assert tx(reader, "FF B0 00 01 10") == "63 00"  # READ BINARY block 1 after the NAK
    assert (
        tx(reader, "FF 86 00 00 05 01 00 00 60 00") == "63 00"
    )  # GENERAL AUTHENTICATE block 0 key A: card halted
    reader.reselect()
    assert (
        tx(reader, "FF 86 00 00 05 01 00 00 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 0 key A after re-select


def test_failed_auth_drops_everything_until_reselect(reader: SimReader) -> None:
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert (
        tx(reader, "FF 82 00 01 06 A0 A1 A2 A3 A4 A5") == "90 00"
    )  # LOAD KEY slot 1 sector-2 key A
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 60 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key A
    assert (
        tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "63 00"
    )  # GENERAL AUTHENTICATE block 8 wrong key
    assert tx(reader, "FF B0 00 04 10") == "63 00"  # READ BINARY block 4: old auth gone too
    assert (
        tx(reader, "FF 86 00 00 05 01 00 08 60 01") == "63 00"
    )  # GENERAL AUTHENTICATE right key: halted
    reader.reselect()
    assert (
        tx(reader, "FF 86 00 00 05 01 00 08 60 01") == "90 00"
    )  # GENERAL AUTHENTICATE after re-select
    assert tx(reader, "FF B0 00 08 10") == "00 " * 16 + "90 00"  # READ BINARY block 8


def test_chip_level_auth_errors() -> None:
    card = SimCard.blank()
    card.select()
    with pytest.raises(NotAuthenticated):
        card.read(4)
    assert card.halted  # the NAK halted the chip
    with pytest.raises(CardSilent):
        card.authenticate(4, CMD_KEY_A, b"\xff" * 6)
    card.select()
    with pytest.raises(AuthFailed):
        card.authenticate(4, CMD_KEY_A, bytes(6))
    with pytest.raises(CardSilent):
        card.authenticate(4, CMD_KEY_A, b"\xff" * 6)
    card.select()
    card.authenticate(4, CMD_KEY_A, b"\xff" * 6)
    assert card.authenticated == (1, CMD_KEY_A)


def test_key_b_readable_auth_accepted_but_memory_refused(reader: SimReader) -> None:
    # transport trailer (001): key B is readable, so key B must not grant any access
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0 transport
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 61 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key B
    assert tx(reader, "FF B0 00 04 10") == "63 00"  # READ BINARY block 4 refused
    reader.reselect()  # the refusal (a NAK) halted the card
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 61 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key B
    assert tx(reader, "FF B0 00 07 10") == "63 00"  # READ BINARY trailer 7 refused
    reader.reselect()
    assert (
        tx(reader, "FF 86 00 00 05 01 00 04 61 00") == "90 00"
    )  # GENERAL AUTHENTICATE block 4 key B
    assert tx(reader, "FF D6 00 04 10" + " 00" * 16) == "63 00"  # UPDATE BINARY block 4 refused


def test_obsolete_authenticate_ff88(reader: SimReader) -> None:
    assert (
        tx(reader, "FF 82 00 00 06 A0 A1 A2 A3 A4 A5") == "90 00"
    )  # LOAD KEY slot 0 sector-2 key A
    assert tx(reader, "FF 88 00 08 60 00") == "90 00"  # AUTHENTICATE (PC/SC 2.01) block 8 key A
    assert tx(reader, "FF B0 00 09 10") == "00 " * 16 + "90 00"  # READ BINARY block 9
