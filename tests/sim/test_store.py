"""Test-card builders and bad input to the card model."""

from __future__ import annotations

import time

import pytest

from daemon.errors import InvalidArgument
from sim.card import SimCard
from sim.latency import LatencyProfile
from sim.reader import SimReader
from sim.store import gen2_card, set_sector, seven_byte_card, transport_card, value_block
from tests.sim.helpers import tx


def test_builders() -> None:
    card = transport_card(bytes.fromhex("DEADBEEF"), size="4k")
    assert card.block(0).hex(" ").upper() == "DE AD BE EF 22 18 02 00 46 0E 15 27 43 0B 00 10"
    assert card.block(255).hex().upper() == "FFFFFFFFFFFFFF078069FFFFFFFFFFFF"
    assert seven_byte_card().block(0)[7:10] == bytes.fromhex("084400")  # SAK 08, ATQA 0044
    assert gen2_card().variant == "gen2"
    assert value_block(100, 5).hex(" ").upper() == "64 00 00 00 9B FF FF FF 64 00 00 00 05 FA 05 FA"
    assert value_block(1234567, 17).hex().upper() == "87D612007829EDFF87D6120011EE11EE"


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidArgument, match="uid"):
        SimCard(b"\x01\x02")
    with pytest.raises(InvalidArgument, match="size"):
        SimCard(b"\x01\x02\x03\x04", size="2k")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="variant"):
        SimCard(b"\x01\x02\x03\x04", variant="gen4")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="memory: 10 bytes"):
        SimCard(b"\x01\x02\x03\x04", memory=bytes(10))
    with pytest.raises(InvalidArgument, match="uid: does not match"):
        SimCard(b"\x01\x02\x03\x04", memory=bytes(1024))
    with pytest.raises(InvalidArgument, match="value"):
        value_block(2**31, 4)
    with pytest.raises(InvalidArgument, match="adr"):
        value_block(1, 256)
    with pytest.raises(InvalidArgument, match="sector 3: keys"):
        set_sector(transport_card(), 3, key_a=b"\x00")
    with pytest.raises(InvalidArgument, match="sector 3: access"):
        set_sector(transport_card(), 3, access=b"\x00")
    with pytest.raises(InvalidArgument, match="7-byte"):
        seven_byte_card(b"\x01\x02\x03\x04")
    with pytest.raises(InvalidArgument, match="block 4: 16 bytes"):
        transport_card().program(4, b"\x00")


def test_realtime_really_waits() -> None:
    reader = SimReader(latency=LatencyProfile("slow", reader_overhead_ms=20.0), realtime=True)
    reader.insert(transport_card())
    started = time.monotonic()
    assert tx(reader, "FF CA 00 00 00") == "11 22 33 44 90 00"  # GET DATA UID
    assert time.monotonic() - started >= 0.02
    assert reader.clock.now_ms == 20.0
