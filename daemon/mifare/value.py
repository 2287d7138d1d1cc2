"""MIFARE Classic value blocks: ``V ~V V adr ~adr adr ~adr`` (datasheet §8.6.2.1).

The value is a signed 32-bit little-endian integer stored three times (once inverted), the
address byte four times (twice inverted). The redundancy is what lets us tell a torn write
from a balance, so decoding checks every copy and names the first field that disagrees.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare._bytes import hexs, require_bytes
from daemon.mifare.geometry import BLOCK_SIZE

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "ValueBlock",
    "decode_value_block",
    "encode_value_block",
    "is_value_block",
    "value_block_problems",
]

logger = logging.getLogger(__name__)

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")


@dataclass(frozen=True)
class ValueBlock:
    """A decoded value block: the signed value and the address (backup pointer) byte."""

    value: int
    address: int

    def __post_init__(self) -> None:
        _check_value(self.value)
        _check_address(self.address)

    def to_bytes(self) -> bytes:
        return encode_value_block(self.value, self.address)


def _check_value(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument("value", f"must be an int, got {type(value).__name__}")
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidArgument("value", f"{value} is outside the int32 range of a value block")
    return value


def _check_address(address: object) -> int:
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 0xFF:
        raise InvalidArgument("address", f"value block address must be 0..255, got {address!r}")
    return address


def encode_value_block(value: int, address: int) -> bytes:
    """The 16 bytes a WRITE must store to make a block a value block."""
    v = _INT32.pack(_check_value(value))
    inv = _UINT32.pack(~_UINT32.unpack(v)[0] & 0xFFFFFFFF)
    adr = _check_address(address)
    return v + inv + v + bytes((adr, adr ^ 0xFF, adr, adr ^ 0xFF))


def value_block_problems(data: bytes) -> list[tuple[str, str]]:
    """Every inconsistency of a 16-byte block as (field, explanation); empty if valid."""
    problems: list[tuple[str, str]] = []
    v, inv, v2 = data[0:4], data[4:8], data[8:12]
    if bytes(b ^ 0xFF for b in inv) != v:
        problems.append(("inverted value", f"bytes 4-7 {hexs(inv)} are not ~{hexs(v)}"))
    if v2 != v:
        problems.append(("value copy", f"bytes 8-11 {hexs(v2)} differ from bytes 0-3 {hexs(v)}"))
    a0, a1, a2, a3 = data[12:16]
    if a0 ^ a1 != 0xFF:
        problems.append(("address", f"byte 13 {a1:02X} is not ~byte 12 {a0:02X}"))
    if a2 != a0 or a3 != a1:
        problems.append(("address copy", f"bytes 14-15 {a2:02X} {a3:02X} differ from 12-13"))
    return problems


def is_value_block(data: object) -> bool:
    """True if ``data`` is 16 bytes in valid value-block format."""
    if not isinstance(data, bytes | bytearray) or len(data) != BLOCK_SIZE:
        return False
    return not value_block_problems(bytes(data))


def decode_value_block(data: object, *, block: int | None = None) -> ValueBlock:
    """Decode and validate; :class:`MalformedBlock` names the block and the first bad field."""
    raw = require_bytes(data, "value block", BLOCK_SIZE, block)
    problems = value_block_problems(raw)
    if problems:
        field, _ = problems[0]
        detail = "; ".join(f"{f}: {why}" for f, why in problems)
        raise MalformedBlock(field, f"not a valid value block ({detail})", block)
    return ValueBlock(_INT32.unpack(raw[0:4])[0], raw[12])
