"""A decoded dump for a technician: folded text, one JSON document, and the problems found.

Why fold: a 1K card straight from the factory has 15 sectors that say the same thing (transport
access bits, empty blocks), and the one sector that matters scrolls away; ``decode`` prints a
run of such sectors (and a run of sectors not read) as one line unless ``--all``. Why a list
of problems: ``decode`` exits 1 when the card has one (a broken block 0, a dead sector, a torn
value block), so a script can tell a sound dump from a bad one. Key bytes are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from daemon.mifare.block0 import Severity
from daemon.mifare.dump import CardDump, SectorView, _format, _format_trailer
from daemon.mifare.geometry import block_count, sector_count

__all__ = ["Problem", "dump_document", "format_folded", "problems"]

_TRANSPORT_ACCESS: Final = "FF 07 80"
_PUBLIC_TRANSPORT: Final = "public: factory default (transport)"


@dataclass(frozen=True)
class Problem:
    """Something wrong with the card, where (``block 0``, ``sector 3``, ``block 9``) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def problems(dump: CardDump) -> list[Problem]:
    """What makes this card unsound (errors, not warnings): decode exits 1 on any."""
    found = [
        Problem("block 0", f"{f.code} - {f.message}")
        for f in dump.block0_findings
        if f.severity is Severity.ERROR
    ]
    if dump.mad_problem is not None:
        found.append(Problem("MAD", f"announced by GPB but invalid: {dump.mad_problem}"))
    for sv in dump.sectors:
        if sv.trailer is not None:
            if sv.trailer.problem is not None:
                found.append(Problem(f"sector {sv.sector}", sv.trailer.problem))
            found.extend(Problem(f"sector {sv.sector}", a) for a in sv.trailer.anomalies)
        found.extend(
            Problem(f"block {b.block}", b.meaning)
            for b in sv.blocks
            if b.meaning.startswith("NOT a valid value block")
        )
    return found


def _fold_key(sv: SectorView) -> str | None:
    """What a run of alike sectors says in one line, or None for a sector worth showing."""
    if all(b.kind == "unread" for b in sv.blocks):
        return "not read"
    tv = sv.trailer
    if sv.sector == 0 or tv is None or tv.problem is not None or tv.anomalies:
        return None
    if any(b.kind != "trailer" and b.meaning != "empty (zeros)" for b in sv.blocks):
        return None
    if tv.access_hex != _TRANSPORT_ACCESS:
        return None
    if tv.key_words and any(w != _PUBLIC_TRANSPORT for w in tv.key_words):
        return None
    keys = ", transport keys" if tv.key_words else ""
    return f"factory state: transport access {tv.access_hex}, GPB {tv.gpb:02X}{keys}, empty"


def format_folded(dump: CardDump, *, show_all: bool = False) -> str:
    """The text ``carddaemon decode`` prints; ``show_all``: every sector in full."""
    lines = _format(dump)
    if show_all:
        return "\n".join(lines)
    head = lines[: lines.index("")] if "" in lines else lines
    out = list(head)
    runs: list[tuple[str | None, list[SectorView]]] = []
    for sv in dump.sectors:
        key = _fold_key(sv)
        if key is not None and runs and runs[-1][0] == key:
            runs[-1][1].append(sv)
        else:
            runs.append((key, [sv]))
    folded = 0
    for key, group in runs:
        out.append("")
        if key is None or (len(group) == 1 and key != "not read"):
            for sv in group:
                out.extend(_sector_lines(sv))
            continue
        first, last = group[0].sector, group[-1].sector
        name = f"Sector {first}" if first == last else f"Sectors {first}-{last}"
        out.append(f"{name}: {key}")
        folded += len(group)
    if folded:
        out.append("")
        out.append(f"({folded} alike sector(s) folded; --all shows every block)")
    return "\n".join(out)


def _sector_lines(sv: SectorView) -> list[str]:
    blocks = [b.block for b in sv.blocks]
    lines = [f"Sector {sv.sector} (blocks {blocks[0]}-{blocks[-1]})"]
    lines.extend(_format_trailer(sv.trailer))
    lines.extend(f"  {bv.block:3d}  {bv.hex:<47}  {bv.meaning}" for bv in sv.blocks)
    return lines


def dump_document(dump: CardDump, **extra: Any) -> dict[str, Any]:
    """The decoded card as one JSON-ready document (keys masked as in the text)."""
    b0 = dump.block0
    doc: dict[str, Any] = {
        **extra,
        "card": dump.size.label,
        "uid": dump.uid.hex().upper(),
        "sectors_total": sector_count(dump.size),
        "blocks_total": block_count(dump.size),
        "block0": None
        if b0 is None
        else {
            "uid": b0.uid.hex().upper(),
            "sak": f"{b0.sak:02X}",
            "atqa": b0.atqa.hex().upper(),
            "findings": [
                {"code": f.code, "severity": f.severity.value, "message": f.message}
                for f in dump.block0_findings
            ],
        },
        "mad": None if dump.mad is None else {"publisher_sector": dump.mad.publisher_sector},
        "sectors": [_sector_doc(sv) for sv in dump.sectors],
        "problems": [{"where": p.where, "what": p.what} for p in problems(dump)],
    }
    return doc


def _sector_doc(sv: SectorView) -> dict[str, Any]:
    tv = sv.trailer
    trailer: dict[str, Any] | None = None
    if tv is not None:
        trailer = {
            "access_bits": tv.access_hex.replace(" ", ""),
            "gpb": f"{tv.gpb:02X}",
            "problem": tv.problem,
            "key_b_readable": tv.key_b_readable,
            "rules": [
                {
                    "blocks": r.label,
                    "bits": r.bits,
                    "permissions": dict(r.permissions),
                    "meaning": r.meaning,
                }
                for r in tv.rules
            ],
            "warnings": list(tv.warnings),
            "anomalies": list(tv.anomalies),
        }
        if tv.key_words:
            trailer["key_a"], trailer["key_b"] = tv.key_words
    return {
        "sector": sv.sector,
        "folded_as": _fold_key(sv),
        "trailer": trailer,
        "blocks": [
            {
                "block": b.block,
                "kind": b.kind,
                "hex": None if b.kind == "unread" else b.hex.replace(" ", ""),
                "meaning": b.meaning,
            }
            for b in sv.blocks
        ],
    }
