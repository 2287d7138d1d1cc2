"""The dump file formats technicians already have, read and written.

* ``mfd`` — the bare image in block order, 320/1024/4096 bytes (``.mfd``, ``.bin``, ``.dump``:
  nfc-mfclassic, Proxmark ``.bin``, MCT export). Cannot mark an unknown byte: written as 00.
* ``eml`` — Proxmark3 emulator memory: one block per line, 32 hex digits.
* ``proxmark-json`` — Proxmark3 ``.json``: ``Created``, ``FileType`` (``mfcard``, ``mfc v2``
  ...), ``Card`` (``UID``, ``ATQA``, ``SAK``), ``blocks`` (block number -> 32 hex digits, a
  missing number is a block not read) and ``SectorKeys`` (sector -> ``KeyA``, ``KeyB``,
  ``AccessConditions``, ``AccessConditionsText``).
* ``mct`` — MIFARE Classic Tool text: a ``+Sector: N`` line, then that sector's blocks as 32
  hex digits, ``--`` for each byte MCT could not read (a key it did not find, a block it could
  not read); a sector not read is left out.
* ``carddaemon-json`` — ours: ``{"format": "carddaemon-dump", "version": 1, "size", "uid",
  "blocks": [32 hex digits with "--" for unknown bytes, or null for a block not read]}``. The
  simulator's card files (``"format": "carddaemon-sim-card"``, :mod:`sim.dumps`) read too.

:func:`parse` takes the format from the file name when it fits the content, else from the
content; a file no format fits is refused saying what was expected. Errors are
:class:`~daemon.errors.InvalidArgument` naming the file and the line or item, never key bytes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Final

from daemon.errors import InvalidArgument
from daemon.mifare.dumpfile import CardImage, KeysKnown
from daemon.mifare.dumpwrite import FORMATS, OWN_FORMAT, SIZE_NAMES, write
from daemon.mifare.geometry import (
    BLOCK_SIZE,
    CardSize,
    block_count,
    is_trailer,
    sector_blocks,
    sector_count,
    sector_of_block,
)

__all__ = ["EXPECTED", "FORMATS", "SUFFIXES", "format_for_name", "parse", "write"]  # write:
# from daemon.mifare.dumpwrite, kept here so one module names the whole file-format surface

logger = logging.getLogger(__name__)

#: file name endings and the format they usually hold (a ``.json`` may be either JSON format)
SUFFIXES: Final = {
    ".mfd": "mfd",
    ".bin": "mfd",
    ".dump": "mfd",
    ".eml": "eml",
    ".mct": "mct",
    ".txt": "mct",
    ".json": "carddaemon-json",
}
EXPECTED: Final = (
    "expected a raw image of 320, 1024 or 4096 bytes (.mfd/.bin), a Proxmark3 .json or .eml, "
    "a MIFARE Classic Tool dump (+Sector: lines) or a carddaemon JSON dump"
)
_SIM_FORMAT: Final = "carddaemon-sim-card"
_NEITHER_JSON: Final = (
    "is JSON but neither a Proxmark3 dump (FileType and blocks) nor a carddaemon dump "
    f'("format": "{OWN_FORMAT}")'
)
_HEX32: Final = re.compile(r"[0-9A-Fa-f-]{32}")
_SECTOR: Final = re.compile(r"\+Sector:\s*(\d+)\s*")
_KEY_RANGE_A: Final = range(0, 6)
_KEY_RANGE_B: Final = range(10, 16)


class _Bad(InvalidArgument):
    """A file that is not in the format tried (another may fit)."""


def format_for_name(name: str) -> str | None:
    """The format a file name suggests, or None."""
    lower = name.lower()
    return next((f for suffix, f in SUFFIXES.items() if lower.endswith(suffix)), None)


def _size_for_sectors(top: int, block0: bytes | None) -> CardSize:
    if top >= sector_count(CardSize.CLASSIC_1K):
        return CardSize.CLASSIC_4K
    if top < sector_count(CardSize.MINI) and block0 is not None and block0[5] & 0x7F == 0x09:
        return CardSize.MINI
    return CardSize.CLASSIC_1K


def _size_for_blocks(count: int, where: str) -> CardSize:
    for size in CardSize:
        if block_count(size) == count:
            return size
    raise _Bad(where, f"{count} block lines; a MIFARE Mini/1K/4K has 20, 64 or 256")


# --- a block as hex with "--" for unknown bytes -------------------------------------------------


def _hex_block(text: object, where: str) -> tuple[bytes, frozenset[int]]:
    """16 bytes and the offsets of the unknown ones ("--")."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text.strip()):
        raise _Bad(where, "is not a block of 32 hex digits")
    text = text.strip()
    data = bytearray(BLOCK_SIZE)
    unknown = set()
    for i in range(BLOCK_SIZE):
        pair = text[2 * i : 2 * i + 2]
        if pair == "--":
            unknown.add(i)
        elif "-" in pair:
            raise _Bad(where, f"byte {i} {pair!r} is neither hex nor '--'")
        else:
            data[i] = int(pair, 16)
    return bytes(data), frozenset(unknown)


