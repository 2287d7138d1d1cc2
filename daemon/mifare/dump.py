"""Decode a whole card image (Mini/1K/4K, as read) into a description a technician can read.

Input is the raw image in block order (the ``.mfd`` layout). Nothing here raises on odd
*content*: a dead sector, a torn value block or a bad block 0 is exactly what a technician
wants to see, so problems become text in the description. Only an image of the wrong size or
type is rejected.

Key bytes are never printed: trailers show a key field only when it reads back as zeros (what
a chip returns); anything else, including a readable key B, is shown as ``******``. A dump
*file* (``key_file``) holds the keys its tool used, so its trailers are not flagged for them;
instead each key is named when it is a public one (transport, MAD ...) and marked private or
unknown otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from daemon.errors import BlockNotFound, MalformedBlock
from daemon.mifare._bytes import hexs
from daemon.mifare.access import (
    DATA_OPERATIONS,
    TRAILER_GROUP,
    AccessConditions,
    BlockKind,
    Operation,
    effective_keys,
    format_keys,
    sector_warnings,
)
from daemon.mifare.block0 import Block0, Finding, check_block0, parse_block0
from daemon.mifare.dictionary import label_for
from daemon.mifare.geometry import (
    BLOCK_SIZE,
    KEY_SIZE,
    CardSize,
    access_group,
    block_count,
    is_trailer,
    sector_blocks,
    sector_count,
    size_for_image_length,
)
from daemon.mifare.mad import Mad1, decode_gpb, describe_aid
from daemon.mifare.trailer import parse_trailer_read
from daemon.mifare.value import decode_value_block, is_value_block, value_block_problems

__all__ = ["BlockView", "CardDump", "GroupRule", "SectorView", "TrailerView", "decode_dump"]

logger = logging.getLogger(__name__)

KEY_MASK = "******"
KEY_UNKNOWN = "------"  # a dump file without this key (MCT writes "--" per byte)
_ZERO_KEY = bytes(KEY_SIZE)


@dataclass(frozen=True)
class BlockView:
    """One block: safe-to-print hex and what it means."""

    block: int
    hex: str
    kind: str  # manufacturer, data, value, mad, trailer, unread
    meaning: str


@dataclass(frozen=True)
class GroupRule:
    """One row of a sector's access table: who may do what (key B rule applied)."""

    label: str
    bits: str
    permissions: tuple[tuple[str, str], ...]
    meaning: str


@dataclass(frozen=True)
class TrailerView:
    """Decoded trailer; ``problem`` is set (and ``rules`` empty) when access bits are bad."""

    block: int
    access_hex: str
    gpb: int
    key_b_readable: bool = False
    rules: tuple[GroupRule, ...] = ()
    problem: str | None = None
    anomalies: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: a dump file's key A and key B in words ("factory default (transport)", "private key",
    #: "not in the file"); empty for bytes read from a card
    key_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectorView:
    sector: int
    trailer: TrailerView | None  # None when the trailer was not read
    blocks: tuple[BlockView, ...]


@dataclass(frozen=True)
class CardDump:
    """A decoded card image; ``format_text()`` is what ``make run`` and technicians print."""

    size: CardSize
    uid: bytes
    block0: Block0 | None
    block0_findings: tuple[Finding, ...]
    mad: Mad1 | None
    mad_problem: str | None
    sectors: tuple[SectorView, ...] = field(default=())

    def format_text(self) -> str:
        return "\n".join(_format(self))


def _trailer_hex(raw: bytes, known: tuple[bool, bool] = (True, True)) -> str:
    def key(k: bytes, is_known: bool) -> str:
        if not is_known:
            return KEY_UNKNOWN
        return hexs(k) if k == _ZERO_KEY else KEY_MASK

    a, b = key(raw[0:6], known[0]), key(raw[10:16], known[1])
    return f"{a} | {hexs(raw[6:9])} | {raw[9]:02X} | {b}"


_TRAILER_COLUMNS = (
    ("key A", Operation.READ_KEY_A, Operation.WRITE_KEY_A),
    ("access", Operation.READ_ACCESS_BITS, Operation.WRITE_ACCESS_BITS),
    ("key B", Operation.READ_KEY_B, Operation.WRITE_KEY_B),
)
_DATA_COLUMNS = ("read", "write", "incr", "decr/transfer/restore")


