"""Block 0 per maker: genuine NXP and Fudan cards do not look like UID-changeable clones."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidArgument
from daemon.mifare.block0 import Severity, check_block0, parse_block0
from daemon.mifare.geometry import CardSize
from sim.card import SimCard
from sim.reader import SimReader
from sim.store import gen1a_card, gen2_card, transport_card
from tests.sim.helpers import tx

_SIZES = {"mini": CardSize.MINI, "1k": CardSize.CLASSIC_1K, "4k": CardSize.CLASSIC_4K}


def _read_block0(card: SimCard, model: str = "acr1252u") -> str:
    reader = SimReader(model=model)  # type: ignore[arg-type]
    reader.insert(card)
    load = "FF 82 20 00 06" if model == "omnikey5x21" else "FF 82 00 00 06"
    assert tx(reader, load + " FF" * 6) == "90 00"  # LOAD KEY slot 0 transport key
    assert tx(reader, "FF 86 00 00 05 01 00 00 60 00") == "90 00"  # GENERAL AUTH block 0 key A
    return tx(reader, "FF B0 00 00 10")  # READ BINARY block 0


@pytest.mark.parametrize(
    ("size", "vendor", "answer"),
    [
        ("1k", "nxp", "11 22 33 44 44 88 04 00 48 0E 15 27 43 0B 00 10 90 00"),  # MF1ICS5007
        ("mini", "nxp", "11 22 33 44 44 89 04 00 47 0E 15 27 43 0B 00 10 90 00"),  # MF1ICS2006
        ("4k", "nxp", "11 22 33 44 44 18 02 00 46 0E 15 27 43 0B 00 10 90 00"),
        ("1k", "fudan", "11 22 33 44 44 08 04 00 02 5B 3E 71 C4 A9 26 1D 90 00"),  # FM11RF08
        ("4k", "fudan", "11 22 33 44 44 18 02 00 46 44 53 37 30 56 30 31 90 00"),  # FM11RF32N
    ],
)
def test_genuine_block0_per_vendor(size: str, vendor: str, answer: str) -> None:
    card = transport_card(size=size, vendor=vendor)  # type: ignore[arg-type]
    assert _read_block0(card) == answer
    findings = check_block0(parse_block0(card.block(0)), _SIZES[size])
    codes = [f.code for f in findings]
    assert "MAGIC_DEFAULT_DATA" not in codes  # the daemon's clone hint stays quiet
    assert [f.code for f in findings if f.severity is Severity.ERROR] == []
    assert ("FUDAN_CHIP" in codes) == (vendor == "fudan" and size == "1k")


def test_default_genuine_card_is_nxp_over_omnikey() -> None:
    answer = _read_block0(transport_card(), "omnikey5x21")
    assert answer == "11 22 33 44 44 88 04 00 48 0E 15 27 43 0B 00 10 90 00"  # READ BINARY 0


@pytest.mark.parametrize("make", [gen1a_card, gen2_card])
def test_magic_cards_keep_the_clone_data(make: object) -> None:
    card = make()  # type: ignore[operator]
    assert _read_block0(card) == "11 22 33 44 44 08 04 00 62 63 64 65 66 67 68 69 90 00"
    codes = [f.code for f in check_block0(parse_block0(card.block(0)))]
    assert codes == ["MAGIC_DEFAULT_DATA"]


def test_seven_byte_fudan_marks_byte_15() -> None:
    card = SimCard.blank(uid=bytes.fromhex("1D2E3F4A5B6C7D"), vendor="fudan")
    assert card.block(0).hex(" ").upper() == "1D 2E 3F 4A 5B 6C 7D 08 44 00 00 00 00 00 00 1D"


def test_bad_vendor_is_named() -> None:
    with pytest.raises(InvalidArgument, match="vendor: 'infineon'"):
        SimCard.blank(vendor="infineon")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="only for a genuine card"):
        SimCard.blank(variant="gen2", vendor="nxp")
    with pytest.raises(InvalidArgument, match="'fudan' makes no mini"):
        SimCard.blank(size="mini", vendor="fudan")