class _Builder:
    """Blocks as a format yields them, with what is unknown, made into a :class:`CardImage`."""

    def __init__(self, source: str, format: str) -> None:
        self.source = source
        self.format = format
        self.blocks: dict[int, bytes] = {}
        self.keys: dict[int, list[bool]] = {}
        self.notes: list[str] = []

    def add(self, n: int, raw: bytes, unknown: frozenset[int], size: CardSize | None) -> None:
        if not unknown:
            self.blocks[n] = raw
            return
        if size is not None and is_trailer(n, size):
            known = set(range(BLOCK_SIZE)) - unknown
            if set(range(6, 10)) <= known:  # access bits known: only keys missing
                self.blocks[n] = raw
                sector = sector_of_block(n, size)
                self.keys[sector] = [
                    not (unknown & {*range(0, 6)}),
                    not (unknown & {*range(10, 16)}),
                ]
                return
        if len(unknown) < BLOCK_SIZE:
            self.notes.append(f"block {n} is partly unknown ('--'): taken as not read")

    def image(self, size: CardSize, uid_length: int | None = None) -> CardImage:
        keys: dict[int, KeysKnown] = {}
        for sector in range(sector_count(size)):
            a, b = self.keys.get(sector, [True, True])
            keys[sector] = (a, b)
        if not self.blocks:
            raise _Bad(self.source, "holds no block at all")
        for n in self.blocks:
            if n >= block_count(size):
                raise _Bad(self.source, f"block {n} is beyond a {size.label}")
        return CardImage.from_blocks(
            size,
            self.blocks,
            uid_length=uid_length,
            keys=keys,
            format=self.format,
            notes=tuple(self.notes),
        )


# --- the formats: parse --------------------------------------------------------------------------


