"""What every command shares: the exit codes, the one error a command raises, its parser.

Why one :class:`CliError`: a command never prints its own error and never exits itself;
``main`` prints ``carddaemon <command>: <message>`` on stderr and returns the error's exit code,
so every command speaks the same way and no traceback reaches a user for bad input.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeAlias

__all__ = [
    "Command",
    "Exit",
    "Problem",
    "Role",
    "SubParsers",
    "Unreachable",
    "UsageError",
    "add_command",
    "client_options",
]

#: the daemon's three sockets: which one a command calls decides what it may do
Role = Literal["pos", "technician", "issuer"]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Command = Callable[[argparse.Namespace], int]


class Exit(enum.IntEnum):
    """The documented exit codes of every ``carddaemon`` command."""

    OK = 0  # done; the card, device or check is fine
    PROBLEM = 1  # the card, device or check found a problem (the daemon said no)
    USAGE = 2  # bad usage, bad input, or a config error
    UNREACHABLE = 3  # no daemon answers on the socket


class CliError(Exception):
    """A command's failure: its message (in the user's words) and exit code."""

    code: Exit = Exit.PROBLEM

    def __init__(self, message: str, code: Exit | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class Problem(CliError):
    """The card, device or check found a problem (exit 1)."""

    code = Exit.PROBLEM


class UsageError(CliError):
    """A flag, argument or file the user gave is wrong (exit 2)."""

    code = Exit.USAGE


class Unreachable(CliError):
    """No daemon answers on the socket (exit 3)."""

    code = Exit.UNREACHABLE


def client_options(role: Role | None) -> argparse.ArgumentParser:
    """``--json`` and ``--socket`` after the command too (``carddaemon readers --json``);
    ``SUPPRESS`` keeps a value given before the command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON (one document; JSON lines for live commands)",
    )
    if role is not None:
        parent.add_argument(
            "--socket",
            type=Path,
            default=argparse.SUPPRESS,
            metavar="PATH",
            help=f"the daemon's socket (default: the {role} socket, {role}.sock)",
        )
    return parent


def add_command(
    sub: SubParsers,
    name: str,
    func: Command,
    *,
    help: str,
    role: Role | None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A command ``name`` running ``func(args) -> exit code``; ``role`` is the socket it calls
    (``None``: works offline). The parser is returned for the command's own arguments."""
    parser = sub.add_parser(
        name,
        parents=[client_options(role)],
        help=help,
        description=description or help,
    )
    # the prog names nested commands whole ("carddaemon hotlist add") for error messages
    parser.set_defaults(func=func, role=role, command_name=parser.prog)
    return parser
