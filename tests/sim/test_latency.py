"""Latency on the virtual clock: reader overhead per APDU plus NXP air time per chip command."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidArgument
from sim.clock import VirtualClock
from sim.latency import get_profile
from sim.reader import SimReader
from tests.sim.helpers import tx, value_sector_card

DEBIT_FLOW = [
    ("FF 82 00 00 06 A0 A1 A2 A3 A4 A5", "90 00"),  # LOAD KEY slot 0: reader only
    ("FF 86 00 00 05 01 00 08 60 00", "90 00"),  # GENERAL AUTHENTICATE block 8: + 2 ms
    ("FF B1 00 08 04", "00 00 00 64 90 00"),  # VALUE READ block 8: + 2.5 ms read
    ("FF D7 00 08 05 02 00 00 00 0A", "90 00"),  # VALUE decrement: + 2.5 dec + 4.5 transfer
    ("FF B0 00 08 10", None),  # READ BINARY block 8 (verify): + 2.5 ms
]


@pytest.mark.parametrize(
    ("model", "expected_ms"), [("acr1252u", 5 * 5 + 14.0), ("acr122u", 5 * 25 + 14.0)]
)
def test_debit_flow_total(model: str, expected_ms: float) -> None:
    reader = SimReader(model=model)  # type: ignore[arg-type]
    reader.insert(value_sector_card())
    for apdu, answer in DEBIT_FLOW:
        got = tx(reader, apdu)
        assert answer is None or got == answer
    assert reader.clock.now_ms == expected_ms
    assert reader.profile.name == model


def test_failures_cost_time_too_and_reselect_costs_selection() -> None:
    clock = VirtualClock(1000.0)
    reader = SimReader(clock=clock, latency="acr1252u")
    reader.insert(value_sector_card())
    assert tx(reader, "FF 82 00 00 06 00 00 00 00 00 00") == "90 00"  # LOAD KEY slot 0 wrong key
    assert tx(reader, "FF 86 00 00 05 01 00 08 60 00") == "63 00"  # GENERAL AUTHENTICATE fails
    assert clock.now_ms == 1000.0 + 5 + 5 + 2
    reader.reselect()
    assert clock.now_ms == 1000.0 + 12 + 2.5


def test_profiles_and_clock_errors() -> None:
    assert SimReader(model="omnikey5x21").profile.name == "acr1252u"
    quiet = SimReader(latency="none")
    quiet.insert(value_sector_card())
    tx(quiet, "FF CA 00 00 00")  # GET DATA UID
    assert quiet.clock.now_ms == 0.0
    with pytest.raises(InvalidArgument, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(InvalidArgument, match="backwards"):
        VirtualClock().advance(-1)
    with pytest.raises(InvalidArgument, match="start_ms"):
        VirtualClock(-5)
