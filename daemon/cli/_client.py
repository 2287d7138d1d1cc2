"""The CLI's one way to the daemon: a channel to the socket of the command's role, and its
failures turned into the user's words and an exit code.

Which socket: ``--socket PATH`` (before or after the command), else ``$CARDDAEMON_SOCKET``,
else ``<run dir>/<role>.sock`` where the run dir is ``--run-dir`` / ``$CARDDAEMON_RUN_DIR`` /
``/run/carddaemon``. The role is the command's (``readers``: technician, ``issue``: issuer,
``drawer open``: pos), so store IT never has to know which socket serves what.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import grpc

from daemon.cli._args import CliError, Exit, Problem, Role, Unreachable, UsageError

__all__ = [
    "CALL_TIMEOUT_S",
    "DEFAULT_RUN_DIR",
    "Daemon",
    "connect",
    "failure",
    "reader_id",
    "socket_path",
]

#: the daemon's ``[api] runtime_dir`` default (systemd's RuntimeDirectory=carddaemon)
DEFAULT_RUN_DIR: Final = Path("/run/carddaemon")
#: a call's deadline (a present/remove waits for the station to see the card)
CALL_TIMEOUT_S: Final = 15.0

#: reasons that mean the user's input or setup is wrong (exit 2), not the card or device (1)
_USAGE_REASONS: Final = frozenset(
    {
        "INVALID_ARGUMENT",
        "INVALID_AMOUNT",
        "AMOUNT_OUT_OF_RANGE",
        "RECEIPT_INVALID",
        "REQUEST_ID_REUSED",
        "CONFIG_INVALID",
        "KEYSTORE_INVALID",
        "MEMBER_NOT_FOUND",
        "DEVICE_NOT_FOUND",
        "ROLE_NOT_ALLOWED",
        "CERTIFICATE_NOT_MAPPED",
    }
)

T = TypeVar("T")


def socket_path(args: argparse.Namespace, role: Role) -> Path:
    """The socket a command of ``role`` calls (see the module docstring for the order)."""
    given = getattr(args, "socket", None) or os.environ.get("CARDDAEMON_SOCKET")
    if given:
        return Path(given)
    run_dir = getattr(args, "run_dir", None) or os.environ.get("CARDDAEMON_RUN_DIR")
    return (Path(run_dir) if run_dir else DEFAULT_RUN_DIR) / f"{role}.sock"


def _no_daemon(path: Path, why: str) -> Unreachable:
    return Unreachable(
        f"no daemon on {path} ({why}); start one (`make run` for the simulated store, "
        "`systemctl start carddaemon` on a store PC) or name its socket with --socket PATH "
        "or CARDDAEMON_SOCKET"
    )


@dataclass(frozen=True)
class Daemon:
    """An open channel to one socket; :meth:`call` runs stub calls with the CLI's errors."""

    channel: grpc.Channel
    path: Path

    def call(self, run: Callable[[], T], *, words: Mapping[str, str] | None = None) -> T:
        """``run()`` (one or more stub calls); a gRPC failure becomes a :class:`CliError`.
        ``words`` renames the daemon's field or device names at the start of its message to
        what the user typed (``{"readers/side": "READER 'side'"}``)."""
        try:
            return run()
        except grpc.RpcError as exc:
            raise failure(exc, self.path, words) from None

    def stream(
        self, start: Callable[[], Iterator[T]], *, words: Mapping[str, str] | None = None
    ) -> Iterator[T]:
        """The responses of a server stream, its failure as :meth:`call`'s; leaving the loop
        (``break``, Ctrl-C, a closed pipe) cancels the stream."""
        responses = self.call(start, words=words)
        try:
            while True:
                try:
                    item = next(responses)
                except StopIteration:
                    return
                except grpc.RpcError as exc:
                    if exc.code() is grpc.StatusCode.CANCELLED:
                        return
                    raise failure(exc, self.path, words) from None
                yield item
        finally:
            cancel = getattr(responses, "cancel", None)
            if cancel is not None:
                cancel()


@contextlib.contextmanager
def connect(args: argparse.Namespace, role: Role | None = None) -> Iterator[Daemon]:
    """The daemon on the socket for ``role`` (default: the command's own)."""
    wanted: Role = role or args.role
    path = socket_path(args, wanted)
    if not path.exists():
        raise _no_daemon(path, "no such socket")
    with grpc.insecure_channel(f"unix:{path}") as opened:
        yield Daemon(opened, path)


def failure(exc: grpc.RpcError, path: Path, words: Mapping[str, str] | None = None) -> CliError:
    """A failed call as the user should read it: the daemon's reason, its message with the
    user's words, and the exit code (2 for their input, 3 when nobody answers, else 1)."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    code: grpc.StatusCode = exc.code()
    details: str = exc.details() or ""
    reason = ""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:
        status = None
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
                break
    if not reason:
        if code is grpc.StatusCode.UNAVAILABLE:
            return _no_daemon(path, details or "it does not answer")
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return Problem(f"the daemon on {path} did not answer within {CALL_TIMEOUT_S:g} s")
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return UsageError(
                f"UNIMPLEMENTED: the daemon on {path} does not offer this command "
                "(an older carddaemon?)"
            )
        reason = code.name
    message = details.removeprefix(f"{reason}: ")
    for theirs, ours in (words or {}).items():
        if message.startswith(f"{theirs}:"):
            message = ours + message.removeprefix(theirs)
            break
    exit_code = Exit.USAGE if reason in _USAGE_REASONS else Exit.PROBLEM
    if reason == "ROLE_NOT_ALLOWED":
        message += f" (this socket is {path}; let the command choose its socket, or name another)"
    return CliError(f"{reason}: {message}", exit_code)


def reader_id(name: str) -> str:
    """``front`` or ``readers/front`` -> ``readers/front`` (the daemon's resource name)."""
    return name if name.startswith("readers/") else f"readers/{name}"
