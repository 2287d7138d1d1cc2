"""Save and load simulated cards: raw ``.mfd`` images and JSON.

* ``.mfd`` (also ``.bin``/``.dump``): the bare EEPROM image, 320 (Mini), 1024 (1K) or 4096 (4K)
  bytes, trailers holding the real keys - the layout nfc-mfclassic and the proxmark write. The
  file says nothing about the variant, so :func:`load_mfd` takes it as an argument; the UID
  length is 4 when block 0 carries a valid BCC and a single-size ATQA, else 7 (or pass
  ``uid_len``).
* JSON: ``{"format": "carddaemon-sim-card", "version": 1, "uid", "size", "variant", "blocks":
  [hex, ...], "keys": [{"sector", "a", "b"}, ...]}``. ``keys`` repeats the trailers' keys for
  people reading the file; on load it must agree with the blocks. These are test cards: real
  keys in the file are intended.

Malformed files raise :class:`daemon.errors.InvalidArgument` whose field names the file and the
item (``card.json: blocks[7]``); the message says what is wrong, never which key bytes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

from daemon.errors import InvalidArgument
from sim.card import CardSize, CardVariant, SimCard

__all__ = [
    "FORMAT",
    "from_json",
    "load",
    "load_json",
    "load_mfd",
    "save",
    "save_json",
    "save_mfd",
    "to_json",
]

logger = logging.getLogger(__name__)

FORMAT = "carddaemon-sim-card"
_VERSION = 1
_SIZES: dict[int, CardSize] = {320: "mini", 1024: "1k", 4096: "4k"}
_BLOCKS: dict[str, int] = {"mini": 20, "1k": 64, "4k": 256}
_VARIANTS = ("genuine", "gen2", "gen1a")
_RAW_SUFFIXES = (".mfd", ".bin", ".dump")


def _trailers(size: str) -> list[tuple[int, int]]:
    """(sector, trailer block) for every sector of a card size."""
    sectors = {"mini": 5, "1k": 16, "4k": 40}[size]
    return [(s, s * 4 + 3 if s < 32 else 128 + (s - 32) * 16 + 15) for s in range(sectors)]


# --- raw images ---------------------------------------------------------------------------


def save_mfd(card: SimCard, path: str | Path) -> None:
    """Write the bare EEPROM image."""
    Path(path).write_bytes(card.memory)


def load_mfd(
    path: str | Path, *, variant: CardVariant = "genuine", uid_len: int | None = None
) -> SimCard:
    """Read a bare EEPROM image; its length gives the size."""
    path = Path(path)
    raw = path.read_bytes()
    size = _SIZES.get(len(raw))
    if size is None:
        raise InvalidArgument(
            str(path), f"{len(raw)} bytes is not a MIFARE Classic image (320, 1024 or 4096)"
        )
    if variant not in _VARIANTS:
        raise InvalidArgument("variant", f"{variant!r} is not one of {', '.join(_VARIANTS)}")
    if uid_len is None:
        # 4-byte: BCC matches and ATQA (byte 6) says single-size UID; else double-size (7)
        bcc_ok = raw[4] == raw[0] ^ raw[1] ^ raw[2] ^ raw[3]
        uid_len = 4 if bcc_ok and raw[6] & 0xC0 == 0 else 7
    if uid_len not in (4, 7):
        raise InvalidArgument("uid_len", f"must be 4 or 7, got {uid_len}")
    return SimCard(raw[:uid_len], size=size, variant=variant, memory=raw)


# --- JSON ---------------------------------------------------------------------------------


def to_json(card: SimCard) -> dict[str, Any]:
    """The JSON document for a card (real keys included)."""
    mem = card.memory
    return {
        "format": FORMAT,
        "version": _VERSION,
        "uid": card.uid.hex().upper(),
        "size": card.size,
        "variant": card.variant,
        "blocks": [mem[b * 16 : b * 16 + 16].hex().upper() for b in range(card.block_count)],
        "keys": [
            {
                "sector": sector,
                "a": mem[t * 16 : t * 16 + 6].hex().upper(),
                "b": mem[t * 16 + 10 : t * 16 + 16].hex().upper(),
            }
            for sector, t in _trailers(card.size)
        ],
    }


def _hex(source: str, where: str, text: object, length: int) -> bytes:
    if not isinstance(text, str):
        raise InvalidArgument(
            f"{source}: {where}", f"expected a hex string, got {type(text).__name__}"
        )
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidArgument(f"{source}: {where}", "is not hexadecimal") from None
    if len(raw) != length:
        raise InvalidArgument(f"{source}: {where}", f"{len(raw)} bytes, expected {length}")
    return raw


def from_json(doc: object, source: str = "<json>") -> SimCard:
    """Build a card from a parsed JSON document, checking every field."""
    if not isinstance(doc, dict):
        raise InvalidArgument(source, "top level must be a JSON object")
    obj = cast(dict[str, Any], doc)
    if obj.get("format") != FORMAT:
        raise InvalidArgument(f"{source}: format", f"must be {FORMAT!r}")
    if obj.get("version") != _VERSION:
        raise InvalidArgument(f"{source}: version", f"unsupported version {obj.get('version')!r}")
    size = obj.get("size")
    if size not in _BLOCKS:
        raise InvalidArgument(f"{source}: size", f"{size!r} is not one of mini, 1k, 4k")
    variant = obj.get("variant", "genuine")
    if variant not in _VARIANTS:
        raise InvalidArgument(f"{source}: variant", f"{variant!r} is not one of {_VARIANTS}")
    uid_text = obj.get("uid")
    uid_len = len(uid_text) // 2 if isinstance(uid_text, str) else 0
    if uid_len not in (4, 7):
        raise InvalidArgument(f"{source}: uid", "must be 4 or 7 bytes of hex")
    uid = _hex(source, "uid", uid_text, uid_len)
    blocks = obj.get("blocks")
    if not isinstance(blocks, list):
        raise InvalidArgument(f"{source}: blocks", "must be a list of hex strings")
    if len(blocks) != _BLOCKS[size]:
        raise InvalidArgument(
            f"{source}: blocks", f"{len(blocks)} blocks, a {size} card has {_BLOCKS[size]}"
        )
    memory = b"".join(_hex(source, f"blocks[{i}]", b, 16) for i, b in enumerate(blocks))
    if memory[:uid_len] != uid:
        raise InvalidArgument(f"{source}: uid", "does not match block 0")
    keys = obj.get("keys")
    if keys is not None:
        _check_keys(source, keys, memory, size)
    return SimCard(uid, size=size, variant=variant, memory=memory)


def _check_keys(source: str, keys: object, memory: bytes, size: str) -> None:
    if not isinstance(keys, list):
        raise InvalidArgument(f"{source}: keys", "must be a list")
    trailers = dict(_trailers(size))
    for i, entry in enumerate(cast(list[object], keys)):
        if not isinstance(entry, dict) or entry.get("sector") not in trailers:
            raise InvalidArgument(f"{source}: keys[{i}]", "needs a valid sector number")
        t = trailers[entry["sector"]] * 16
        for name, start in (("a", t), ("b", t + 10)):
            key = _hex(source, f"keys[{i}].{name}", entry.get(name), 6)
            if key != memory[start : start + 6]:
                raise InvalidArgument(
                    f"{source}: keys[{i}].{name}",
                    f"differs from the key in the trailer of sector {entry['sector']}",
                )


def save_json(card: SimCard, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(card), indent=2) + "\n", encoding="utf-8")


def load_json(path: str | Path) -> SimCard:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(str(path), f"is not valid JSON ({exc})") from None
    return from_json(doc, source=path.name)


# --- by suffix ----------------------------------------------------------------------------


def save(card: SimCard, path: str | Path) -> None:
    """``.json`` → JSON, ``.mfd``/``.bin``/``.dump`` → raw image."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        save_json(card, path)
    elif path.suffix.lower() in _RAW_SUFFIXES:
        save_mfd(card, path)
    else:
        raise InvalidArgument(str(path), "unknown dump suffix (use .json, .mfd, .bin or .dump)")


def load(path: str | Path, *, variant: CardVariant = "genuine") -> SimCard:
    """Load by suffix; ``variant`` applies to raw images only (JSON carries its own)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return load_json(path)
    if path.suffix.lower() in _RAW_SUFFIXES:
        return load_mfd(path, variant=variant)
    raise InvalidArgument(str(path), "unknown dump suffix (use .json, .mfd, .bin or .dump)")
