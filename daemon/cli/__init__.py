"""`carddaemon`: the daemon (``serve``) and the technician's and issuing station's tool.

Every command but ``serve``, ``decode``, ``check-config`` and ``journal`` is a gRPC client of a
running daemon (never the hardware directly), over the socket of its role: technician
(readers, probe, dump …), issuer (issue, hotlist …) or pos (read, drawer open …).

Conventions for whoever adds a command
--------------------------------------
* **A module per subject** in ``daemon/cli/``, with ``register(sub) -> None`` that adds its
  commands to the ``carddaemon`` subparsers, and its name in :data:`COMMAND_MODULES` below.
  Use ``_args.add_command(sub, name, func, help=..., role=...)``: it adds ``--json`` and
  ``--socket`` after the command too and records the role (``None``: works offline). Every
  argument gets a ``help=`` line; give ``choices=`` (or list them in the help) where there are.
* **A command** is ``func(args) -> int`` (an :class:`~daemon.cli._args.Exit`). It never calls
  ``sys.exit`` and never prints its own errors: it raises ``_args.UsageError`` (2) or
  ``_args.Problem`` (1) with a message naming the flag or argument as the user typed it
  (``--tier 'gold': not a tier of this store (tiers: 普通卡, 金卡)``); ``main`` prints
  ``carddaemon <command>: <message>`` on stderr and returns the code.
* **The daemon**: ``with _client.connect(args) as daemon:`` opens the role's socket;
  ``daemon.call(lambda: stub.Method(request, timeout=CALL_TIMEOUT_S), words={...})`` turns a
  gRPC failure into the right exit code and message (``words`` renames the daemon's names,
  e.g. ``readers/side``, to the user's, ``READER 'side'``). No daemon: exit 3.
* **Output**: ``out = _output.Output(args.json)``; with ``out.json`` print exactly one
  ``out.document(...)`` (live commands: one ``out.json_line(...)`` per event), else
  ``out.table(...)`` / ``out.say(...)``. ``_output.proto_dict(message)`` is a response as JSON.
  Keys, MACs, payment codes and member tokens are never printed.

Exit codes: 0 ok; 1 the card, device or check found a problem; 2 usage or config error (a bad
flag, an unknown reader, a wrong socket for the command); 3 no daemon answers on the socket.
A closed pipe (``| head``) ends a command quietly; Ctrl-C ends a live command with 0.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from daemon import __version__
from daemon.cli._args import CliError, Exit
from daemon.cli._client import DEFAULT_RUN_DIR
from daemon.cli._output import quiet_closed_pipe
from daemon.errors import CardDaemonError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: the modules of ``daemon/cli`` that add commands, in the order ``--help`` lists them. A name
#: whose module does not exist yet is skipped (work in progress elsewhere in the tree).
COMMAND_MODULES: Final = (
    "serve",
    "readers",
    "diagnose",
    "dump",
    "issuing",
    "batch",
    "printers",
    "scans",
    "offline",
    "simulator",
    "journal",
    "day",
    "ledger",
    "audit",
)

_DESCRIPTION = (
    "carddaemon: the store PC's card, printer and scanner daemon (serve) and its technician "
    "and issuing tool. Exit codes: 0 ok, 1 the card/device/check found a problem, 2 usage or "
    "config error, 3 daemon unreachable."
)


def _register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                continue
            raise
        module.register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carddaemon", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"carddaemon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON (one document; JSON lines for live commands such as watch)",
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="the daemon's socket (default $CARDDAEMON_SOCKET, else the command's own socket "
        "in the run dir: pos.sock, technician.sock or issuer.sock)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where the daemon's sockets are (default $CARDDAEMON_RUN_DIR, else "
        f"{DEFAULT_RUN_DIR}; the config's [api] runtime_dir)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's usage error (2)
        return exc.code if isinstance(exc.code, int) else Exit.USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command: str = getattr(args, "command_name", f"carddaemon {args.command}")
    try:
        code: int = args.func(args)
    except CliError as exc:
        _error(f"{command}: {exc}")
        return int(exc.code)
    except CardDaemonError as exc:
        _error(f"{command}: {exc}")
        return Exit.USAGE if isinstance(exc, ValueError) else Exit.PROBLEM
    except BrokenPipeError:
        quiet_closed_pipe()
        return Exit.OK
    except KeyboardInterrupt:
        return 130
    return int(code)


def _error(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    sys.exit(main())
