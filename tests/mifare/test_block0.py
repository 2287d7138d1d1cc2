"""Block 0 parsing and the MCT sanity rules, good and bad examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare.block0 import Severity, bcc, check_block0, parse_block0
from daemon.mifare.geometry import CardSize


def _codes(hexblock: str, size: CardSize = CardSize.CLASSIC_1K, uid_length: int = 4) -> set[str]:
    b0 = parse_block0(bytes.fromhex(hexblock), uid_length=uid_length)
    return {f.code for f in check_block0(b0, size)}


def _errors(hexblock: str, size: CardSize = CardSize.CLASSIC_1K, uid_length: int = 4) -> set[str]:
    b0 = parse_block0(bytes.fromhex(hexblock), uid_length=uid_length)
    return {f.code for f in check_block0(b0, size) if f.severity is Severity.ERROR}


def test_reference_example_parses_and_is_valid() -> None:
    b0 = parse_block0(bytes.fromhex("11223344 44 08 0400 6263646566676869"))
    assert b0.uid == bytes.fromhex("11223344")
    assert b0.bcc == 0x44
    assert b0.sak == 0x08
    assert b0.atqa == bytes.fromhex("0400")
    assert b0.atqa_value == 0x0004
    assert b0.manufacturer_data == b"bcdefghi"
    findings = check_block0(b0)
    assert not [f for f in findings if f.severity is Severity.ERROR]
    # valid, but its manufacturer data is the magic-card default: the technician is told
    assert [f.code for f in findings] == ["MAGIC_DEFAULT_DATA"]


def test_bad_bcc() -> None:
    assert _errors("11223344 45 08 0400 0000000000000000") == {"BCC_MISMATCH"}


def test_uid0_cascade_tag_and_reserved() -> None:
    assert "UID0_CASCADE_TAG" in _errors(
        f"88223344 {0x88 ^ 0x22 ^ 0x33 ^ 0x44:02x} 08 0400 " + "00" * 8
    )
    assert "UID0_RESERVED" in _errors(
        f"F8223344 {0xF8 ^ 0x22 ^ 0x33 ^ 0x44:02x} 08 0400 " + "00" * 8
    )


def test_atqa_per_size() -> None:
    good_4k = "11223344 44 18 0200 0000000000000000"
    assert _errors(good_4k, CardSize.CLASSIC_4K) == set()
    assert "ATQA_UNEXPECTED" in _errors(good_4k, CardSize.CLASSIC_1K)
    assert "ATQA_UNEXPECTED" in _errors("11223344 44 08 4400 0000000000000000")
    # SmartMX / TNP3xxx ATQAs are accepted as special
    assert "ATQA_SPECIAL" in _codes("11223344 44 08 0403 0000000000000000")
    assert "ATQA_SPECIAL" in _codes("11223344 44 08 4801 0000000000000000")
    assert "ATQA_SPECIAL" in _codes("11223344 44 08 010F 0000000000000000")


def test_sak_rules() -> None:
    assert _errors("11223344 44 09 0400 0000000000000000", CardSize.MINI) == set()
    assert "SAK_SIZE_MISMATCH" in _errors("11223344 44 09 0400 0000000000000000")
    assert "SAK_SIZE_MISMATCH" in _errors("11223344 44 18 0400 0000000000000000")
    assert "SAK_NOT_CLASSIC" in _errors("11223344 44 20 0400 0000000000000000")
    assert "SAK_NOT_CLASSIC" in _errors("11223344 44 0A 0400 0000000000000000")


def test_sak_plus_0x80_variant_is_accepted_and_noted() -> None:
    codes = _codes("11223344 44 88 0400 0000000000000000")
    assert "SAK_HIGH_BIT" in codes
    assert _errors("11223344 44 88 0400 0000000000000000") == set()


def test_seven_byte_uid() -> None:
    b0 = parse_block0(bytes.fromhex("04A1B2C3D4E5F6 08 4400 112233445566"), uid_length=7)
    assert b0.uid == bytes.fromhex("04A1B2C3D4E5F6")
    assert b0.bcc is None
    assert b0.sak == 0x08
    assert b0.atqa_value == 0x0044
    assert b0.manufacturer_data == bytes.fromhex("112233445566")
    assert _codes("04A1B2C3D4E5F6 08 4400 112233445566", uid_length=7) == {"MANUFACTURER_NXP"}
    assert _errors("04A1B2C3D4E5F6 18 4200 112233445566", CardSize.CLASSIC_4K, 7) == set()


@pytest.mark.parametrize(
    ("hexblock", "code"),
    [
        ("81A1B2C3D4E5F6 08 4400 112233445566", "UID0_INVALID"),
        ("FEA1B2C3D4E5F6 08 4400 112233445566", "UID0_INVALID"),
        ("00A1B2C3D4E5F6 08 4400 112233445566", "UID0_ZERO"),
        ("04A1B288D4E5F6 08 4400 112233445566", "UID3_CASCADE_TAG"),
        ("04A1B2C3D4E5F6 08 0400 112233445566", "ATQA_UNEXPECTED"),
    ],
)
def test_seven_byte_uid_rules(hexblock: str, code: str) -> None:
    assert code in _errors(hexblock, uid_length=7)


@pytest.mark.parametrize(
    ("fida", "fidb", "model"),
    [(0x03, 0x90, "FM11RF08S"), (0x02, 0x1D, "FM11RF08 "), (0x00, 0x98, "variant")],
)
def test_fudan_fingerprint(fida: int, fidb: int, model: str) -> None:
    raw = bytes.fromhex("11223344 44 08 0400") + bytes([fida]) + bytes(6) + bytes([fidb])
    findings = check_block0(parse_block0(raw))
    fudan = [f for f in findings if f.code == "FUDAN_CHIP"]
    assert len(fudan) == 1
    assert model in fudan[0].message


def test_no_fudan_hint_on_ordinary_data() -> None:
    assert "FUDAN_CHIP" not in _codes("11223344 44 08 0400 0000000000000000")
    assert "FUDAN_CHIP" not in _codes("04A1B2C3D4E5F6 08 4400 03000000001D", uid_length=7)


@settings(max_examples=100)
@given(st.binary(min_size=4, max_size=4).filter(lambda u: u[0] not in (0x88, 0xF8)))
def test_any_well_formed_4_byte_block0_has_no_errors(uid: bytes) -> None:
    raw = uid + bytes([bcc(uid), 0x08, 0x04, 0x00]) + bytes(8)
    b0 = parse_block0(raw)
    assert b0.uid == uid
    assert not [f for f in check_block0(b0) if f.severity is Severity.ERROR]


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(17), "00" * 16, None])
def test_wrong_length_or_type(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="block 0 manufacturer block"):
        parse_block0(bad)


def test_uid_length_must_be_4_or_7() -> None:
    with pytest.raises(InvalidArgument, match="uid_length"):
        parse_block0(bytes(16), uid_length=10)