def _rules(access: AccessConditions, blocks: range, size: CardSize) -> tuple[GroupRule, ...]:
    rules: list[GroupRule] = []
    first_of_run = 0
    for group in range(4):
        cond = access.group(group)
        if group == TRAILER_GROUP:
            perms = tuple(
                (
                    name,
                    f"r:{format_keys(effective_keys(access, group, r))} "
                    f"w:{format_keys(effective_keys(access, group, w))}",
                )
                for name, r, w in _TRAILER_COLUMNS
            )
            rules.append(GroupRule("trailer", cond.bits, perms, cond.describe(BlockKind.TRAILER)))
            continue
        # Consecutive data groups with the same bits share one row.
        if group > 0 and access.group(group - 1) == cond:
            rules.pop()
        else:
            first_of_run = group
        members = [
            b for b in blocks if first_of_run <= access_group(b, size) <= group and b != blocks[-1]
        ]
        label = f"block {members[0]}" if len(members) == 1 else f"blocks {members[0]}-{members[-1]}"
        perms = tuple(
            (name, format_keys(effective_keys(access, group, op)))
            for name, op in zip(_DATA_COLUMNS, DATA_OPERATIONS, strict=True)
        )
        rules.append(GroupRule(label, cond.bits, perms, cond.describe(BlockKind.DATA)))
    return tuple(rules)


def _key_word(key: bytes, known: bool) -> str:
    if not known:
        return "not in the file"
    label = label_for(key)
    return "private key (not shown)" if label is None else f"public: {label}"


def _decode_trailer(
    block: int, raw: bytes, blocks: range, size: CardSize, known: tuple[bool, bool] | None
) -> TrailerView:
    words = (
        () if known is None else (_key_word(raw[0:6], known[0]), _key_word(raw[10:16], known[1]))
    )
    try:
        back = parse_trailer_read(raw, block=block)
    except MalformedBlock as exc:
        return TrailerView(
            block,
            hexs(raw[6:9]),
            raw[9],
            problem=f"{exc.message}: dead sector",
            key_words=words,
        )
    return TrailerView(
        block,
        hexs(raw[6:9]),
        back.gpb,
        key_b_readable=back.key_b_readable,
        rules=_rules(back.access, blocks, size),
        anomalies=back.anomalies if known is None else (),  # a file's keys are keys
        warnings=sector_warnings(back.access),
        key_words=words,
    )


def _access_or_none(trailer: bytes) -> AccessConditions | None:
    try:
        return AccessConditions.from_bytes(trailer[6:9])
    except MalformedBlock:
        return None


def _printable(raw: bytes) -> str | None:
    text = raw.rstrip(b"\x00")
    if len(text) >= 3 and all(0x20 <= b < 0x7F for b in text):
        return text.decode("ascii")
    return None


def _data_meaning(raw: bytes, value_config: bool) -> tuple[str, str]:
    if is_value_block(raw):
        vb = decode_value_block(raw)
        return "value", f"value block: {vb.value} (adr {vb.address})"
    if raw == bytes(BLOCK_SIZE):
        return "data", "empty (zeros)"
    if value_config:
        # Access bits say "value block" but the copies disagree: torn write or tampering.
        field_name, why = value_block_problems(raw)[0]
        return "data", f"NOT a valid value block ({field_name}: {why})"
    text = _printable(raw)
    if text is not None:
        return "data", f"text {text!r}"
    return "data", "data"


def _block0_meaning(b0: Block0) -> str:
    return (
        f"manufacturer block: UID {hexs(b0.uid)}, SAK {b0.sak:02X}, "
        f"ATQA 0x{b0.atqa_value:04X}, data {hexs(b0.manufacturer_data)}"
    )


