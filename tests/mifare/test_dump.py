"""Whole-card decoding and its printable text: what a technician sees, and what is never shown."""

from __future__ import annotations

import pytest

from daemon.errors import MalformedBlock
from daemon.mifare.access import AccessConditions
from daemon.mifare.dump import decode_dump
from daemon.mifare.geometry import CardSize, block_count
from daemon.mifare.mad import Mad1
from daemon.mifare.trailer import build_trailer, transport_trailer
from daemon.mifare.value import encode_value_block

KEY_A = bytes.fromhex("A1A2A3A4A5A6")
KEY_B = bytes.fromhex("B1B2B3B4B5B6")
VALUE_SECTOR = AccessConditions.of("110", "110", "110", "011")


def _image(size: CardSize = CardSize.CLASSIC_1K) -> bytearray:
    """A factory-fresh card as a reader sees it: key A reads as zeros, key B readable."""
    img = bytearray(block_count(size) * 16)
    read_back_transport = bytes(6) + transport_trailer()[6:]
    for sector_trailer in range(3, 128, 4):
        if sector_trailer < len(img) // 16:
            img[sector_trailer * 16 : sector_trailer * 16 + 16] = read_back_transport
    if size is CardSize.CLASSIC_4K:
        for trailer in range(143, 256, 16):
            img[trailer * 16 : trailer * 16 + 16] = read_back_transport
    img[0:16] = bytes.fromhex("11223344440804006263646566676869")
    return img


def _put(img: bytearray, block: int, data: bytes) -> None:
    img[block * 16 : block * 16 + 16] = data


def test_member_card_layout_is_described() -> None:
    img = _image()
    _put(img, 4, encode_value_block(1234567, 4))
    _put(img, 5, encode_value_block(1234567, 4))
    _put(img, 7, bytes(6) + VALUE_SECTOR.to_bytes() + b"\x69" + bytes(6))
    _put(img, 8, b"Member 0001\x00\x00\x00\x00\x00")
    dump = decode_dump(bytes(img))
    assert dump.size is CardSize.CLASSIC_1K
    assert dump.uid == bytes.fromhex("11223344")
    sector1 = dump.sectors[1]
    assert [b.kind for b in sector1.blocks] == ["value", "value", "data", "trailer"]
    assert sector1.blocks[0].meaning == "value block: 1234567 (adr 4)"
    assert sector1.trailer is not None
    assert sector1.trailer.rules[0].label == "blocks 4-6"
    assert sector1.trailer.rules[0].bits == "110"
    text = dump.format_text()
    assert "MIFARE Classic 1K: UID 11 22 33 44" in text
    assert "MAGIC_DEFAULT_DATA" in text
    assert "access bits 08 77 8F, GPB 69" in text
    assert "read A|B  write B  incr B  decr/transfer/restore A|B" in text
    assert "key A r:never w:B  access r:A|B w:B  key B r:never w:B" in text
    assert "text 'Member 0001'" in text
    assert "warning:" not in text.split("Sector 1 ")[1].split("Sector 2 ")[0]


def test_risky_sector_gets_a_warning() -> None:
    img = _image()
    risky = AccessConditions.of("110", "110", "000", "011")
    _put(img, 7, bytes(6) + risky.to_bytes() + b"\x69" + bytes(6))
    dump = decode_dump(bytes(img))
    assert dump.sectors[1].trailer is not None
    assert dump.sectors[1].trailer.warnings
    assert "warning: value block(s) in group [0, 1]" in dump.format_text()


def test_readable_key_b_rule_is_visible() -> None:
    text = decode_dump(bytes(_image())).format_text()
    assert "key B is readable: it cannot authenticate any access in this sector" in text
    assert "read A  write A  incr A  decr/transfer/restore A" in text


def test_key_bytes_are_never_printed() -> None:
    img = _image()
    # A dump file that (unlike a chip) carries real keys in a trailer.
    _put(img, 7, build_trailer(KEY_A, VALUE_SECTOR, KEY_B))
    # A transport sector whose readable key B is a real key.
    _put(img, 11, bytes(6) + transport_trailer()[6:10] + KEY_B)
    dump = decode_dump(bytes(img))
    text = dump.format_text()
    for key in (KEY_A, KEY_B, b"\xff" * 6):
        assert key.hex(" ").upper() not in text
        assert key.hex().upper() not in text
        assert key.hex() not in text
    assert "****** | 08 77 8F | 69 | ******" in text
    assert "key A read back non-zero" in text
    assert "\\xa1" not in repr(dump)
    assert "\\xb1" not in repr(dump)


