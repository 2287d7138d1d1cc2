"""Builders for the PC/SC Part 3 storage-card pseudo-APDUs (CLA ``FF``).

Each builder validates its arguments (typed :class:`~daemon.errors.InvalidArgument` naming the
field) and returns a :class:`Command`: the raw bytes plus what traces and error messages need -
a human name ("GENERAL AUTHENTICATE block 8 key A slot 0"), whether the command may change the
card (the caller must then treat a lost answer as outcome-unknown), and which byte ranges hold
key material. A ``Command``'s ``repr`` and every hex rendering mask those ranges, so key bytes
cannot leak into logs, traces or exception messages by accident.

Vendor commands (ACS ``FF D7``, OMNIKEY ``FF D4``/``FF D8`` ...) live in
:mod:`daemon.readers.dialects`; they are built with the same :class:`Command` type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from daemon.errors import InvalidArgument

__all__ = [
    "BLOCK_SIZE",
    "CLA",
    "KEY_SIZE",
    "Command",
    "CommandKind",
    "KeyType",
    "authenticate_obsolete",
    "check_block",
    "check_byte",
    "check_key_type",
    "general_authenticate",
    "get_uid",
    "is_trailer",
    "load_key",
    "mask_hex",
    "read_binary",
    "to_hex",
    "trailer_key_ranges",
    "update_binary",
]

CLA = 0xFF
BLOCK_SIZE = 16
KEY_SIZE = 6
MAX_BLOCK = 0xFF  # 4K has blocks 0..255; the block MSB of GENERAL AUTHENTICATE is always 00
MAX_MULTI_BYTES = 3 * 16  # ACS multiple-block mode: at most three blocks (Lc/Le 0x30)

INS_GET_DATA = 0xCA
INS_LOAD_KEY = 0x82
INS_GENERAL_AUTHENTICATE = 0x86
INS_AUTHENTICATE = 0x88
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6

_MASK = "**"


class KeyType(enum.IntEnum):
    """MIFARE key type as the PC/SC commands encode it (the native AUTH opcodes)."""

    A = 0x60
    B = 0x61


class CommandKind(enum.Enum):
    """What a command does; status-word mapping and transport-error mapping depend on it."""

    UID = "uid"
    LOAD_KEY = "load_key"
    AUTHENTICATE = "authenticate"
    READ = "read"
    WRITE = "write"
    VALUE_READ = "value_read"
    VALUE_WRITE = "value_write"
    CONTROL = "control"


_MUTATING = frozenset({CommandKind.WRITE, CommandKind.VALUE_WRITE})


def to_hex(data: bytes) -> str:
    """``b"\\xff\\x82"`` -> ``"FF 82"``: the notation of the reference and of our traces."""
    return data.hex(" ").upper()


def mask_hex(data: bytes, secret: tuple[tuple[int, int], ...]) -> str:
    """Hex of ``data`` with every byte inside a ``[start, end)`` range of ``secret`` as ``**``."""
    if not secret:
        return to_hex(data)
    parts = []
    for i, b in enumerate(data):
        hidden = any(start <= i < end for start, end in secret)
        parts.append(_MASK if hidden else f"{b:02X}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Command:
    """One command APDU with the metadata the layer above needs.

    ``secret`` holds byte ranges of ``apdu`` that are key material; ``response_secret`` those of
    the expected response data (a trailer read returns key bytes). ``block`` is the first
    block addressed, if any.
    """

    name: str
    apdu: bytes = field(repr=False)
    kind: CommandKind
    detail: str = ""
    block: int | None = None
    secret: tuple[tuple[int, int], ...] = ()
    response_secret: tuple[tuple[int, int], ...] = ()

    @property
    def mutating(self) -> bool:
        """True when the card may have changed even if no answer came back."""
        return self.kind in _MUTATING

    def describe(self) -> str:
        """Name and arguments, never key bytes: used in every error message."""
        return f"{self.name} {self.detail}" if self.detail else self.name

    def masked_hex(self) -> str:
        return mask_hex(self.apdu, self.secret)

    def __repr__(self) -> str:
        return f"Command({self.describe()!r}, {self.masked_hex()!r})"


def check_byte(field_name: str, value: int, low: int = 0, high: int = 0xFF) -> int:
    """Reject non-int and out-of-range values with an error naming the field (a byte unless
    ``low``/``high`` say otherwise: value operands use the int32 range)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field_name, f"must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidArgument(field_name, f"{value} is out of range {low}..{high}")
    return value


def check_block(block: int) -> int:
    return check_byte("block", block, 0, MAX_BLOCK)


def _byte_length(value: object) -> int | None:
    """Length of a bytes-like argument, None for anything else (callers may be untyped)."""
    return len(value) if isinstance(value, bytes | bytearray) else None


def _describe_size(value: object) -> str:
    size = _byte_length(value)
    return f"{size}" if size is not None else type(value).__name__


def _check_span(block: int, count: int) -> None:
    if block + count - 1 > MAX_BLOCK:
        raise InvalidArgument(
            "block", f"{count} blocks from block {block} run past block {MAX_BLOCK}"
        )


