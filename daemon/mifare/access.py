"""MIFARE Classic access conditions: bytes 6-8 of a sector trailer, and what they permit.

The permission tables are the NXP datasheet's (MF1S50yyX §8.7), transcribed once. ``allows``
also applies the datasheet rule that a key B which is readable cannot serve as a key: the chip
accepts the authentication but refuses every following memory access.

Encoding never yields malformed bits (they are built from 0/1 triples), and refuses a
configuration that freezes the trailer forever unless a technician explicitly asks for it,
because a wrong trailer costs a card.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from daemon.errors import InvalidArgument, MalformedBlock, UnsafeAccessBits
from daemon.mifare._bytes import hexs, require_bytes
from daemon.mifare.geometry import MANUFACTURER_BLOCK, CardSize, access_group

__all__ = [
    "DATA_OPERATIONS",
    "TRAILER_GROUP",
    "TRAILER_OPERATIONS",
    "TRANSPORT",
    "AccessCondition",
    "AccessConditions",
    "BlockKind",
    "Key",
    "Operation",
    "allows",
    "allows_block",
    "effective_keys",
    "format_keys",
    "permitted_keys",
    "sector_warnings",
]

logger = logging.getLogger(__name__)

TRAILER_GROUP = 3


class Key(enum.Enum):
    A = "A"
    B = "B"


class BlockKind(enum.Enum):
    DATA = "data"
    TRAILER = "trailer"


class Operation(enum.Enum):
    """What a reader may try on a block after authenticating."""

    READ = "read"
    WRITE = "write"
    INCREMENT = "increment"
    DECREMENT = "decrement/transfer/restore"
    READ_KEY_A = "read key A"
    WRITE_KEY_A = "write key A"
    READ_ACCESS_BITS = "read access bits"
    WRITE_ACCESS_BITS = "write access bits"
    READ_KEY_B = "read key B"
    WRITE_KEY_B = "write key B"


DATA_OPERATIONS = (Operation.READ, Operation.WRITE, Operation.INCREMENT, Operation.DECREMENT)
TRAILER_OPERATIONS = (
    Operation.READ_KEY_A,
    Operation.WRITE_KEY_A,
    Operation.READ_ACCESS_BITS,
    Operation.WRITE_ACCESS_BITS,
    Operation.READ_KEY_B,
    Operation.WRITE_KEY_B,
)

_VALUE_CONFIGS = frozenset({"110", "001"})

_N: frozenset[Key] = frozenset()
_A = frozenset({Key.A})
_B = frozenset({Key.B})
_AB = frozenset({Key.A, Key.B})

# Datasheet table "access conditions for data blocks": C1C2C3 -> read, write, inc, dec/tr/rest.
_DATA_TABLE: dict[str, tuple[frozenset[Key], ...]] = {
    "000": (_AB, _AB, _AB, _AB),
    "010": (_AB, _N, _N, _N),
    "100": (_AB, _B, _N, _N),
    "110": (_AB, _B, _B, _AB),
    "001": (_AB, _N, _N, _AB),
    "011": (_B, _B, _N, _N),
    "101": (_B, _N, _N, _N),
    "111": (_N, _N, _N, _N),
}

# Datasheet table "access conditions for the sector trailer": C1C2C3 ->
# key A read/write, access bits read/write, key B read/write.
_TRAILER_TABLE: dict[str, tuple[frozenset[Key], ...]] = {
    "000": (_N, _A, _A, _N, _A, _A),
    "010": (_N, _N, _A, _N, _A, _N),
    "100": (_N, _B, _AB, _N, _N, _B),
    "110": (_N, _N, _AB, _N, _N, _N),
    "001": (_N, _A, _A, _A, _A, _A),
    "011": (_N, _B, _AB, _B, _N, _B),
    "101": (_N, _N, _AB, _B, _N, _N),
    "111": (_N, _N, _AB, _N, _N, _N),
}

_DATA_USE = {
    "000": "transport: read/write/value with A|B",
    "010": "read-only (A|B)",
    "100": "read A|B, write B",
    "110": "value block, recharge with B, debit with A|B",
    "001": "value block, debit only (no recharge)",
    "011": "read/write with B only",
    "101": "read with B only",
    "111": "no access",
}
_TRAILER_USE = {
    "000": "key B readable; access bits frozen",
    "010": "key B readable; trailer frozen",
    "100": "keys managed by B; access bits frozen",
    "110": "trailer frozen",
    "001": "transport: all managed by A, key B readable",
    "011": "all managed by B",
    "101": "access bits managed by B; keys frozen",
    "111": "trailer frozen",
}


@dataclass(frozen=True)
class AccessCondition:
    """One C1 C2 C3 triple (each 0 or 1), written like the datasheet: ``"110"``."""

    c1: int
    c2: int
    c3: int

    def __post_init__(self) -> None:
        for name in ("c1", "c2", "c3"):
            value = getattr(self, name)
            if value not in (0, 1) or isinstance(value, bool):
                raise InvalidArgument(name, f"access bit must be 0 or 1, got {value!r}")

    @classmethod
    def parse(cls, bits: object) -> AccessCondition:
        """``"110"`` -> AccessCondition(1, 1, 0); an AccessCondition passes through."""
        if isinstance(bits, AccessCondition):
            return bits
        if not isinstance(bits, str) or len(bits) != 3 or set(bits) - {"0", "1"}:
            raise InvalidArgument("access condition", f"expected three of 0/1, got {bits!r}")
        return cls(int(bits[0]), int(bits[1]), int(bits[2]))

    @property
    def bits(self) -> str:
        return f"{self.c1}{self.c2}{self.c3}"

    def __str__(self) -> str:
        return self.bits

    @property
    def is_value_config(self) -> bool:
        """110 or 001: the datasheet's value-block configurations (decrement allowed)."""
        return self.bits in _VALUE_CONFIGS

    def describe(self, kind: BlockKind) -> str:
        """Short human description of what the triple means for this kind of block."""
        table = _DATA_USE if kind is BlockKind.DATA else _TRAILER_USE
        return table[self.bits]


