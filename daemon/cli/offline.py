"""Commands that work without a daemon: ``decode FILE``, ``convert FILE OUT``, ``check-config
FILE`` and, until the daemon's ``probe`` replaces it, ``probe`` on the hardware directly.

``decode`` reads every dump format technicians have (:mod:`daemon.mifare.dumpformats`), folds
factory sectors unless ``--all`` and exits 1 when the card has a problem (a broken block 0, a
dead sector, a torn value block); ``check-config`` lists every mistake of the file and exits 2.
Errors name the argument or flag as typed (``FILE card.eml: line 7: ...``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from daemon import registry
from daemon.cli._args import Exit, Problem, SubParsers, UsageError, add_command
from daemon.cli._output import Output
from daemon.errors import ConfigError, InvalidArgument

__all__ = ["readers_local", "register"]

#: names from the registry (entry points included), read without importing any backend
_READER_BACKENDS_HELP = f"reader backend: {', '.join(registry.names('readers'))} (default pcsc)"
_FORMATS = ("mfd", "eml", "proxmark-json", "mct", "carddaemon-json")  # dumpformats.FORMATS


def _say(text: str) -> None:
    """A line on stdout, plainly: a closed pipe raises BrokenPipeError, which ``main`` ends
    quietly with 0 (rich's console would exit 1 instead)."""
    sys.stdout.write(text + "\n")


def _load(path: Path, format: str | None, uid_length: int | None) -> Any:
    """The :class:`~daemon.mifare.dumpfile.CardImage` in ``path``, errors naming FILE."""
    import dataclasses

    from daemon.mifare.dumpfile import read_dump_bytes
    from daemon.mifare.dumpformats import parse

    try:
        image = parse(read_dump_bytes(path), str(path), format)
    except InvalidArgument as exc:
        text = exc.message
        if exc.field == "--format":
            raise UsageError(text) from None
        raise UsageError(f"FILE {text}") from None
    if uid_length is not None:
        image = dataclasses.replace(image, uid_length=uid_length)
    return image


def _write_out(path: Path, content: bytes, *, flag: str, force: bool) -> None:
    """Write ``content`` to the file ``path`` (never a directory, never a missing folder)."""
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a directory; name the file to write")
    if not folder.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: the directory {str(folder)!r} does not exist")
    if path.exists() and not force:
        raise UsageError(f"{flag} {str(path)!r} exists; add --force to replace it")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _target_format(out: Path, to: str | None) -> str:
    from daemon.mifare.dumpformats import format_for_name

    chosen = to or format_for_name(out.name)
    if chosen is None:
        raise UsageError(
            f"--to: {out.name!r} does not say which format to write; give --to "
            f"({', '.join(_FORMATS)})"
        )
    return chosen


def _convert(image: Any, out_path: Path, to: str | None, force: bool, out: Output) -> None:
    from daemon.mifare.dumpformats import write

    content, lost = write(image, _target_format(out_path, to))
    _write_out(out_path, content, flag="--out", force=force)
    for note in lost:
        out.warn(f"note: {note}")


def _cmd_decode(args: argparse.Namespace) -> int:
    from daemon.mifare.dumptext import dump_document, format_folded, problems

    out = Output(args.json)
    image = _load(args.file, args.format, args.uid_length)
    dump = image.decode()
    found = problems(dump)
    if args.out is not None:
        _convert(image, args.out, args.to, args.force, out)
    elif args.to is not None:
        raise UsageError("--to needs --out FILE (the file to write)")
    if out.json:
        out.document(
            dump_document(dump, file=str(args.file), format=image.format, notes=list(image.notes))
        )
    else:
        _say(f"{args.file}: {image.format} dump")
        for note in image.notes:
            _say(f"  note: {note}")
        _say(format_folded(dump, show_all=args.all))
    if found:
        listed = "; ".join(str(p) for p in found)
        raise Problem(f"{args.file}: {len(found)} problem(s): {listed}")
    return Exit.OK


def _cmd_convert(args: argparse.Namespace) -> int:
    out = Output(args.json)
    image = _load(args.file, args.format, None)
    fmt = _target_format(args.out, args.to)
    _convert(image, args.out, fmt, args.force, out)
    if out.json:
        out.document(
            {"file": str(args.file), "from": image.format, "out": str(args.out), "to": fmt}
        )
    else:
        _say(f"{args.out}: written as {fmt} (from a {image.format} dump)")
    return Exit.OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file the way the daemon does at start (keys included)."""
    from daemon.config import ConfigMistakes, load_config

    out = Output(args.json)
    try:
        load_config(args.file)
    except ConfigError as exc:
        mistakes = exc.mistakes if isinstance(exc, ConfigMistakes) else (exc,)
        if out.json:
            out.document(
                {
                    "file": str(args.file),
                    "ok": False,
                    "mistakes": [
                        {"key": m.key, "problem": m.message.removeprefix(f"{m.key}: ")}
                        for m in mistakes
                    ],
                }
            )
        else:
            out.warn(f"carddaemon check-config: {args.file}: {len(mistakes)} mistake(s)")
            for m in mistakes:
                out.warn(f"  {m.message}")
        return Exit.USAGE
    if out.json:
        out.document({"file": str(args.file), "ok": True, "mistakes": []})
    else:
        _say(f"{args.file}: ok")
    return Exit.OK


def readers_local(backend_name: str) -> int:
    """The reader backend's names, asked directly (``readers --local``)."""
    from daemon.readers.backends import create_backend

    backend = create_backend(backend_name)
    try:
        names = backend.list_readers()
    finally:
        backend.close()
    if not names and not registry.is_builtin("readers", backend_name):
        raise UsageError(
            f"--backend {backend_name}: its readers exist only inside the process that "
            "simulates them (a daemon started by `make run` or `carddaemon-demo serve`); "
            "ask that daemon: `carddaemon readers`"
        )
    if not names:
        print("no readers attached")
    for name in names:
        print(name)
    return 0


def _probe_flags(args: argparse.Namespace) -> None:
    """The local probe's flags checked in the words typed (the library names its parameters)."""
    from daemon.diagnostics.probe import MAX_LATENCY_ROUNDS

    if not 0 <= args.rounds <= MAX_LATENCY_ROUNDS:
        raise UsageError(f"--rounds {args.rounds}: give 0..{MAX_LATENCY_ROUNDS} round trips")
    if args.allow_block0_write and not args.gen2:
        raise UsageError("--allow-block0-write is only for --gen2 (the test that writes block 0)")
    if args.gen2 and args.station != "issuing":
        raise UsageError(
            f"--gen2 writes block 0: only with --station issuing (given --station {args.station})"
        )
    if args.gen2 and not args.allow_block0_write:
        raise UsageError("--gen2 writes block 0 with its own bytes: add --allow-block0-write")


def _cmd_probe(args: argparse.Namespace) -> int:
    from daemon.diagnostics.probe import probe_card
    from daemon.readers.backends import create_backend

    _probe_flags(args)
    backend = create_backend(args.backend)
    try:
        names = backend.list_readers()
        if args.reader is not None and args.reader not in names:
            known = ", ".join(repr(n) for n in names) or "none attached"
            raise UsageError(f"--reader {args.reader!r}: no such reader (readers: {known})")
        reader = args.reader or (names[0] if names else None)
        if reader is None:
            raise Problem(f"no readers attached to the {args.backend} backend")
        connection = backend.connect(reader)
        try:
            result = probe_card(
                connection,
                station=args.station,
                check_gen2=args.gen2,
                allow_block0_write=args.allow_block0_write,
                latency_rounds=args.rounds,
            )
        finally:
            connection.close()
    finally:
        backend.close()
    print(result.format_text())
    return 0


def register(sub: SubParsers) -> None:
    formats = ", ".join(_FORMATS)
    p = add_command(
        sub,
        "decode",
        _cmd_decode,
        help="decode a card dump file (.mfd/.bin, Proxmark .json/.eml, MIFARE Classic Tool, "
        "carddaemon JSON); exit 1 when the card has a problem",
        role=None,
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the dump file (format from content)")
    p.add_argument("--all", action="store_true", help="show every sector (default: fold alike)")
    p.add_argument(
        "--format", choices=_FORMATS, default=None, help=f"read FILE as this format ({formats})"
    )
    p.add_argument(
        "--uid-length",
        type=int,
        choices=(4, 7),
        default=None,
        help="UID bytes (4 or 7; default: from the file or block 0)",
    )
    p.add_argument("--out", type=Path, default=None, metavar="OUT", help="also write the dump here")
    p.add_argument("--to", choices=_FORMATS, default=None, help=f"format of --out ({formats})")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")

    p = add_command(
        sub,
        "convert",
        _cmd_convert,
        help="write a card dump file in another format",
        role=None,
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the dump file to read")
    p.add_argument("out", type=Path, metavar="OUT", help="the file to write")
    p.add_argument(
        "--to", choices=_FORMATS, default=None, help=f"format of OUT ({formats}; default: its name)"
    )
    p.add_argument(
        "--format", choices=_FORMATS, default=None, help=f"read FILE as this format ({formats})"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")

    p = add_command(
        sub,
        "check-config",
        _cmd_check_config,
        help="check a config file as the daemon would at start; lists every mistake (exit 2)",
        role=None,
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the config file (TOML)")

    # `probe` is daemon/cli/diagnose.py's (through the daemon); with --local or --backend it
    # runs _cmd_probe here, with the same flags (backend, reader, station, rounds, gen2 ...)
