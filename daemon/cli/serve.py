"""``serve`` (the daemon itself) and ``version``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from daemon import __version__
from daemon.cli._args import SubParsers, add_command
from daemon.cli._output import Output

__all__ = ["register"]

DEFAULT_CONFIG = Path("/etc/carddaemon/carddaemon.toml")


def _cmd_version(args: argparse.Namespace) -> int:
    out = Output(args.json)
    if out.json:
        out.document({"version": __version__})
    else:
        out.say(f"carddaemon {__version__}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """The daemon: the station of the config file and its gRPC listeners, until SIGTERM."""
    from daemon.api.run import run
    from daemon.api.services import build_services
    from daemon.logs import setup

    setup(logging.DEBUG if args.verbose else logging.WARNING)  # logfmt; journald priorities
    return run(args.config, build_services)


def register(sub: SubParsers) -> None:
    add_command(sub, "version", _cmd_version, help="print the version", role=None)
    p = sub.add_parser("serve", help="run the daemon (gRPC listeners over this PC's devices)")
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the config file (default {DEFAULT_CONFIG})",
    )
    p.set_defaults(func=_cmd_serve, role=None, command_name="carddaemon serve")