def permitted_keys(cond: AccessCondition, kind: BlockKind, operation: Operation) -> frozenset[Key]:
    """The datasheet table entry: which keys the row lists for this operation.

    This is the table as printed; it does not yet apply the readable-key-B rule (see
    :func:`effective_keys`).
    """
    if kind is BlockKind.DATA:
        if operation not in DATA_OPERATIONS:
            raise InvalidArgument("operation", f"{operation.value!r} is not a data-block operation")
        return _DATA_TABLE[cond.bits][DATA_OPERATIONS.index(operation)]
    if operation not in TRAILER_OPERATIONS:
        raise InvalidArgument("operation", f"{operation.value!r} is not a trailer operation")
    return _TRAILER_TABLE[cond.bits][TRAILER_OPERATIONS.index(operation)]


def format_keys(keys: frozenset[Key]) -> str:
    """``A|B``, ``A``, ``B`` or ``never``: the datasheet's notation."""
    if not keys:
        return "never"
    return "|".join(k.value for k in sorted(keys, key=lambda k: k.value))


def _nibble(conds: tuple[AccessCondition, ...], attr: str) -> int:
    return sum(getattr(c, attr) << i for i, c in enumerate(conds))


@dataclass(frozen=True)
class AccessConditions:
    """The four triples of one sector: data groups 0, 1, 2 and the trailer.

    On 4-block sectors group *i* is block *i*; on the 4K's 16-block sectors group 0 covers
    blocks 0-4, group 1 blocks 5-9 and group 2 blocks 10-14 (see ``geometry.access_group``).
    """

    data: tuple[AccessCondition, AccessCondition, AccessCondition]
    trailer: AccessCondition

    @classmethod
    def of(
        cls,
        block0: str | AccessCondition,
        block1: str | AccessCondition,
        block2: str | AccessCondition,
        trailer: str | AccessCondition,
    ) -> AccessConditions:
        """Build from datasheet notation, e.g. ``AccessConditions.of("110","110","110","011")``."""
        p = AccessCondition.parse
        return cls((p(block0), p(block1), p(block2)), p(trailer))

    def group(self, group: int) -> AccessCondition:
        """Triple for group 0, 1, 2 or 3 (trailer)."""
        if group == TRAILER_GROUP:
            return self.trailer
        if group in (0, 1, 2):
            return self.data[group]
        raise InvalidArgument("group", f"access group must be 0..3, got {group!r}")

    @property
    def _all(self) -> tuple[AccessCondition, ...]:
        return (*self.data, self.trailer)

    @property
    def key_b_readable(self) -> bool:
        """Key B can be read back: then it cannot authenticate any access (datasheet)."""
        return bool(permitted_keys(self.trailer, BlockKind.TRAILER, Operation.READ_KEY_B))

    @property
    def is_permanent(self) -> bool:
        """No usable key can ever rewrite the access bits: the sector's rules are final."""
        return not effective_keys(self, TRAILER_GROUP, Operation.WRITE_ACCESS_BITS)

    def to_bytes(self, *, allow_permanent_lock: bool = False) -> bytes:
        """Trailer bytes 6, 7, 8 (with the inverted copies).

        Raises :class:`UnsafeAccessBits` if the result would freeze the access bits forever,
        unless the technician flag ``allow_permanent_lock`` is set.
        """
        if self.is_permanent and not allow_permanent_lock:
            raise UnsafeAccessBits(
                f"trailer condition {self.trailer} leaves no key able to rewrite the access "
                f"bits ({self.trailer.describe(BlockKind.TRAILER)}); this is permanent. "
                "Pass allow_permanent_lock=True only on a technician path."
            )
        conds = self._all
        c1, c2, c3 = (_nibble(conds, a) for a in ("c1", "c2", "c3"))
        byte6 = ((~c2 & 0xF) << 4) | (~c1 & 0xF)
        byte7 = (c1 << 4) | (~c3 & 0xF)
        byte8 = (c3 << 4) | c2
        return bytes((byte6, byte7, byte8))

    @classmethod
    def from_bytes(cls, data: object, *, block: int | None = None) -> AccessConditions:
        """Decode trailer bytes 6-8, checking every inverted copy.

        A mismatch is what the chip treats as a format violation (sector blocked forever), so
        it is reported as :class:`MalformedBlock` naming the block and the bit group.
        """
        raw = require_bytes(data, "access bits", 3, block)
        b6, b7, b8 = raw
        c1, c2, c3 = b7 >> 4, b8 & 0xF, b8 >> 4
        problems = []
        if b6 & 0xF != ~c1 & 0xF:
            problems.append("C1 (byte 6 low nibble vs byte 7 high nibble)")
        if b6 >> 4 != ~c2 & 0xF:
            problems.append("C2 (byte 6 high nibble vs byte 8 low nibble)")
        if b7 & 0xF != ~c3 & 0xF:
            problems.append("C3 (byte 7 low nibble vs byte 8 high nibble)")
        if problems:
            raise MalformedBlock(
                "access bits",
                f"{hexs(raw)}: inverted copy mismatch in {', '.join(problems)}; "
                "a chip blocks such a sector irreversibly",
                block,
            )
        triples = tuple(
            AccessCondition((c1 >> i) & 1, (c2 >> i) & 1, (c3 >> i) & 1) for i in range(4)
        )
        return cls((triples[0], triples[1], triples[2]), triples[3])

    def allows(self, group: int, operation: Operation, key: Key) -> bool:
        """May ``key`` perform ``operation`` on a block of ``group`` (3 = trailer)?"""
        return allows(self, group, operation, key)


