"""Value blocks: golden vectors from the datasheet/ACS manuals, round trips, torn blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare.value import (
    INT32_MAX,
    INT32_MIN,
    ValueBlock,
    decode_value_block,
    encode_value_block,
    is_value_block,
)

GOLDEN = [
    (1234567, 17, "87 D6 12 00 78 29 ED FF 87 D6 12 00 11 EE 11 EE"),
    (100, 5, "64 00 00 00 9B FF FF FF 64 00 00 00 05 FA 05 FA"),
    (0, 0, "00 00 00 00 FF FF FF FF 00 00 00 00 00 FF 00 FF"),
    (-1, 255, "FF FF FF FF 00 00 00 00 FF FF FF FF FF 00 FF 00"),
]


@pytest.mark.parametrize(("value", "adr", "hexbytes"), GOLDEN)
def test_golden_vectors(value: int, adr: int, hexbytes: str) -> None:
    raw = bytes.fromhex(hexbytes)
    assert encode_value_block(value, adr) == raw
    assert decode_value_block(raw) == ValueBlock(value, adr)
    assert is_value_block(raw)


values = st.integers(INT32_MIN, INT32_MAX)
addresses = st.integers(0, 255)


@settings(max_examples=200)
@given(values, addresses)
def test_round_trip(value: int, adr: int) -> None:
    raw = ValueBlock(value, adr).to_bytes()
    assert len(raw) == 16
    assert decode_value_block(raw, block=9) == ValueBlock(value, adr)


@settings(max_examples=150)
@given(values, addresses, st.integers(0, 127))
def test_any_single_bit_flip_is_detected(value: int, adr: int, bit: int) -> None:
    raw = bytearray(encode_value_block(value, adr))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert not is_value_block(bytes(raw))
    with pytest.raises(MalformedBlock, match="block 12 "):
        decode_value_block(bytes(raw), block=12)


def test_value_differs_from_inverted_copy() -> None:
    raw = bytearray(encode_value_block(100, 5))
    raw[4] = 0x00  # ~V no longer inverts V
    with pytest.raises(MalformedBlock, match="block 8 inverted value") as err:
        decode_value_block(bytes(raw), block=8)
    assert err.value.field == "inverted value"
    assert err.value.block == 8


def test_third_copy_differs() -> None:
    raw = bytearray(encode_value_block(100, 5))
    raw[8] = 0x65
    with pytest.raises(MalformedBlock, match="value copy"):
        decode_value_block(bytes(raw))


def test_address_mismatches() -> None:
    raw = bytearray(encode_value_block(100, 5))
    raw[13] = 0xFB  # ~adr wrong
    with pytest.raises(MalformedBlock, match="address"):
        decode_value_block(bytes(raw))
    raw = bytearray(encode_value_block(100, 5))
    raw[14], raw[15] = 0x06, 0xF9  # second copy is self-consistent but different
    with pytest.raises(MalformedBlock, match="address copy"):
        decode_value_block(bytes(raw))


def test_ordinary_data_block_is_not_a_value_block() -> None:
    assert not is_value_block(bytes(16))
    assert not is_value_block(b"\xff" * 16)
    assert not is_value_block(bytes(15))
    assert not is_value_block("00" * 16)


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(17), "00" * 16, 42, None])
def test_wrong_length_or_type(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="block 4 value block"):
        decode_value_block(bad, block=4)


@pytest.mark.parametrize(
    ("value", "adr", "field"),
    [
        (INT32_MAX + 1, 0, "value"),
        (INT32_MIN - 1, 0, "value"),
        (1.5, 0, "value"),
        (True, 0, "value"),
        (0, 256, "address"),
        (0, -1, "address"),
    ],
)
def test_encode_rejects_out_of_range(value: object, adr: object, field: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field}|INVALID_ARGUMENT: {field}") as err:
        encode_value_block(value, adr)  # type: ignore[arg-type]
    assert err.value.field == field
