"""Sector trailer build/parse: keys as written vs keys as read back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument, MalformedBlock, UnsafeAccessBits
from daemon.mifare.access import TRANSPORT, AccessConditions
from daemon.mifare.trailer import (
    DEFAULT_KEY,
    SectorTrailer,
    build_trailer,
    parse_trailer_read,
    transport_trailer,
)

VALUE_SECTOR = AccessConditions.of("110", "110", "110", "011")  # 08 77 8F
KEY_A = bytes.fromhex("A1A2A3A4A5A6")
KEY_B = bytes.fromhex("B1B2B3B4B5B6")


def test_transport_trailer_bytes() -> None:
    assert transport_trailer() == bytes.fromhex("FFFFFFFFFFFF FF0780 69 FFFFFFFFFFFF")


def test_build_places_every_field() -> None:
    raw = build_trailer(KEY_A, VALUE_SECTOR, KEY_B, gpb=0x00)
    assert raw == KEY_A + bytes.fromhex("08778F") + b"\x00" + KEY_B


def test_repr_never_shows_keys() -> None:
    text = repr(SectorTrailer(KEY_A, VALUE_SECTOR, KEY_B))
    assert "a1a2" not in text.lower()
    assert "\\xa1" not in text
    assert "b1b2" not in text.lower()
    readback = parse_trailer_read(transport_trailer())
    assert "\\xff" not in repr(readback)


@settings(max_examples=60)
@given(
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 255),
    st.sampled_from(["001", "011", "101"]),
    st.lists(
        st.sampled_from(["000", "010", "100", "110", "001", "011", "101", "111"]),
        min_size=3,
        max_size=3,
    ),
)
def test_round_trip_with_keys(
    key_a: bytes, key_b: bytes, gpb: int, trailer_bits: str, data_bits: list[str]
) -> None:
    access = AccessConditions.of(data_bits[0], data_bits[1], data_bits[2], trailer_bits)
    trailer = SectorTrailer(key_a, access, key_b, gpb)
    assert SectorTrailer.from_bytes(trailer.to_bytes()) == trailer


def test_read_back_of_value_sector_hides_key_b() -> None:
    # What a chip returns for a 08 77 8F trailer: key A zeros, key B zeros (not readable).
    read = bytes(6) + bytes.fromhex("08778F") + b"\x69" + bytes(6)
    back = parse_trailer_read(read, block=7)
    assert back.access == VALUE_SECTOR
    assert back.gpb == 0x69
    assert not back.key_b_readable
    assert back.key_b is None
    assert back.anomalies == ()


def test_read_back_of_transport_shows_readable_key_b() -> None:
    read = bytes(6) + bytes.fromhex("FF078069") + DEFAULT_KEY
    back = parse_trailer_read(read)
    assert back.access == TRANSPORT
    assert back.key_b_readable
    assert back.key_b == DEFAULT_KEY


def test_read_back_flags_what_a_genuine_chip_never_returns() -> None:
    read = KEY_A + bytes.fromhex("08778F69") + KEY_B
    back = parse_trailer_read(read)
    assert len(back.anomalies) == 2
    assert "key A" in back.anomalies[0]


def test_malformed_access_bits_name_the_block() -> None:
    read = bytes(6) + bytes.fromhex("00000069") + bytes(6)
    with pytest.raises(MalformedBlock, match="block 11 access bits"):
        parse_trailer_read(read, block=11)
    with pytest.raises(MalformedBlock, match="block 3 access bits"):
        SectorTrailer.from_bytes(read, block=3)


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(17), "00" * 16, None])
def test_wrong_length_or_type(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="block 63 trailer"):
        parse_trailer_read(bad, block=63)


def test_bad_build_arguments_never_echo_keys() -> None:
    with pytest.raises(InvalidArgument, match="key A: must be 6 bytes, got 5 bytes") as err:
        build_trailer(KEY_A[:5], VALUE_SECTOR, KEY_B)
    assert "a1" not in str(err.value).lower()
    with pytest.raises(InvalidArgument, match="key B: must be 6 bytes, got str"):
        build_trailer(KEY_A, VALUE_SECTOR, "B1B2B3B4B5B6")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="GPB"):
        build_trailer(KEY_A, VALUE_SECTOR, KEY_B, gpb=256)
    with pytest.raises(InvalidArgument, match="access"):
        SectorTrailer(KEY_A, "08778F", KEY_B)  # type: ignore[arg-type]


def test_permanent_lock_needs_the_technician_flag() -> None:
    frozen = AccessConditions.of("010", "010", "010", "110")
    with pytest.raises(UnsafeAccessBits):
        build_trailer(KEY_A, frozen, KEY_B)
    raw = build_trailer(KEY_A, frozen, KEY_B, allow_permanent_lock=True)
    assert raw[6:9] == bytes.fromhex("078F0F")
