"""Commands that work without a daemon: ``decode FILE``, ``check-config FILE`` and, until the
daemon's ``probe`` replaces it, ``probe`` on the hardware directly through pcscd.

(Moved as it was from the old ``daemon/cli.py``; issue 12 improves these.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from daemon import registry
from daemon.cli._args import SubParsers

__all__ = ["readers_local", "register"]

_MAX_DUMP_BYTES: Final = 4096

#: names from the registry (entry points included), read without importing any backend
_READER_BACKENDS_HELP = f"reader backend: {', '.join(registry.names('readers'))} (default pcsc)"


def _cmd_decode(args: argparse.Namespace) -> int:
    """Decode a raw card image (.mfd/.bin/.dump: 320, 1024 or 4096 bytes)."""
    from daemon.mifare import decode_dump

    path: Path = args.file
    try:
        size = path.stat().st_size
        if size > _MAX_DUMP_BYTES:
            raise ValueError(f"{size} bytes is larger than any MIFARE Classic card")
        image = path.read_bytes()
    except (OSError, ValueError) as exc:
        print(f"carddaemon decode: {path}: {exc}", file=sys.stderr)
        return 2
    print(decode_dump(image, uid_length=args.uid_length).format_text())
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file the way the daemon does at start (keys included)."""
    from daemon.config import load_config

    load_config(args.file)
    print(f"{args.file}: ok")
    return 0


def readers_local(backend_name: str) -> int:
    """The reader backend's names, asked directly (``readers --local``)."""
    from daemon.readers.backends import create_backend

    backend = create_backend(backend_name)
    try:
        names = backend.list_readers()
    finally:
        backend.close()
    if not names:
        print("no readers attached")
    for name in names:
        print(name)
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from daemon.diagnostics.probe import probe_card
    from daemon.readers.backends import create_backend

    backend = create_backend(args.backend)
    try:
        names = backend.list_readers()
        reader = args.reader or (names[0] if names else None)
        if reader is None:
            print("carddaemon probe: no readers attached", file=sys.stderr)
            return 1
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
    p = sub.add_parser("decode", help="decode a raw card image file (.mfd/.bin)")
    p.add_argument("file", type=Path)
    p.add_argument("--uid-length", type=int, choices=(4, 7), default=4)
    p.set_defaults(func=_cmd_decode, role=None, command_name="carddaemon decode")

    p = sub.add_parser("check-config", help="validate a config file as the daemon would")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_cmd_check_config, role=None, command_name="carddaemon check-config")

    p = sub.add_parser("probe", help="probe the card on a reader (UID, ATR, block 0, latency)")
    p.add_argument("--backend", default="pcsc", help=_READER_BACKENDS_HELP)
    p.add_argument("--reader", default=None, help="reader name (default: the first one)")
    p.add_argument("--station", default="technician", choices=("pos", "technician", "issuing"))
    p.add_argument("--rounds", type=int, default=20, help="latency self-test round trips")
    p.add_argument("--gen2", action="store_true", help="test for a gen2/CUID magic card")
    p.add_argument(
        "--allow-block0-write",
        action="store_true",
        help="permit the gen2 test to rewrite block 0 with its own bytes (issuing station only)",
    )
    p.set_defaults(func=_cmd_probe, role=None, command_name="carddaemon probe")
