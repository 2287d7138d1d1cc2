"""Writing a :class:`~daemon.mifare.dumpfile.CardImage` in each dump file format.

The formats are described in :mod:`daemon.mifare.dumpformats` (which reads them). What a format
cannot hold is said, not hidden: ``.mfd`` and ``.eml`` have no mark for a block not read or a
key not known, so those are written as 00 and :func:`write` returns a note for each; MCT and our
JSON write ``--`` for an unknown byte; Proxmark JSON leaves out what it does not have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from daemon.errors import InvalidArgument, MalformedBlock
from daemon.mifare.access import AccessConditions, BlockKind
from daemon.mifare.dumpfile import CardImage
from daemon.mifare.geometry import (
    BLOCK_SIZE,
    CardSize,
    block_count,
    is_trailer,
    sector_blocks,
    sector_count,
    sector_of_block,
    trailer_block,
)

__all__ = ["FORMATS", "OWN_FORMAT", "SIZE_NAMES", "masked_hex", "write"]

FORMATS: Final = ("mfd", "eml", "proxmark-json", "mct", "carddaemon-json")
OWN_FORMAT: Final = "carddaemon-dump"
SIZE_NAMES: Final = {CardSize.MINI: "mini", CardSize.CLASSIC_1K: "1k", CardSize.CLASSIC_4K: "4k"}
_KEY_A: Final = slice(0, 6)
_KEY_B: Final = slice(10, 16)


def masked_hex(raw: bytes, unknown: frozenset[int] = frozenset()) -> str:
    """32 hex digits, ``--`` for each unknown byte."""
    return "".join("--" if i in unknown else f"{b:02X}" for i, b in enumerate(raw))


def _block_text(image: CardImage, n: int) -> str | None:
    """A block as 32 hex digits, unknown key bytes as '--'; None when not read."""
    raw = image.block(n)
    if raw is None:
        return None
    if not is_trailer(n, image.size):
        return masked_hex(raw)
    a, b = image.keys_known(sector_of_block(n, image.size))
    unknown = frozenset(() if a else range(0, 6)) | frozenset(() if b else range(10, 16))
    return masked_hex(raw, unknown)


def _lost(image: CardImage, format: str) -> list[str]:
    notes = []
    if image.unread:
        notes.append(f"{format} cannot mark blocks not read: {len(image.unread)} written as 00")
    unknown = [
        s
        for s in range(sector_count(image.size))
        if trailer_block(s, image.size) not in image.unread and image.keys_known(s) != (True, True)
    ]
    if unknown:
        notes.append(
            f"{format} cannot mark unknown keys: those of {len(unknown)} sector(s) written as 00"
        )
    return notes


def _write_mfd(image: CardImage) -> tuple[bytes, list[str]]:
    out = bytearray(image.data)
    for s in range(sector_count(image.size)):
        t = trailer_block(s, image.size) * BLOCK_SIZE
        a, b = image.keys_known(s)
        if not a:
            out[t : t + 6] = bytes(6)
        if not b:
            out[t + 10 : t + 16] = bytes(6)
    return bytes(out), _lost(image, "mfd")


def _write_eml(image: CardImage) -> tuple[bytes, list[str]]:
    raw, lost = _write_mfd(image)
    lines = [
        raw[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE].hex() for n in range(block_count(image.size))
    ]
    return ("\n".join(lines) + "\n").encode("ascii"), [n.replace("mfd", "eml") for n in lost]


def _write_mct(image: CardImage) -> tuple[bytes, list[str]]:
    lines: list[str] = []
    for s in image.sectors_read():
        lines.append(f"+Sector: {s}")
        for n in sector_blocks(s, image.size):
            lines.append(_block_text(image, n) or "-" * 32)
    return ("\n".join(lines) + "\n").encode("ascii"), []


def _access_text(trailer: bytes) -> dict[str, str]:
    try:
        access = AccessConditions.from_bytes(trailer[6:9])
    except MalformedBlock:
        return {"UserData": f"{trailer[9]:02X}"}
    text = {f"block{g}": access.group(g).describe(BlockKind.DATA) for g in range(3)}
    text["block3"] = access.group(3).describe(BlockKind.TRAILER)
    text["UserData"] = f"{trailer[9]:02X}"
    return text


def _write_proxmark(image: CardImage) -> tuple[bytes, list[str]]:
    doc: dict[str, Any] = {"Created": "carddaemon", "FileType": "mfcard"}
    block0 = image.block(0)
    if block0 is not None:
        n = image.uid_length
        sak, atqa = (block0[5], block0[6:8]) if n == 4 else (block0[7], block0[8:10])
        doc["Card"] = {
            "UID": block0[:n].hex().upper(),
            "ATQA": atqa.hex().upper(),
            "SAK": f"{sak:02X}",
        }
    doc["blocks"] = {}
    for n in range(block_count(image.size)):
        raw = image.block(n)
        if raw is None:
            continue
        doc["blocks"][str(n)] = (
            _write_mfd(image)[0][n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE].hex().upper()
        )
    keys: dict[str, Any] = {}
    for s in range(sector_count(image.size)):
        trailer = image.block(trailer_block(s, image.size))
        if trailer is None:
            continue
        a, b = image.keys_known(s)
        entry: dict[str, Any] = {}
        if a:
            entry["KeyA"] = trailer[_KEY_A].hex().upper()
        if b:
            entry["KeyB"] = trailer[_KEY_B].hex().upper()
        entry["AccessConditions"] = trailer[6:10].hex().upper()
        entry["AccessConditionsText"] = _access_text(trailer)
        keys[str(s)] = entry
    doc["SectorKeys"] = keys
    lost = [n for n in _lost(image, "proxmark-json") if "keys" in n]
    return (json.dumps(doc, indent=2) + "\n").encode("ascii"), lost


def _write_own(image: CardImage) -> tuple[bytes, list[str]]:
    doc = {
        "format": OWN_FORMAT,
        "version": 1,
        "size": SIZE_NAMES[image.size],
        "uid": image.uid.hex().upper(),
        "blocks": [_block_text(image, n) for n in range(block_count(image.size))],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii"), []


_WRITERS: Final[dict[str, Callable[[CardImage], tuple[bytes, list[str]]]]] = {
    "mfd": _write_mfd,
    "eml": _write_eml,
    "proxmark-json": _write_proxmark,
    "mct": _write_mct,
    "carddaemon-json": _write_own,
}


def write(image: CardImage, format: str) -> tuple[bytes, list[str]]:
    """The file content of ``image`` in ``format`` and what that format could not keep."""
    if format not in _WRITERS:
        raise InvalidArgument("--to", f"{format!r} is not one of {', '.join(FORMATS)}")
    return _WRITERS[format](image)
