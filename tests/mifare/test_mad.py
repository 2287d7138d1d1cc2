"""MAD v1 (AN10787): CRC computed by hand from the rules, a published dump, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare.geometry import CardSize
from daemon.mifare.mad import (
    GPB_MAD_V1,
    MAD_KEY_A,
    NDEF_AID,
    AdminCode,
    Mad1,
    decode_gpb,
    describe_aid,
    mad_crc8,
)

# Sector 0 blocks 1 and 2 of an NFC Forum NDEF-formatted 1K, as published in many public
# dumps (Flipper .nfc files, libnfc/PN532 read-outs): all 15 sectors carry AID E103 (03 E1).
PUBLISHED_NDEF_MAD = bytes.fromhex(
    "14 01 03E1 03E1 03E1 03E1 03E1 03E1 03E1"  # block 1: CRC 14, info 01, AIDs 1-7
    "03E1 03E1 03E1 03E1 03E1 03E1 03E1 03E1"  # block 2: AIDs 8-15
)


def _crc_by_hand(data: bytes) -> int:
    """AN10787: CRC-8, x^8+x^4+x^3+x^2+1, preset C7, MSB first, no final XOR. Bit by bit."""
    register = [int(b) for b in f"{0xC7:08b}"]  # MSB first
    poly_taps = [int(b) for b in f"{0x1D:08b}"]
    for byte in data:
        for bit in f"{byte:08b}":
            feedback = register[0] ^ int(bit)
            register = [*register[1:], 0]
            if feedback:
                register = [r ^ t for r, t in zip(register, poly_taps, strict=True)]
    return int("".join(map(str, register)), 2)


def test_hand_computed_crc_example() -> None:
    # A member-card MAD: sector 1 card holder info, sectors 2-3 our application, rest free.
    body = bytes([0x01]) + bytes.fromhex("0400 3412 3412") + bytes(24)
    assert _crc_by_hand(body) == mad_crc8(body)
    mad = Mad1.for_sectors({1: AdminCode.CARD_HOLDER, 2: 0x1234, 3: 0x1234}, publisher_sector=1)
    assert mad.to_bytes() == bytes([_crc_by_hand(body)]) + body


def test_crc_of_empty_directory_by_hand() -> None:
    assert mad_crc8(bytes(31)) == _crc_by_hand(bytes(31))


def test_published_ndef_mad() -> None:
    assert _crc_by_hand(PUBLISHED_NDEF_MAD[1:]) == 0x14
    mad = Mad1.from_bytes(PUBLISHED_NDEF_MAD)
    assert mad.publisher_sector == 1
    assert mad.aids == (NDEF_AID,) * 15
    assert mad.to_bytes() == PUBLISHED_NDEF_MAD
    assert describe_aid(mad.aid_for_sector(15)) == "NFC Forum NDEF"


@settings(max_examples=100)
@given(st.lists(st.integers(0, 0xFFFF), min_size=15, max_size=15), st.integers(0, 15))
def test_round_trip(aids: list[int], publisher: int) -> None:
    mad = Mad1(tuple(aids), publisher)
    assert Mad1.from_bytes(mad.to_bytes()) == mad


@settings(max_examples=100)
@given(st.integers(0, 31 * 8 - 1))
def test_any_bit_flip_breaks_the_crc(bit: int) -> None:
    raw = bytearray(PUBLISHED_NDEF_MAD)
    raw[1 + bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(MalformedBlock, match="block 1 MAD CRC"):
        Mad1.from_bytes(bytes(raw))


def test_bad_info_byte_with_good_crc() -> None:
    body = bytes([0x10]) + bytes(30)
    with pytest.raises(MalformedBlock, match="MAD info byte"):
        Mad1.from_bytes(bytes([mad_crc8(body)]) + body)
    body = bytes([0x41]) + bytes(30)
    with pytest.raises(MalformedBlock, match="MAD info byte"):
        Mad1.from_bytes(bytes([mad_crc8(body)]) + body)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), "00" * 32, None])
def test_wrong_length_or_type(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="block 1 MAD"):
        Mad1.from_bytes(bad)


def test_mini_marks_missing_sectors_not_applicable() -> None:
    mad = Mad1.for_sectors({1: 0x1234}, size=CardSize.MINI)
    assert mad.aid_for_sector(4) == AdminCode.FREE
    assert mad.aid_for_sector(5) == AdminCode.NOT_APPLICABLE
    assert describe_aid(mad.aid_for_sector(5)).startswith("not applicable")


def test_admin_codes_and_constants() -> None:
    assert int(AdminCode.CARD_HOLDER) == 0x0004
    assert int(AdminCode.NOT_APPLICABLE) == 0x0005
    assert describe_aid(0x0000) == "free"
    assert describe_aid(0x0004) == "card holder info"
    assert describe_aid(0x8812) == "function cluster 88, application 12"
    assert MAD_KEY_A.hex().upper() == "A0A1A2A3A4A5"
    assert GPB_MAD_V1 == 0xC1
    gpb = decode_gpb(GPB_MAD_V1)
    assert (gpb.present, gpb.multi_application, gpb.version) == (True, True, 1)
    assert not decode_gpb(0x69).present


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Mad1((0,) * 14), "MAD AIDs"),
        (lambda: Mad1((0,) * 14 + (0x10000,)), "MAD AID of sector 15"),
        (lambda: Mad1((0,) * 15, 16), "MAD publisher sector"),
        (lambda: Mad1.for_sectors({16: 1}), "MAD sector"),
        (lambda: Mad1.for_sectors({5: 1}, size=CardSize.MINI), "MAD sector"),
        (lambda: Mad1((0,) * 15).aid_for_sector(0), "sector"),
        (lambda: decode_gpb(256), "GPB"),
    ],
)
def test_bad_arguments(call: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        call()  # type: ignore[operator]
    assert err.value.field == field
