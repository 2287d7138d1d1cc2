"""Access conditions: byte codec with inverted copies, and the NXP permission tables.

The expected tables below are copied literally from the datasheet tables (MF1S50yyX §8.7.2
and §8.7.3, as reproduced in docs/reference/mifare.md §2.2). They are data, not computed by
the code under test, so a transcription error in ``daemon.mifare.access`` shows up here.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import InvalidArgument, MalformedBlock, UnsafeAccessBits
from daemon.mifare.access import (
    DATA_OPERATIONS,
    TRAILER_OPERATIONS,
    TRANSPORT,
    AccessCondition,
    AccessConditions,
    BlockKind,
    Key,
    Operation,
    allows,
    allows_block,
    effective_keys,
    format_keys,
    permitted_keys,
    sector_warnings,
)
from daemon.mifare.geometry import CardSize

# C1C2C3 | read | write | increment | decrement, transfer, restore
DATASHEET_DATA_TABLE = """
000 | A|B   | A|B   | A|B   | A|B
010 | A|B   | never | never | never
100 | A|B   | B     | never | never
110 | A|B   | B     | B     | A|B
001 | A|B   | never | never | A|B
011 | B     | B     | never | never
101 | B     | never | never | never
111 | never | never | never | never
"""

# C1C2C3 | key A read | key A write | access read | access write | key B read | key B write
DATASHEET_TRAILER_TABLE = """
000 | never | A     | A   | never | A     | A
010 | never | never | A   | never | A     | never
100 | never | B     | A|B | never | never | B
110 | never | never | A|B | never | never | never
001 | never | A     | A   | A     | A     | A
011 | never | B     | A|B | B     | never | B
101 | never | never | A|B | B     | never | never
111 | never | never | A|B | never | never | never
"""


def _keys(cell: str) -> frozenset[Key]:
    cell = cell.strip()
    if cell == "never":
        return frozenset()
    return frozenset(Key(k) for k in cell.split("|"))


def _table(text: str) -> dict[str, list[frozenset[Key]]]:
    rows: dict[str, list[frozenset[Key]]] = {}
    for line in text.strip().splitlines():
        bits, rest = line.split("|", 1)
        # cells are separated by " | " (spaces), while "A|B" has none
        rows[bits.strip()] = [_keys(c) for c in rest.split(" | ")]
    return rows


DATA = _table(DATASHEET_DATA_TABLE)
TRAILER = _table(DATASHEET_TRAILER_TABLE)
ALL_BITS = ["".join(b) for b in itertools.product("01", repeat=3)]


def test_literal_tables_parsed_completely() -> None:
    assert sorted(DATA) == sorted(ALL_BITS)
    assert sorted(TRAILER) == sorted(ALL_BITS)
    assert all(len(r) == 4 for r in DATA.values())
    assert all(len(r) == 6 for r in TRAILER.values())
    assert DATA["110"] == [_keys("A|B"), _keys("B"), _keys("B"), _keys("A|B")]


def _b_readable(trailer_bits: str) -> bool:
    return bool(TRAILER[trailer_bits][4])


@pytest.mark.parametrize("bits", ALL_BITS)
def test_data_table_matches_datasheet_exhaustively(bits: str) -> None:
    cond = AccessCondition.parse(bits)
    for i, op in enumerate(DATA_OPERATIONS):
        assert permitted_keys(cond, BlockKind.DATA, op) == DATA[bits][i], (bits, op)
    # Every trailer condition: key B is usable only where the trailer keeps it secret.
    for trailer_bits in ALL_BITS:
        conds = AccessConditions.of(bits, bits, bits, trailer_bits)
        for group in (0, 1, 2):
            for i, op in enumerate(DATA_OPERATIONS):
                for key in Key:
                    expected = key in DATA[bits][i] and not (
                        key is Key.B and _b_readable(trailer_bits)
                    )
                    assert allows(conds, group, op, key) is expected, (
                        bits,
                        trailer_bits,
                        op,
                        key,
                    )


@pytest.mark.parametrize("bits", ALL_BITS)
def test_trailer_table_matches_datasheet_exhaustively(bits: str) -> None:
    cond = AccessCondition.parse(bits)
    conds = AccessConditions.of("000", "000", "000", bits)
    assert conds.key_b_readable is _b_readable(bits)
    for i, op in enumerate(TRAILER_OPERATIONS):
        assert permitted_keys(cond, BlockKind.TRAILER, op) == TRAILER[bits][i]
        for key in Key:
            expected = key in TRAILER[bits][i] and not (key is Key.B and _b_readable(bits))
            assert conds.allows(3, op, key) is expected, (bits, op, key)


def test_key_b_readable_refuses_every_key_b_access() -> None:
    # Transport trailer 001: key B readable, so "A|B" in the data table means A only.
    assert TRANSPORT.key_b_readable
    for op in DATA_OPERATIONS:
        assert not allows(TRANSPORT, 0, op, Key.B)
        assert allows(TRANSPORT, 0, op, Key.A)
    # 011 data block under a key-B-readable trailer is unusable by anyone.
    conds = AccessConditions.of("011", "011", "011", "001")
    assert effective_keys(conds, 1, Operation.READ) == frozenset()


# --- byte codec -------------------------------------------------------------------------------

GOLDEN = [
    ("FF 07 80", ("000", "000", "000", "001")),  # transport configuration
    ("7F 07 88", ("000", "000", "000", "011")),
    ("78 77 88", ("100", "100", "100", "011")),
    ("08 77 8F", ("110", "110", "110", "011")),  # value sector
    ("48 77 8B", ("110", "110", "100", "011")),
    ("7F 00 F8", ("001", "001", "001", "011")),
    ("07 8F 0F", ("010", "010", "010", "110")),  # read-only, frozen trailer
]


@pytest.mark.parametrize(("hexbytes", "bits"), GOLDEN)
def test_golden_vectors(hexbytes: str, bits: tuple[str, str, str, str]) -> None:
    raw = bytes.fromhex(hexbytes)
    conds = AccessConditions.from_bytes(raw)
    assert tuple(str(c) for c in (*conds.data, conds.trailer)) == bits
    assert AccessConditions.of(*bits).to_bytes(allow_permanent_lock=True) == raw


def test_transport_constant() -> None:
    assert TRANSPORT.to_bytes() == bytes.fromhex("FF0780")


def test_every_configuration_round_trips() -> None:
    for combo in itertools.product(ALL_BITS, repeat=4):
        conds = AccessConditions.of(*combo)
        raw = conds.to_bytes(allow_permanent_lock=True)
        assert AccessConditions.from_bytes(raw) == conds


@pytest.mark.parametrize(("hexbytes", "bits"), GOLDEN)
def test_any_single_bit_flip_is_malformed(hexbytes: str, bits: object) -> None:
    raw = bytes.fromhex(hexbytes)
    for bit in range(24):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(MalformedBlock, match=r"block 7 access bits: .*inverted copy"):
            AccessConditions.from_bytes(bytes(flipped), block=7)


@settings(max_examples=300)
@given(st.binary(min_size=3, max_size=3))
def test_random_bytes_decode_only_when_consistent(raw: bytes) -> None:
    b6, b7, b8 = raw
    consistent = (b6 ^ ((b8 & 0xF) << 4 | b7 >> 4)) == 0xFF and (b7 & 0xF) ^ (b8 >> 4) == 0xF
    if consistent:
        assert AccessConditions.from_bytes(raw).to_bytes(allow_permanent_lock=True) == raw
    else:
        with pytest.raises(MalformedBlock):
            AccessConditions.from_bytes(raw)


def test_malformed_message_names_which_copy() -> None:
    with pytest.raises(MalformedBlock, match="C2") as err:
        AccessConditions.from_bytes(bytes.fromhex("EF0780"), block=3)
    assert err.value.block == 3
    assert err.value.field == "access bits"
    with pytest.raises(MalformedBlock, match="C1"):
        AccessConditions.from_bytes(bytes.fromhex("FE0780"))
    with pytest.raises(MalformedBlock, match="C3"):
        AccessConditions.from_bytes(bytes.fromhex("FF0680"))


@pytest.mark.parametrize("bad", [b"", b"\xff\x07", b"\xff\x07\x80\x69", "FF0780", None, 3])
def test_wrong_length_or_type_rejected(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="block 11 access bits"):
        AccessConditions.from_bytes(bad, block=11)


# --- safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize("trailer", ALL_BITS)
def test_permanent_trailers_refused_without_technician_flag(trailer: str) -> None:
    conds = AccessConditions.of("000", "000", "000", trailer)
    # literal table: column 4 is "access bits write"
    permanent = not TRAILER[trailer][3]
    assert conds.is_permanent is permanent
    if permanent:
        with pytest.raises(UnsafeAccessBits, match=f"trailer condition {trailer}"):
            conds.to_bytes()
        assert len(conds.to_bytes(allow_permanent_lock=True)) == 3
    else:
        assert len(conds.to_bytes()) == 3


def test_bad_arguments_are_typed() -> None:
    with pytest.raises(InvalidArgument, match="access condition"):
        AccessCondition.parse("12")
    with pytest.raises(InvalidArgument, match="c2"):
        AccessCondition(0, 2, 0)
    with pytest.raises(InvalidArgument, match="group"):
        TRANSPORT.group(4)
    with pytest.raises(InvalidArgument, match="operation"):
        permitted_keys(AccessCondition(0, 0, 0), BlockKind.DATA, Operation.READ_KEY_B)
    with pytest.raises(InvalidArgument, match="operation"):
        permitted_keys(AccessCondition(0, 0, 0), BlockKind.TRAILER, Operation.READ)
    with pytest.raises(InvalidArgument, match="key"):
        allows(TRANSPORT, 0, Operation.READ, "A")  # type: ignore[arg-type]


def test_descriptions_for_technicians() -> None:
    assert format_keys(frozenset({Key.B, Key.A})) == "A|B"
    assert format_keys(frozenset()) == "never"
    assert "value block" in AccessCondition.parse("110").describe(BlockKind.DATA)
    assert "transport" in AccessCondition.parse("001").describe(BlockKind.TRAILER)
    cond = AccessCondition(1, 1, 0)
    assert AccessCondition.parse(cond) is cond
    assert TRANSPORT.group(3) == AccessCondition(0, 0, 1)


def test_allows_block_maps_4k_groups_and_freezes_block_0() -> None:
    conds = AccessConditions.of("000", "110", "111", "011")
    k4 = CardSize.CLASSIC_4K
    assert allows_block(conds, 132, Operation.WRITE, Key.A, k4)  # group 0
    assert not allows_block(conds, 133, Operation.WRITE, Key.A, k4)  # group 1: B only
    assert allows_block(conds, 137, Operation.DECREMENT, Key.A, k4)
    assert not allows_block(conds, 142, Operation.READ, Key.B, k4)  # group 2: never
    assert allows_block(conds, 143, Operation.WRITE_ACCESS_BITS, Key.B, k4)
    # block 0 is factory write-protected whatever the bits say
    assert allows_block(TRANSPORT, 0, Operation.READ, Key.A)
    for op in (Operation.WRITE, Operation.INCREMENT, Operation.DECREMENT):
        assert not allows_block(TRANSPORT, 0, op, Key.A)
    assert allows_block(TRANSPORT, 1, Operation.WRITE, Key.A)


def test_sector_warnings() -> None:
    assert sector_warnings(AccessConditions.of("110", "110", "110", "011")) == ()
    staging = sector_warnings(AccessConditions.of("110", "110", "000", "011"))
    assert len(staging) == 1
    assert "stage any value" in staging[0]
    unusable = sector_warnings(AccessConditions.of("011", "000", "000", "001"))
    assert any("group 0 (011)" in w and "unusable" in w for w in unusable)
