"""Card format v1 codecs: golden bytes, round trips, and attacker-controlled input."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import CardDaemonError, MalformedBlock, UnknownCardFormat
from daemon.keystore import Keystore
from daemon.membercard.layout import (
    Header,
    SlotState,
    mac_slot,
    slot_checksum_ok,
    slot_for_counter,
    verify_slot,
)
from daemon.membercard.session import RawImage
from daemon.membercard.state import SlotStatus, _slot_view, evaluate
from daemon.mifare.value import encode_value_block

KS = Keystore.generate()
UID = bytes.fromhex("04A1B2C3")
HEADER = Header("0012345", 3, dt.date(2028, 12, 31), dt.date(2026, 11, 23))


def test_header_golden_bytes() -> None:
    raw = HEADER.encode()
    assert raw.hex(" ").upper() == "CD 01 00 12 34 5F FF FF FF FF 03 00 29 60 26 5F"
    # magic, version, BCD member ID "0012345" padded with F, tier 3, generation 0,
    # 2028-12-31, 2026-11-23
    assert Header.decode(raw) == HEADER


def test_state_golden_bytes_and_slot_parity() -> None:
    state = SlotState(7, 123_456, 89, bytes.fromhex("DEADBEEF"))
    assert state.encode().hex(" ").upper() == ("00 00 00 07 00 01 E2 40 00 00 00 59 DE AD BE EF")
    assert SlotState.decode(state.encode(), block=4) == state
    assert [slot_for_counter(c) for c in (1, 2, 3, 4)] == [0, 1, 0, 1]


def test_mac_binds_uid_slot_header_and_state() -> None:
    state = SlotState(2, 500, 1, b"\x00\x01\x02\x03")
    header = HEADER.encode()
    mac = mac_slot(KS, UID, header, state)
    raw = state.encode()
    assert slot_checksum_ok(raw, mac)
    assert verify_slot(KS, UID, header, raw, mac, 1)
    assert not verify_slot(KS, bytes.fromhex("04A1B2C4"), header, raw, mac, 1)  # other UID
    assert not verify_slot(KS, UID, header, raw, mac, 0)  # copied into the other slot
    other_header = Header("0012346", 3, None, dt.date(2026, 11, 23)).encode()
    assert not verify_slot(KS, UID, other_header, raw, mac, 1)
    edited = SlotState(2, 50_000, 1, b"\x00\x01\x02\x03").encode()
    assert not verify_slot(KS, UID, header, edited, mac, 1)
    assert not verify_slot(Keystore.generate(), UID, header, raw, mac, 1)  # other MAC key


def test_header_byte_11_is_the_replacement_generation() -> None:
    raw = bytes.fromhex("CD01123FFFFFFFFFFFFF0003FFFF2960")
    assert Header.decode(raw).generation == 3
    assert Header.decode(raw).encode() == raw
    with pytest.raises(MalformedBlock, match="generation"):
        Header("1", 0, None, dt.date(2026, 1, 1), generation=256)


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        (bytes(16), UnknownCardFormat, "magic 00"),
        (bytes.fromhex("CD03") + bytes(14), UnknownCardFormat, "version 3"),
        (bytes.fromhex("CD01AAAAAAAAAAAAAAAA0000FFFF2960"), MalformedBlock, "member_id"),
        (bytes.fromhex("CD01123FFFFFFFFFFFFF0000FFFFFFFF"), MalformedBlock, "issued"),
        (b"\xcd\x01", MalformedBlock, "16 bytes"),
    ],
)
def test_bad_headers_name_the_field(raw: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Header.decode(raw)


@pytest.mark.parametrize(
    "values",
    [(0, 1, 1), (1, -1, 0), (1, 0, 2**31), (2**31, 0, 0)],
)
def test_state_ranges(values: tuple[int, int, int]) -> None:
    with pytest.raises(MalformedBlock):
        SlotState(*values, b"\x00" * 4)
    with pytest.raises(MalformedBlock, match="member_id"):
        Header("", 0, None, dt.date(2026, 1, 1))


def test_torn_and_edited_slots_are_told_apart() -> None:
    header = HEADER.encode()
    state = SlotState(3, 100, 0, b"abcd")
    mac = mac_slot(KS, UID, header, state)
    image = RawImage(UID, b"", b"", header, ((state.encode(), mac), (bytes(16), bytes(16))))
    assert _slot_view(KS, image, 0, HEADER).status is SlotStatus.VALID
    assert _slot_view(KS, image, 1, HEADER).status is SlotStatus.EMPTY
    torn = RawImage(UID, b"", b"", header, ((b"\x5a" * 16, mac), (bytes(16), bytes(16))))
    assert _slot_view(KS, torn, 0, HEADER).status is SlotStatus.GARBAGE
    forged = SlotState(3, 99_999, 0, b"abcd").encode()
    fixed_crc = mac[:1] + zlib.crc32(forged).to_bytes(4, "big") + mac[5:]
    edited = RawImage(UID, b"", b"", header, ((forged, fixed_crc), (bytes(16), bytes(16))))
    assert _slot_view(KS, edited, 0, HEADER).status is SlotStatus.FORMED


block16 = st.binary(min_size=16, max_size=16)


@settings(max_examples=200, deadline=None)
@given(
    header=st.one_of(block16, st.just(HEADER.encode())),
    slots=st.tuples(st.tuples(block16, block16), st.tuples(block16, block16)),
    primary=st.one_of(
        block16, st.integers(-(2**31), 2**31 - 1).map(lambda v: encode_value_block(v, 12))
    ),
    backup=block16,
)
def test_any_card_bytes_give_a_state_or_a_typed_refusal(
    header: bytes,
    slots: tuple[tuple[bytes, bytes], tuple[bytes, bytes]],
    primary: bytes,
    backup: bytes,
) -> None:
    image = RawImage(UID, primary, backup, header, slots)
    try:
        state = evaluate(KS, image)
    except CardDaemonError:
        return
    assert 0 <= state.current.balance < 2**31  # only a valid MAC'd record can get here
