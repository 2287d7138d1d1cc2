"""``dump READER [--out FILE] [--all]``: every sector the daemon can open, decoded.

The daemon reads the card with its own keys (diversified keys for our cards, transport or MAD
keys otherwise) and never returns a key: trailers come back with their key bytes zeroed. The
text is ``decode``'s (:mod:`daemon.mifare.dumptext`: access conditions, value blocks, factory
sectors folded unless ``--all``) under the daemon's own view (which key opened each sector, what
the member card layout uses it for, the member record). ``--out`` writes the image in any dump
format ``decode`` reads (:mod:`daemon.mifare.dumpformats`), keys marked unknown.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import connect, reader_id
from daemon.cli._output import Output, proto_dict
from daemon.cli._show import member_lines
from daemon.cli.readers import reader_arg, reader_words

__all__ = ["register"]

_TIMEOUT_S = 60.0


def _image(dumped: Any) -> Any:
    """The dump as a :class:`~daemon.mifare.dumpfile.CardImage` (blocks not read: unread)."""
    from daemon.mifare.dumpfile import CardImage
    from daemon.mifare.geometry import CardSize

    name = dumped.card.card_type_name
    size = {"MIFARE Mini": CardSize.MINI, "MIFARE Classic 4K": CardSize.CLASSIC_4K}.get(
        name, CardSize.CLASSIC_1K
    )
    blocks = {b.block: bytes(b.data) for s in dumped.sectors for b in s.blocks if len(b.data) == 16}
    return CardImage.from_blocks(size, blocks, format="carddaemon DumpCard")


def _sector_rows(dumped: Any, show_all: bool) -> list[list[str]]:
    """One row per sector; a run of alike sectors (same key kind and role, none with an
    error) as one row unless ``show_all``."""
    rows: list[list[str]] = []
    runs: list[tuple[tuple[str, str, str], list[int]]] = []
    for s in dumped.sectors:
        opened = s.key_used if s.readable else f"not read: {s.error_reason or 'no key'}"
        key = (s.role or "-", opened, "" if s.access_bits_valid or not s.readable else "BAD")
        if not show_all and runs and runs[-1][0] == key and not s.role:
            runs[-1][1].append(s.sector)
        else:
            runs.append((key, [s.sector]))
    for (role, opened, bad), sectors in runs:
        where = str(sectors[0]) if len(sectors) == 1 else f"{sectors[0]}-{sectors[-1]}"
        rows.append([where, role, opened, bad and "malformed access bits"])
    return rows


def _out_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: the directory {path.parent} does not exist")
    return path


def _write(image: Any, path: Path, format: str | None, force: bool, out: Output) -> str:
    from daemon.mifare.dumpformats import format_for_name, write

    chosen = format or format_for_name(path.name) or "carddaemon-json"
    if path.exists() and not force:
        raise UsageError(f"--out {path}: the file exists (add --force to replace it)")
    content, lost = write(image, chosen)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    partial.replace(path)
    for note in lost:
        out.warn(f"carddaemon dump: {path}: {note}")
    return chosen


def _cmd_dump(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc
    from daemon.mifare.dumptext import format_folded

    out = Output(args.json)
    request = pb.DumpCardRequest(reader=reader_id(args.reader), expected_uid=args.uid or "")
    with connect(args) as daemon:
        stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
        dumped = daemon.call(
            lambda: stub.DumpCard(request, timeout=_TIMEOUT_S),
            words={**reader_words(args.reader), "expected_uid": "--uid"},
        )
    image = _image(dumped)
    written = None
    if args.out is not None:
        written = _write(image, args.out, args.format, args.force, out)
    if out.json:
        data = proto_dict(dumped)
        data["file"] = {"path": str(args.out), "format": written} if args.out else None
        out.document(data)
        return 0
    card = dumped.card
    out.say(f"card {card.uid} {card.card_type_name} on {request.reader}")
    if dumped.HasField("member_card"):
        out.say("member card of this store:")
        for line in member_lines(dumped.member_card):
            out.say(line)
    out.table(
        ["SECTOR", "USED FOR", "OPENED WITH", "PROBLEM"],
        _sector_rows(dumped, args.all),
        title="sectors (keys stay in the daemon; trailers show key bytes as 00):",
    )
    out.say("")
    out.say(format_folded(image.decode(), show_all=args.all))
    if written is not None:
        out.say(f"written to {args.out} ({written})")
    return 0


def register(sub: SubParsers) -> None:
    from daemon.mifare.dumpformats import FORMATS

    p = add_command(
        sub,
        "dump",
        _cmd_dump,
        help="read and decode every sector the daemon can open (keys never shown); "
        "factory sectors folded unless --all",
        role="technician",
    )
    reader_arg(p)
    p.add_argument("--all", action="store_true", help="show every sector and block in full")
    p.add_argument(
        "--out",
        type=_out_path,
        metavar="FILE",
        help="also write the dump to FILE (format from the suffix: .mfd/.bin raw, .eml, .mct, "
        ".json carddaemon's; or --format)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help=f"the format of --out: {', '.join(FORMATS)} (default: from the suffix, else "
        "carddaemon-json)",
    )
    p.add_argument("--force", action="store_true", help="replace --out FILE if it exists")
    p.add_argument("--uid", metavar="UID", help="refuse unless the card has this UID (hex)")
