"""gtin.py and aim.py stand on biip: the same answers as before, and what biip lacks kept."""

from __future__ import annotations

import pytest
from biip.checksums import gs1_standard_check_digit
from biip.upc import Upc
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.scanners.aim import GS1_AIM_IDS, symbology_for
from daemon.scanners.gtin import gs1_check_digit, parse_product, upce_to_upca

#: the hand-written table these modules had before biip, which must still hold
BEFORE = {
    "]E0": ("EAN13", 104),
    "]E1": ("EAN13", 104),
    "]E3": ("EAN13_S", 119),
    "]E4": ("EAN8", 103),
    "]C0": ("CODE128", 110),
    "]C1": ("GS1_128", 120),
    "]Q0": ("QR", 204),
    "]Q1": ("QR", 204),
    "]Q2": ("QR", 204),
    "]Q3": ("GS1_QR", 209),
    "]Q4": ("GS1_QR", 209),  # biip knows only ]Q3 as GS1 QR
    "]Q5": ("QR", 204),
    "]Q6": ("QR", 204),
    "]d1": ("DATAMATRIX", 203),
    "]d2": ("GS1_DATAMATRIX", 208),
    "]e0": ("GS1_DATABAR", 131),
    "]e1": ("GS1_DATABAR", 131),
    "]A0": ("CODE39", 108),
    "]F0": ("CODABAR", 107),
    "]G0": ("CODE93", 109),
    "]I0": ("ITF", 106),
    "]I1": ("ITF", 106),
    "]L0": ("PDF417", 201),
    "]z0": ("AZTEC", 206),
    "]h0": ("HANXIN", 215),  # biip does not know Han Xin at all
    "]h1": ("HANXIN", 215),
    "]X0": ("OTHER", 501),
    "]Y9": ("UNKNOWN", 0),
    "]W0": ("UNKNOWN", 0),
    "]B0": ("UNKNOWN", 0),
}


@pytest.mark.parametrize(("aim", "expected"), sorted(BEFORE.items()))
def test_symbologies_as_before(aim: str, expected: tuple[str, int]) -> None:
    sym = symbology_for(aim)
    assert (sym.name, sym.upos_type) == expected


def test_gs1_identifiers_as_before() -> None:
    assert frozenset({"]C1", "]Q3", "]Q4", "]d2", "]e0"}) == GS1_AIM_IDS


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_check_digit_is_biips(body: str) -> None:
    assert gs1_check_digit(body) == gs1_standard_check_digit(body)


def test_check_digit_refuses_non_ascii_digits_that_biip_would_take() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        gs1_check_digit("٠١٢")  # Arabic-Indic digits are str.isdecimal()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from("01"), st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_upce_expansion_is_biips_and_keeps_a_wrong_check_digit(ns: str, six: str) -> None:
    right = Upc.parse(ns + six).as_upc_a()
    good = ns + six + right[-1]
    assert upce_to_upca(good) == right
    wrong = str((int(right[-1]) + 1) % 10)
    assert upce_to_upca(ns + six + wrong) == right[:-1] + wrong  # biip would refuse it
    product = parse_product(ns + six + wrong, upce=True)
    assert product is not None
    assert (product.check_ok, product.expected_check) == (False, int(right[-1]))