def decode_dump(
    image: object,
    *,
    uid_length: int = 4,
    unread: Collection[int] = (),
    key_file: Mapping[int, tuple[bool, bool]] | None = None,
) -> CardDump:
    """Decode ``image`` (320, 1024 or 4096 bytes). Blocks in ``unread`` were not readable.

    ``key_file``: the image comes from a dump file whose trailers hold keys, per sector
    (key A known, key B known); ``None``: bytes read back from a card."""
    if not isinstance(image, bytes | bytearray):
        raise MalformedBlock("card image", f"expected bytes, got {type(image).__name__}")
    image = bytes(image)
    try:
        size = size_for_image_length(len(image))
    except BlockNotFound as exc:
        raise MalformedBlock("card image", exc.message) from exc
    skipped = frozenset(unread)

    def raw_block(n: int) -> bytes:
        return image[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]

    b0: Block0 | None = None
    findings: tuple[Finding, ...] = ()
    if 0 not in skipped:
        b0 = parse_block0(raw_block(0), uid_length=uid_length)
        findings = tuple(check_block0(b0, size))

    mad: Mad1 | None = None
    mad_problem: str | None = None
    mad_blocks = {1, 2, 3}
    if not mad_blocks & skipped and decode_gpb(raw_block(3)[9]).present:
        try:
            mad = Mad1.from_bytes(raw_block(1) + raw_block(2))
        except MalformedBlock as exc:
            mad_problem = exc.message

    sectors = []
    for sector in range(sector_count(size)):
        blocks = sector_blocks(sector, size)
        views = []
        trailer: TrailerView | None = None
        access = _access_or_none(raw_block(blocks[-1])) if blocks[-1] not in skipped else None
        for n in blocks:
            raw = raw_block(n)
            if n in skipped:
                views.append(
                    BlockView(n, "-- not read --", "unread", "not readable with known keys")
                )
                continue
            if is_trailer(n, size):
                known = None if key_file is None else key_file.get(sector, (False, False))
                trailer = _decode_trailer(n, raw, blocks, size, known)
                shown = _trailer_hex(raw) if known is None else _trailer_hex(raw, known)
                views.append(BlockView(n, shown, "trailer", "sector trailer"))
            elif n == 0 and b0 is not None:
                views.append(BlockView(n, hexs(raw), "manufacturer", _block0_meaning(b0)))
            elif mad is not None and n in (1, 2):
                first = 1 if n == 1 else 8
                listed = ", ".join(
                    f"{s}:{describe_aid(mad.aid_for_sector(s))}"
                    for s in range(first, first + 7 + (n == 2))
                )
                views.append(BlockView(n, hexs(raw), "mad", f"MAD v1: {listed}"))
            else:
                cond = access.group(access_group(n, size)) if access is not None else None
                value_config = cond is not None and cond.is_value_config
                kind, meaning = _data_meaning(raw, value_config)
                views.append(BlockView(n, hexs(raw), kind, meaning))
        sectors.append(SectorView(sector, trailer, tuple(views)))

    uid = b0.uid if b0 is not None else b""
    logger.debug("decoded %s image, %d blocks", size.label, block_count(size))
    return CardDump(size, uid, b0, findings, mad, mad_problem, tuple(sectors))


def _format(dump: CardDump) -> list[str]:
    uid = hexs(dump.uid) if dump.uid else "unknown"
    lines = [
        f"{dump.size.label}: UID {uid}, {sector_count(dump.size)} sectors, "
        f"{block_count(dump.size)} blocks"
    ]
    for f in dump.block0_findings:
        lines.append(f"  block 0 {f.severity.value}: {f.code} - {f.message}")
    if dump.mad is not None:
        lines.append(f"  MAD v1 present, card publisher sector {dump.mad.publisher_sector}")
    if dump.mad_problem is not None:
        lines.append(f"  MAD announced by GPB but invalid: {dump.mad_problem}")
    for sv in dump.sectors:
        blocks = [b.block for b in sv.blocks]
        lines.append("")
        lines.append(f"Sector {sv.sector} (blocks {blocks[0]}-{blocks[-1]})")
        lines.extend(_format_trailer(sv.trailer))
        for bv in sv.blocks:
            lines.append(f"  {bv.block:3d}  {bv.hex:<47}  {bv.meaning}")
    return lines


def _format_trailer(tv: TrailerView | None) -> list[str]:
    if tv is None:
        return ["  access: trailer not read"]
    head = f"  access bits {tv.access_hex}, GPB {tv.gpb:02X}"
    if tv.problem is not None:
        return [head, f"  !! {tv.problem}"]
    lines = [head]
    if tv.key_b_readable:
        lines.append("  key B is readable: it cannot authenticate any access in this sector")
    for rule in tv.rules:
        perms = "  ".join(f"{name} {who}" for name, who in rule.permissions)
        lines.append(f"    {rule.label:<14} {rule.bits}  {perms}  ({rule.meaning})")
    if tv.key_words:
        lines.append(f"  keys in the file: key A {tv.key_words[0]}, key B {tv.key_words[1]}")
    lines.extend(f"  !! {a}" for a in tv.anomalies)
    lines.extend(f"  warning: {w}" for w in tv.warnings)
    return lines