def effective_keys(
    conditions: AccessConditions, group: int, operation: Operation
) -> frozenset[Key]:
    """Keys with which the operation really succeeds: the table minus an unusable key B."""
    kind = BlockKind.TRAILER if group == TRAILER_GROUP else BlockKind.DATA
    keys = permitted_keys(conditions.group(group), kind, operation)
    if conditions.key_b_readable:
        keys = keys - _B
    return keys


def allows(conditions: AccessConditions, group: int, operation: Operation, key: Key) -> bool:
    """May ``key`` perform ``operation`` on a block of access ``group`` (0-2 data, 3 trailer)?

    Answers ``False`` for key B whenever key B is readable in this sector's trailer: the chip
    accepts that authentication but refuses every following access.
    """
    if not isinstance(key, Key):
        raise InvalidArgument("key", f"expected Key.A or Key.B, got {key!r}")
    return key in effective_keys(conditions, group, operation)


_BLOCK0_FROZEN = frozenset({Operation.WRITE, Operation.INCREMENT, Operation.DECREMENT})


def allows_block(
    conditions: AccessConditions,
    block: int,
    operation: Operation,
    key: Key,
    size: CardSize = CardSize.CLASSIC_1K,
) -> bool:
    """:func:`allows` for an absolute block number (4K 16-block sectors included).

    Block 0 is write-protected at the factory on a genuine chip whatever its access bits say
    (only magic clones differ), so anything that would change it is refused here.
    """
    if block == MANUFACTURER_BLOCK and operation in _BLOCK0_FROZEN:
        return False
    return allows(conditions, access_group(block, size), operation, key)


def sector_warnings(conditions: AccessConditions) -> tuple[str, ...]:
    """Legal but risky configurations a technician or issuing station should hear about."""
    found: list[str] = []
    for group in (0, 1, 2):
        cond = conditions.data[group]
        listed = any(permitted_keys(cond, BlockKind.DATA, op) for op in DATA_OPERATIONS)
        usable = any(effective_keys(conditions, group, op) for op in DATA_OPERATIONS)
        if listed and not usable:
            found.append(
                f"group {group} ({cond}) is only open to key B, and key B is readable: unusable"
            )
    values = [g for g in (0, 1, 2) if conditions.data[g].is_value_config]
    a_writable = [g for g in (0, 1, 2) if Key.A in effective_keys(conditions, g, Operation.WRITE)]
    if values and a_writable:
        found.append(
            f"value block(s) in group {values} share the sector with key-A-writable group "
            f"{a_writable}: a key A holder can stage any value and TRANSFER it"
        )
    return tuple(found)


TRANSPORT = AccessConditions.of("000", "000", "000", "001")
"""Factory state ``FF 07 80``: everything with key A, key B readable."""