def _text(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Bad(source, "is not text") from None


def _parse_mfd(raw: bytes, source: str) -> CardImage:
    try:
        return CardImage.from_file_bytes(raw, format="mfd")
    except InvalidArgument as exc:
        raise _Bad(source, exc.message.removeprefix("card image: ")) from None


def _parse_eml(raw: bytes, source: str) -> CardImage:
    lines = [(i, line.strip()) for i, line in enumerate(_text(raw, source).splitlines(), 1)]
    lines = [(i, line) for i, line in lines if line]
    if not lines:
        raise _Bad(source, "is empty")
    size = _size_for_blocks(len(lines), source)
    build = _Builder(source, "eml")
    for n, (i, line) in enumerate(lines):
        block, unknown = _hex_block(line, f"{source}: line {i}")
        build.add(n, block, unknown, size)
    return build.image(size)


def _parse_mct(raw: bytes, source: str) -> CardImage:
    build = _Builder(source, "mct")
    sector: int | None = None
    rows: dict[int, list[tuple[int, str]]] = {}
    for i, line in enumerate(_text(raw, source).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        head = _SECTOR.fullmatch(line)
        if head is not None:
            sector = int(head[1])
            if sector in rows:
                raise _Bad(f"{source}: line {i}", f"sector {sector} appears twice")
            rows[sector] = []
        elif sector is None:
            raise _Bad(f"{source}: line {i}", "expected '+Sector: N' before the first block")
        else:
            rows[sector].append((i, line))
    if not rows:
        raise _Bad(source, "has no '+Sector: N' line")
    first = rows.get(0, [(0, "")])[0][1]
    block0 = bytes.fromhex(first) if re.fullmatch(r"[0-9A-Fa-f]{32}", first) else None
    size = _size_for_sectors(max(rows), block0)
    for sector, lines in rows.items():
        if sector >= sector_count(size):
            raise _Bad(source, f"sector {sector} is beyond a {size.label}")
        blocks = sector_blocks(sector, size)
        if len(lines) != len(blocks):
            raise _Bad(
                f"{source}: sector {sector}",
                f"{len(lines)} blocks, a sector {sector} of a {size.label} has {len(blocks)}",
            )
        for n, (i, line) in zip(blocks, lines, strict=True):
            data, unknown = _hex_block(line, f"{source}: line {i}")
            build.add(n, data, unknown, size)
    return build.image(size)


def _json(raw: bytes, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(_text(raw, source))
    except json.JSONDecodeError as exc:
        raise _Bad(source, f"is not valid JSON (line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise _Bad(source, "is JSON but not an object")
    return doc


def _parse_proxmark(raw: bytes, source: str) -> CardImage:
    doc = _json(raw, source)
    kind = doc.get("FileType")
    blocks = doc.get("blocks")
    if not isinstance(kind, str) or not isinstance(blocks, dict):
        raise _Bad(source, _NEITHER_JSON)
    if not kind.lower().startswith("mfc"):
        raise _Bad(f"{source}: FileType", f"{kind!r} is not a MIFARE Classic dump (mfcard)")
    found: dict[int, tuple[bytes, frozenset[int]]] = {}
    for key, text in blocks.items():
        if not str(key).isdigit():
            raise _Bad(f"{source}: blocks", f"{key!r} is not a block number")
        found[int(key)] = _hex_block(text, f"{source}: blocks.{key}")
    if not found:
        raise _Bad(f"{source}: blocks", "is empty")
    top = max(found)
    if top >= block_count(CardSize.CLASSIC_4K):
        raise _Bad(f"{source}: blocks", f"block {top} is beyond a MIFARE Classic 4K")
    block0 = found[0][0] if 0 in found else None
    size = _size_for_sectors(sector_of_block(top, CardSize.CLASSIC_4K), block0)
    card = doc.get("Card")
    uid = card.get("UID") if isinstance(card, dict) else None
    uid_length = len(uid) // 2 if isinstance(uid, str) and len(uid) in (8, 14) else None
    build = _Builder(source, "proxmark-json")
    sector_keys = doc.get("SectorKeys")
    for n, (data, unknown) in sorted(found.items()):
        if is_trailer(n, size) and isinstance(sector_keys, dict):
            entry = sector_keys.get(str(sector_of_block(n, size)))
            if isinstance(entry, dict):  # a key the tool did not find is left out of it
                missing = set() if "KeyA" in entry else set(_KEY_RANGE_A)
                missing |= set() if "KeyB" in entry else set(_KEY_RANGE_B)
                unknown = unknown | frozenset(missing)
        build.add(n, data, unknown, size)
    return build.image(size, uid_length)


def _parse_own(raw: bytes, source: str) -> CardImage:
    doc = _json(raw, source)
    kind = doc.get("format")
    if kind not in (OWN_FORMAT, _SIM_FORMAT):
        raise _Bad(source, _NEITHER_JSON)
    if doc.get("version") != 1:
        raise _Bad(f"{source}: version", f"unsupported version {doc.get('version')!r} (1)")
    names = {v: k for k, v in SIZE_NAMES.items()}
    size = names.get(str(doc.get("size")))
    if size is None:
        raise _Bad(f"{source}: size", f"{doc.get('size')!r} is not one of mini, 1k, 4k")
    blocks = doc.get("blocks")
    if not isinstance(blocks, list) or len(blocks) != block_count(size):
        raise _Bad(
            f"{source}: blocks", f"must list the {block_count(size)} blocks of a {size.label}"
        )
    uid = doc.get("uid")
    uid_length = len(uid) // 2 if isinstance(uid, str) and len(uid) in (8, 14) else None
    build = _Builder(source, "carddaemon-json")
    for n, text in enumerate(blocks):
        if text is not None:
            data, unknown = _hex_block(text, f"{source}: blocks[{n}]")
            build.add(n, data, unknown, size)
    return build.image(size, uid_length)


_PARSERS: Final[dict[str, Callable[[bytes, str], CardImage]]] = {
    "mfd": _parse_mfd,
    "eml": _parse_eml,
    "proxmark-json": _parse_proxmark,
    "mct": _parse_mct,
    "carddaemon-json": _parse_own,
}


def _sniff(raw: bytes) -> str | None:
    """The format the content looks like (cheap look, then the parser decides)."""
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
    if head.startswith(b"{"):
        return _json_kind(raw)
    if head.startswith(b"+Sector"):
        return "mct"
    if re.match(rb"[0-9A-Fa-f-]{32}\r?\n", head):
        return "eml"
    if len(raw) in {block_count(s) * BLOCK_SIZE for s in CardSize}:
        return "mfd"
    return None


def _json_kind(raw: bytes) -> str:
    return "carddaemon-json" if b'"format"' in raw else "proxmark-json"


def parse(raw: bytes, name: str, format: str | None = None) -> CardImage:
    """The image in ``raw`` (a file called ``name``). ``format``: only that one; else the one the
    name suggests when it fits, else the one the content looks like."""
    if format is not None:
        if format not in _PARSERS:
            raise InvalidArgument("--format", f"{format!r} is not one of {', '.join(FORMATS)}")
        return _PARSERS[format](raw, name)
    by_name = format_for_name(name)
    if by_name == "carddaemon-json":  # a .json is either JSON format
        by_name = _json_kind(raw)
    tried: _Bad | None = None
    if by_name is not None:
        try:
            return _PARSERS[by_name](raw, name)
        except _Bad as exc:
            tried = exc
    by_content = _sniff(raw)
    if by_content is not None and by_content != by_name:
        try:
            image = _PARSERS[by_content](raw, name)
        except _Bad:
            if tried is None:
                raise
        else:
            if by_name is None:
                return image
            suffix = name[name.rfind(".") :]
            note = f"named *{suffix} but holds a dump in {by_content} format"
            return dataclasses.replace(image, notes=(note, *image.notes))
    if tried is not None:
        why = tried.message.removeprefix(f"{name}: ")
        where = tried.field if tried.field != name else name
        raise InvalidArgument(where, f"does not read as {by_name} ({why}); {EXPECTED}")
    raise InvalidArgument(name, f"is not a card dump: {EXPECTED}")