def test_dead_sector_is_reported_not_raised() -> None:
    img = _image()
    _put(img, 11, bytes(6) + bytes.fromhex("00000069") + bytes(6))
    dump = decode_dump(bytes(img))
    trailer = dump.sectors[2].trailer
    assert trailer is not None
    assert trailer.problem is not None
    assert "dead sector" in trailer.problem
    assert "block 11 access bits" in dump.format_text()


def test_torn_value_block_is_flagged_in_a_value_sector() -> None:
    img = _image()
    _put(img, 7, bytes(6) + VALUE_SECTOR.to_bytes() + b"\x69" + bytes(6))
    torn = bytearray(encode_value_block(500, 4))
    torn[4] ^= 0x01
    _put(img, 4, bytes(torn))
    block4 = decode_dump(bytes(img)).sectors[1].blocks[0]
    assert block4.meaning.startswith("NOT a valid value block (inverted value")
    # the same bytes in a plain data sector are just data
    _put(img, 8, bytes(torn))
    assert decode_dump(bytes(img)).sectors[2].blocks[0].meaning == "data"


def test_mad_is_decoded_when_gpb_says_so() -> None:
    img = _image()
    mad = Mad1.for_sectors({1: 0x0004, 2: 0x1234, 3: 0x1234}, publisher_sector=1)
    raw = mad.to_bytes()
    _put(img, 1, raw[:16])
    _put(img, 2, raw[16:])
    _put(img, 3, bytes(6) + bytes.fromhex("787788C1") + bytes(6))
    dump = decode_dump(bytes(img))
    assert dump.mad == mad
    assert dump.sectors[0].blocks[1].kind == "mad"
    assert "1:card holder info" in dump.sectors[0].blocks[1].meaning
    assert "MAD v1 present, card publisher sector 1" in dump.format_text()
    # same directory with a broken CRC
    _put(img, 1, bytes([raw[0] ^ 0xFF]) + raw[1:16])
    broken = decode_dump(bytes(img))
    assert broken.mad is None
    assert broken.mad_problem is not None
    assert "MAD CRC" in broken.mad_problem
    assert "MAD announced by GPB but invalid" in broken.format_text()


def test_unread_blocks_and_sectors() -> None:
    img = _image()
    dump = decode_dump(bytes(img), unread={0, 60, 61, 62, 63})
    assert dump.block0 is None
    assert dump.uid == b""
    assert dump.sectors[15].trailer is None
    assert all(b.kind == "unread" for b in dump.sectors[15].blocks)
    text = dump.format_text()
    assert "UID unknown" in text
    assert "trailer not read" in text
    assert dump.sectors[0].blocks[0].kind == "unread"


def test_4k_large_sector_rows() -> None:
    img = _image(CardSize.CLASSIC_4K)
    conds = AccessConditions.of("000", "110", "110", "011")
    _put(img, 159, bytes(6) + conds.to_bytes() + b"\x69" + bytes(6))
    dump = decode_dump(bytes(img))
    assert dump.size is CardSize.CLASSIC_4K
    assert len(dump.sectors) == 40
    rules = dump.sectors[33].trailer.rules  # type: ignore[union-attr]
    assert [r.label for r in rules] == ["blocks 144-148", "blocks 149-158", "trailer"]
    assert len(dump.sectors[39].blocks) == 16


def test_mini_image() -> None:
    dump = decode_dump(bytearray(_image(CardSize.MINI)))
    assert dump.size is CardSize.MINI
    assert len(dump.sectors) == 5
    assert "SAK_SIZE_MISMATCH" in dump.format_text()  # SAK 08 announces a 1K


@pytest.mark.parametrize("bad", [bytes(1000), b"", "00" * 1024, None])
def test_wrong_image_rejected(bad: object) -> None:
    with pytest.raises(MalformedBlock, match="card image"):
        decode_dump(bad)
