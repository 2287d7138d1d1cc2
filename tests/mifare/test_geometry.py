"""Block/sector arithmetic for Mini, 1K and 4K, including the 4K's 16-block sectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import BlockNotFound
from daemon.mifare.geometry import (
    CardSize,
    access_group,
    block_count,
    blocks_in_sector,
    check_block,
    data_blocks,
    first_block,
    is_manufacturer_block,
    is_trailer,
    sector_blocks,
    sector_count,
    sector_of_block,
    size_for_image_length,
    trailer_block,
)

_NOT_AN_INT: Any = True
_A_STRING: Any = "1"


@pytest.mark.parametrize(
    ("size", "sectors", "blocks", "image"),
    [
        (CardSize.MINI, 5, 20, 320),
        (CardSize.CLASSIC_1K, 16, 64, 1024),
        (CardSize.CLASSIC_4K, 40, 256, 4096),
    ],
)
def test_card_sizes(size: CardSize, sectors: int, blocks: int, image: int) -> None:
    assert sector_count(size) == sectors
    assert block_count(size) == blocks
    assert size_for_image_length(image) is size


def test_1k_layout_is_four_blocks_per_sector() -> None:
    assert first_block(5) == 20
    assert trailer_block(5) == 23
    assert sector_of_block(23) == 5
    assert is_trailer(3)
    assert is_trailer(63)
    assert not is_trailer(62)
    assert data_blocks(0) == (1, 2)
    assert data_blocks(1) == (4, 5, 6)
    assert list(sector_blocks(15)) == [60, 61, 62, 63]


def test_4k_upper_sectors_have_sixteen_blocks() -> None:
    k4 = CardSize.CLASSIC_4K
    assert blocks_in_sector(31, k4) == 4
    assert blocks_in_sector(32, k4) == 16
    assert first_block(32, k4) == 128
    assert trailer_block(31, k4) == 127
    assert trailer_block(32, k4) == 143
    assert first_block(39, k4) == 240
    assert trailer_block(39, k4) == 255
    assert sector_of_block(128, k4) == 32
    assert sector_of_block(143, k4) == 32
    assert sector_of_block(144, k4) == 33
    assert is_trailer(143, k4)
    assert not is_trailer(131, k4)
    assert len(data_blocks(32, k4)) == 15


def test_4k_access_groups_are_blocks_of_five() -> None:
    k4 = CardSize.CLASSIC_4K
    groups = [access_group(b, k4) for b in range(128, 144)]
    assert groups == [0] * 5 + [1] * 5 + [2] * 5 + [3]
    assert [access_group(b) for b in range(8, 12)] == [0, 1, 2, 3]


def test_manufacturer_block() -> None:
    assert is_manufacturer_block(0)
    assert not is_manufacturer_block(1)
    assert 0 not in data_blocks(0)


@settings(max_examples=60)
@given(st.sampled_from(list(CardSize)), st.data())
def test_every_block_belongs_to_exactly_one_sector(size: CardSize, data: st.DataObject) -> None:
    block = data.draw(st.integers(0, block_count(size) - 1))
    sector = sector_of_block(block, size)
    assert block in sector_blocks(sector, size)
    assert first_block(sector, size) <= block <= trailer_block(sector, size)
    assert is_trailer(block, size) == (access_group(block, size) == 3)


def test_sectors_tile_the_card() -> None:
    for size in CardSize:
        blocks = [b for s in range(sector_count(size)) for b in sector_blocks(s, size)]
        assert blocks == list(range(block_count(size)))


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: check_block(64), "block 64"),
        (lambda: check_block(-1), "block -1"),
        (lambda: check_block(20, CardSize.MINI), "block 20"),
        (lambda: sector_of_block(256, CardSize.CLASSIC_4K), "block 256"),
        (lambda: first_block(16), "sector 16"),
        (lambda: trailer_block(5, CardSize.MINI), "sector 5"),
        (lambda: check_block(_NOT_AN_INT), "block True"),
        (lambda: first_block(_A_STRING), "sector '1'"),
        (lambda: size_for_image_length(1000), "1000 bytes"),
    ],
)
def test_out_of_range_names_the_block(call: Callable[[], object], needle: str) -> None:
    with pytest.raises(BlockNotFound, match=needle):
        call()