def check_key_type(key_type: int) -> KeyType:
    """Key A (0x60) or key B (0x61); anything else is an error naming ``key_type``."""
    try:
        return KeyType(key_type)
    except ValueError:
        raise InvalidArgument(
            "key_type", f"0x{key_type:02X} is not key A (0x60) or key B (0x61)"
        ) from None


def is_trailer(block: int) -> bool:
    """Sector trailer? Sectors 0-31 have 4 blocks, sectors 32-39 (4K only) 16 blocks."""
    if block < 128:
        return block % 4 == 3
    return block % 16 == 15


def trailer_key_ranges(offset: int = 0) -> tuple[tuple[int, int], ...]:
    """Byte ranges of key A (0-5) and key B (10-15) inside a 16-byte trailer at ``offset``."""
    return ((offset, offset + 6), (offset + 10, offset + 16))


def get_uid() -> Command:
    """GET DATA UID: ``FF CA 00 00 00`` (Le 00 = the whole UID, 4, 7 or 10 bytes)."""
    return Command("GET DATA UID", bytes((CLA, INS_GET_DATA, 0x00, 0x00, 0x00)), CommandKind.UID)


def load_key(key: bytes, slot: int, structure: int = 0x00) -> Command:
    """LOAD KEY: ``FF 82 <structure> <slot> 06 <key>``; the key bytes are masked everywhere."""
    if _byte_length(key) != KEY_SIZE:
        raise InvalidArgument("key", f"must be {KEY_SIZE} bytes, got {_describe_size(key)}")
    check_byte("key_structure", structure)
    check_byte("slot", slot)
    apdu = bytes((CLA, INS_LOAD_KEY, structure, slot, KEY_SIZE)) + bytes(key)
    return Command(
        "LOAD KEY",
        apdu,
        CommandKind.LOAD_KEY,
        detail=f"structure 0x{structure:02X} slot {slot}",
        secret=((5, 5 + KEY_SIZE),),
    )


def general_authenticate(block: int, key_type: int, slot: int) -> Command:
    """GENERAL AUTHENTICATE: ``FF 86 00 00 05 01 00 <blk> <60|61> <slot>``."""
    check_block(block)
    kt = check_key_type(key_type)
    check_byte("slot", slot)
    apdu = bytes((CLA, INS_GENERAL_AUTHENTICATE, 0x00, 0x00, 0x05, 0x01, 0x00, block, kt, slot))
    return Command(
        "GENERAL AUTHENTICATE",
        apdu,
        CommandKind.AUTHENTICATE,
        detail=f"block {block} key {kt.name} slot {slot}",
        block=block,
    )


def authenticate_obsolete(block: int, key_type: int, slot: int) -> Command:
    """AUTHENTICATE (PC/SC 2.01, obsolete): ``FF 88 00 <blk> <60|61> <slot>``."""
    check_block(block)
    kt = check_key_type(key_type)
    check_byte("slot", slot)
    apdu = bytes((CLA, INS_AUTHENTICATE, 0x00, block, kt, slot))
    return Command(
        "AUTHENTICATE",
        apdu,
        CommandKind.AUTHENTICATE,
        detail=f"block {block} key {kt.name} slot {slot}",
        block=block,
    )


def read_binary(block: int, length: int = BLOCK_SIZE) -> Command:
    """READ BINARY: ``FF B0 00 <blk> <Le>``; Le 0x10 per block (0x20/0x30 = ACS multi-block)."""
    check_block(block)
    check_byte("length", length, BLOCK_SIZE, MAX_MULTI_BYTES)
    if length % BLOCK_SIZE:
        raise InvalidArgument("length", f"{length} is not a multiple of {BLOCK_SIZE}")
    count = length // BLOCK_SIZE
    _check_span(block, count)
    detail = f"block {block}" if count == 1 else f"blocks {block}..{block + count - 1}"
    hidden = tuple(
        r for i in range(count) if is_trailer(block + i) for r in trailer_key_ranges(i * BLOCK_SIZE)
    )
    return Command(
        "READ BINARY",
        bytes((CLA, INS_READ_BINARY, 0x00, block, length)),
        CommandKind.READ,
        detail=detail,
        block=block,
        response_secret=hidden,
    )


def update_binary(block: int, data: bytes) -> Command:
    """UPDATE BINARY: ``FF D6 00 <blk> 10 <16 bytes>``; trailer key bytes masked in traces."""
    check_block(block)
    size = _byte_length(data)
    if size is None or size == 0 or size % BLOCK_SIZE or size > MAX_MULTI_BYTES:
        raise InvalidArgument("data", f"must be 16, 32 or 48 bytes, got {_describe_size(data)}")
    count = len(data) // BLOCK_SIZE
    _check_span(block, count)
    header = bytes((CLA, INS_UPDATE_BINARY, 0x00, block, len(data)))
    hidden = tuple(
        r
        for i in range(count)
        if is_trailer(block + i)
        for r in trailer_key_ranges(len(header) + i * BLOCK_SIZE)
    )
    detail = f"block {block}" if count == 1 else f"blocks {block}..{block + count - 1}"
    return Command(
        "UPDATE BINARY",
        header + bytes(data),
        CommandKind.WRITE,
        detail=detail,
        block=block,
        secret=hidden,
    )
