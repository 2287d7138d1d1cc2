"""Retail product codes: EAN-13, EAN-8, UPC-A, UPC-E, with the GS1 mod-10 check digit.

A misread EAN still looks like thirteen digits; the check digit is what catches it, so a product
code whose check digit is wrong is reported as invalid, never looked up.

The GS1 arithmetic is biip's (``biip.checksums.gs1_standard_check_digit``, UPC-E expansion by
``biip.upc.Upc``); what stays here is ours: ASCII digits only (biip accepts any Unicode
decimal), a code with a wrong check digit kept and reported with the digit expected (biip
refuses it), and the EAN-8 / UPC-E choice for eight digits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from biip.checksums import gs1_standard_check_digit
from biip.upc import Upc

__all__ = ["ProductCode", "ProductKind", "gs1_check_digit", "parse_product", "upce_to_upca"]


class ProductKind(enum.StrEnum):
    EAN13 = "EAN13"
    EAN8 = "EAN8"
    UPCA = "UPCA"
    UPCE = "UPCE"


@dataclass(frozen=True, slots=True)
class ProductCode:
    """A product code as scanned, and its GTIN-14 (zero-padded; UPC-E expanded first)."""

    kind: ProductKind
    code: str
    gtin14: str
    check_ok: bool
    expected_check: int


def gs1_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for ``body`` (all digits except the check digit).

    Weights 3,1,3,1... from the rightmost body digit, whatever the code's length.
    """
    if not body.isdecimal() or not body.isascii():
        raise ValueError(f"check digit body must be ASCII digits, got {len(body)} chars")
    return gs1_standard_check_digit(body)


def upce_to_upca(upce: str) -> str:
    """Expand an 8-digit UPC-E (number system 0/1, six digits, check) to its 12-digit UPC-A."""
    if len(upce) != 8 or not upce.isdecimal() or not upce.isascii():
        raise ValueError(f"UPC-E must be 8 ASCII digits, got {len(upce)} chars")
    if upce[0] not in "01":
        raise ValueError(f"UPC-E number system must be 0 or 1, got {upce[0]}")
    # biip expands the seven digits without the check digit (it computes the right one); the
    # scanned check digit is kept, so a misread shows as a check digit that does not match
    return Upc.parse(upce[:7]).as_upc_a()[:-1] + upce[7]


_LENGTHS = {13: ProductKind.EAN13, 12: ProductKind.UPCA}


def parse_product(code: str, *, upce: bool = False) -> ProductCode | None:
    """Parse ``code`` as a retail product code, or None when its shape is not one.

    Eight digits are EAN-8 unless ``upce`` is set (the AIM id said UPC/EAN and EAN-8 has its own
    id ``]E4``) or they fail as EAN-8 but pass as UPC-E.
    """
    if not code.isascii() or not code.isdecimal():
        return None
    if len(code) in _LENGTHS:
        kind = _LENGTHS[len(code)]
        expected = gs1_check_digit(code[:-1])
        return ProductCode(kind, code, code.zfill(14), int(code[-1]) == expected, expected)
    if len(code) != 8:
        return None
    ean8_expected = gs1_check_digit(code[:-1])
    ean8 = ProductCode(
        ProductKind.EAN8, code, code.zfill(14), int(code[-1]) == ean8_expected, ean8_expected
    )
    if code[0] not in "01" or (ean8.check_ok and not upce):
        return ean8
    upca = upce_to_upca(code)
    expected = gs1_check_digit(upca[:-1])
    as_upce = ProductCode(
        ProductKind.UPCE, code, upca.zfill(14), int(code[-1]) == expected, expected
    )
    if upce or as_upce.check_ok:
        return as_upce
    return ean8
