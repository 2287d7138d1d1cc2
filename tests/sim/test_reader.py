"""SimReader lifecycle: sizes and ATRs, insert/remove/unplug, ACS LED, threads sharing a reader."""

from __future__ import annotations

import threading

import pytest

from daemon.errors import CardAbsent, InvalidArgument, ReaderUnavailable
from sim.faults import CardGone, ReaderUnplugged
from sim.reader import SimReader, pcsc_atr
from sim.store import set_sector, transport_card
from tests.sim.helpers import access_bytes, tx


def test_atrs_per_size() -> None:
    assert pcsc_atr("1k").hex(" ").upper() == (
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"
    )
    assert pcsc_atr("4k").hex(" ").upper().endswith("03 00 02 00 00 00 00 69")
    assert pcsc_atr("mini").hex(" ").upper().endswith("03 00 26 00 00 00 00 4D")


def test_mini_card_ends_at_block_19() -> None:
    reader = SimReader()
    reader.insert(transport_card(size="mini"))
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
    assert tx(reader, "FF 86 00 00 05 01 00 13 60 00") == "90 00"  # GENERAL AUTHENTICATE block 19
    assert tx(reader, "FF 86 00 00 05 01 00 14 60 00") == "63 00"  # GENERAL AUTHENTICATE block 20


def test_4k_big_sector_groups_of_five() -> None:
    card = transport_card(size="4k")
    # sector 32 = blocks 128..143: group 0 (128-132) read-only, group 1 (133-137) transport
    set_sector(card, 32, access=access_bytes("010", "000", "000", "001"))
    reader = SimReader()
    reader.insert(card)
    assert tx(reader, "FF 82 00 00 06 FF FF FF FF FF FF") == "90 00"  # LOAD KEY slot 0
    assert tx(reader, "FF 86 00 00 05 01 00 80 60 00") == "90 00"  # GENERAL AUTHENTICATE block 128
    assert tx(reader, "FF D6 00 84 10" + " 01" * 16) == "63 00"  # UPDATE BINARY 132: read-only
    reader.reselect()  # the NAK halted the card
    assert tx(reader, "FF 86 00 00 05 01 00 80 60 00") == "90 00"  # GENERAL AUTHENTICATE block 128
    assert tx(reader, "FF D6 00 85 10" + " 01" * 16) == "90 00"  # UPDATE BINARY 133: writable
    assert tx(reader, "FF B0 00 8F 10") == (  # READ BINARY trailer 143
        "00 00 00 00 00 00 "
        + access_bytes("010", "000", "000", "001").hex(" ").upper()
        + " 69 FF FF FF FF FF FF 90 00"
    )
    assert tx(reader, "FF B0 00 8D 30") == "63 00"  # READ BINARY 141..143 includes trailer 143
    assert tx(reader, "FF 86 00 00 05 01 00 FF 60 00") == "90 00"  # GENERAL AUTHENTICATE block 255


def test_insert_remove_unplug_close() -> None:
    reader = SimReader()
    with pytest.raises(CardAbsent):
        _ = reader.atr
    with pytest.raises(CardGone):
        tx(reader, "FF CA 00 00 00")  # GET DATA UID, empty reader
    card = transport_card()
    reader.insert(card)
    with pytest.raises(InvalidArgument, match="already holds a card"):
        reader.insert(transport_card())
    reader.unplug()
    assert not reader.plugged
    with pytest.raises(ReaderUnplugged):
        tx(reader, "FF CA 00 00 00")  # GET DATA UID, unplugged
    with pytest.raises(ReaderUnavailable):
        reader.connect()
    reader.replug()
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID
    assert reader.remove() is card
    assert reader.remove() is None
    with SimReader() as other:
        other.insert(card)
    other.close()
    with pytest.raises(ReaderUnplugged, match="closed"):
        tx(other, "FF CA 00 00 00")  # GET DATA UID on a closed reader
    with pytest.raises(InvalidArgument, match="model"):
        SimReader(model="acr38")  # type: ignore[arg-type]


def test_acs_led_and_buzzer() -> None:
    reader = SimReader(model="acr122u")
    reader.insert(transport_card())
    assert tx(reader, "FF 00 40 0F 04 01 01 01 01") == "90 03"  # LED red+green on, beep once
    assert tx(reader, "FF 00 40 04 04 00 00 00 00") == "90 02"  # LED red off (masked), green kept
    assert tx(reader, "FF 00 40 0F 04 01 01") == "63 00"  # LED/buzzer truncated
    assert tx(reader, "FF 00 52 00 00") == "90 00"  # buzzer on detection off
    assert tx(reader, "FF 00 00 00 04 D4 4A 01 00") == "63 00"  # direct transmit: not simulated
    assert reader.memory.beeps == 1


def test_two_threads_share_one_reader() -> None:
    reader = SimReader()
    reader.insert(transport_card())
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(200):
                assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=hammer, name="sim-test-bridge")
    worker.start()
    hammer()
    worker.join()
    assert errors == []
    assert reader.apdu_count == 400
    assert reader.clock.now_ms == 400 * 5.0
