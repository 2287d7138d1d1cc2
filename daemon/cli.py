"""`carddaemon`: the daemon (``serve``) and its command line.

``readers``, ``read`` and ``sim`` are gRPC clients of a running daemon, over its Unix socket
(``--socket``, else ``$CARDDAEMON_SOCKET``, else the POS socket /run/carddaemon/pos.sock);
``readers --local``, ``probe``, ``decode`` and ``check-config`` work without a daemon (``readers
--local`` and ``probe`` on the hardware directly, through pcscd: not while the daemon holds the
readers). Output is for people; exit code 0 on success, 1 when the daemon, card or reader said
no, 2 for bad usage or input, or when no daemon answers on the socket.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from daemon import __version__, registry
from daemon.errors import CardDaemonError

if TYPE_CHECKING:
    import grpc

__all__ = ["DEFAULT_SOCKET", "main"]

logger = logging.getLogger(__name__)

_MAX_DUMP_BYTES = 4096

#: the daemon's POS socket (``[api] runtime_dir`` default); ``$CARDDAEMON_SOCKET`` overrides it
DEFAULT_SOCKET: Final = Path("/run/carddaemon/pos.sock")
#: a client call's deadline (a present/remove waits for the station to see the card)
CALL_TIMEOUT_S: Final = 15.0


#: names from the registry (entry points included), read without importing any backend
_READER_BACKENDS_HELP = f"reader backend: {', '.join(registry.names('readers'))} (default pcsc)"


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"carddaemon {__version__}")
    return 0


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


class NoDaemon(Exception):
    """Nothing answers on the socket: which one, and how to start the daemon (exit 2)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"no daemon on {path} ({why}); start one (`make run` for the simulated store, "
            "`systemctl start carddaemon` on a store PC) or name its socket with --socket PATH "
            "or CARDDAEMON_SOCKET"
        )


class CallFailed(Exception):
    """The daemon refused the call: its reason and message (exit 1)."""


def _socket(args: argparse.Namespace) -> Path:
    given = getattr(args, "socket", None) or os.environ.get("CARDDAEMON_SOCKET")
    return Path(given) if given else DEFAULT_SOCKET


def _call(args: argparse.Namespace, make: Callable[[grpc.Channel], Any], *calls: Any) -> Any:
    """Open a channel to the daemon's socket, ``make(channel)`` a stub and run ``calls`` (each
    ``(stub) -> response``) in order; the last response. gRPC errors become :class:`CallFailed`
    (the daemon's reason) or :class:`NoDaemon` (nobody listening)."""
    import grpc

    path = _socket(args)
    if not path.exists():
        raise NoDaemon(path, "no such socket")
    with grpc.insecure_channel(f"unix:{path}") as channel:
        stub = make(channel)
        result: Any = None
        try:
            for call in calls:
                result = call(stub)
        except grpc.RpcError as exc:
            raise _failure(exc, path) from None
    return result


def _failure(exc: grpc.RpcError, path: Path) -> Exception:
    import grpc
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
    if not reason and code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED):
        if code is grpc.StatusCode.UNAVAILABLE:
            return NoDaemon(path, details or "it does not answer")
        return CallFailed(f"UNIMPLEMENTED: {details or 'this daemon does not offer that'}")
    reason = reason or code.name
    return CallFailed(f"{reason}: {details.removeprefix(f'{reason}: ')}")


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def _cmd_readers(args: argparse.Namespace) -> int:
    if args.local or args.backend is not None:
        return _readers_local(args.backend or "pcsc")
    from daemon.api.v1 import reader_service_pb2 as pb
    from daemon.api.v1 import reader_service_pb2_grpc as pb_grpc

    found = _call(
        args,
        pb_grpc.ReaderServiceStub,
        lambda stub: stub.ListReaders(pb.ListReadersRequest(), timeout=CALL_TIMEOUT_S),
    )
    if not found.readers:
        print("no readers attached")
    for reader in found.readers:
        if reader.HasField("card"):
            card = reader.card
            state = f"card {card.uid}" + (
                f" ({card.card_type_name})" if card.card_type_name else ""
            )
        else:
            state = pb.Reader.State.Name(reader.state).removeprefix("STATE_").lower()
        print(f"{reader.name:<16} {state:<32} {reader.pcsc_name} [{reader.dialect}]")
    return 0


def _cmd_read(args: argparse.Namespace) -> int:
    from daemon.api.v1 import member_card_service_pb2 as pb
    from daemon.api.v1 import member_card_service_pb2_grpc as pb_grpc

    read = _call(
        args,
        pb_grpc.MemberCardServiceStub,
        lambda stub: stub.ReadCard(pb.ReadCardRequest(reader=args.reader), timeout=CALL_TIMEOUT_S),
    )
    card = read.card
    until = card.valid_until
    valid = f"{until.year:04d}-{until.month:02d}-{until.day:02d}" if until.year else "no end"
    status = pb.MemberCardStatus.Name(card.status).removeprefix("MEMBER_CARD_STATUS_").lower()
    rate = f"{card.price_rate_bp / 100:g}%"
    print(f"card {card.uid}")
    print(f"  member       {card.member_id}")
    print(f"  tier         {card.tier_name} (pays {rate} of the price)")
    print(f"  balance      {_yuan(card.balance.amount_fen)}")
    print(f"  points       {card.points}")
    print(f"  valid until  {valid} ({status})")
    for rid in read.resolved_request_ids:
        print(f"  settled      {rid}")
    return 0


def _sim_card(card: Any) -> str:
    where = card.reader or "(in the drawer)"
    return f"{card.card_id:<10} {card.uid:<16} {where:<16} {card.description}"


def _cmd_sim(args: argparse.Namespace) -> int:
    from daemon.api.v1 import simulator_service_pb2 as pb
    from daemon.api.v1 import simulator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.SimulatorServiceStub
    t = CALL_TIMEOUT_S
    if args.sim_command == "cards":
        listed = _call(
            args, stub, lambda s: s.ListSimulatedCards(pb.ListSimulatedCardsRequest(), timeout=t)
        )
        for card in listed.cards:
            print(_sim_card(card))
    elif args.sim_command == "present":
        request = pb.PresentCardRequest(reader=args.reader, card_id=args.card)
        done = _call(args, stub, lambda s: s.PresentCard(request, timeout=t))
        print(f"presented {done.card.card_id} ({done.card.uid}) on {done.card.reader}")
    elif args.sim_command == "swap":
        swap = pb.SwapCardRequest(reader=args.reader, card_id=args.card)
        swapped = _call(args, stub, lambda s: s.SwapCard(swap, timeout=t))
        if swapped.HasField("removed"):
            print(f"removed {swapped.removed.card_id or swapped.removed.uid}")
        print(f"presented {swapped.presented.card_id} on {swapped.presented.reader}")
    else:
        removal = pb.RemoveCardRequest(reader=args.reader)
        gone = _call(args, stub, lambda s: s.RemoveCard(removal, timeout=t))
        if gone.HasField("card"):
            print(f"removed {gone.card.card_id or gone.card.uid} from {args.reader}")
        else:
            print(f"no card on {args.reader}")
    return 0


def _readers_local(backend_name: str) -> int:
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


def _cmd_serve(args: argparse.Namespace) -> int:
    """The daemon: the station of the config file and its gRPC listeners, until SIGTERM."""
    from daemon.api.run import run
    from daemon.api.services import build_services
    from daemon.logs import setup

    setup(logging.DEBUG if args.verbose else logging.WARNING)  # logfmt; journald priorities
    return run(args.config, build_services)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carddaemon", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    socket_help = (
        f"the daemon's socket (default $CARDDAEMON_SOCKET, else {DEFAULT_SOCKET}; a role's "
        "socket: pos.sock, technician.sock, issuer.sock)"
    )
    parser.add_argument("--socket", type=Path, default=None, help=socket_help)
    # also after the command (`carddaemon read front --socket …`); SUPPRESS keeps a global one
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--socket", type=Path, default=argparse.SUPPRESS, help=socket_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser("decode", help="decode a raw card image file (.mfd/.bin)")
    p.add_argument("file", type=Path)
    p.add_argument("--uid-length", type=int, choices=(4, 7), default=4)
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("serve", help="run the daemon (gRPC listeners over this PC's devices)")
    p.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/carddaemon/carddaemon.toml"),
        help="the config file (default /etc/carddaemon/carddaemon.toml)",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("check-config", help="validate a config file as the daemon would")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser(
        "readers", parents=[client], help="list the daemon's readers and the cards on them"
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="ask the reader backend directly instead of the daemon (names only)",
    )
    p.add_argument("--backend", default=None, help=_READER_BACKENDS_HELP + "; implies --local")
    p.set_defaults(func=_cmd_readers)

    p = sub.add_parser(
        "read", parents=[client], help="read the member card on a reader (through the daemon)"
    )
    p.add_argument("reader", help="readers/<id> or <id>, e.g. readers/front")
    p.set_defaults(func=_cmd_read)

    p = sub.add_parser("sim", help="the simulated store's cards (simulated readers only)")
    sim = p.add_subparsers(dest="sim_command", required=True)
    q = sim.add_parser("cards", parents=[client], help="the simulated cards and where they lie")
    q.set_defaults(func=_cmd_sim)
    for name, what in (
        ("present", "lay a simulated card on a reader"),
        ("swap", "replace the card on a reader by another"),
    ):
        q = sim.add_parser(name, parents=[client], help=what)
        q.add_argument("reader", help="readers/<id> or <id>")
        q.add_argument("card", help="a card id from `carddaemon sim cards`, e.g. gold")
        q.set_defaults(func=_cmd_sim)
    q = sim.add_parser("remove", parents=[client], help="take the card off a reader")
    q.add_argument("reader", help="readers/<id> or <id>")
    q.set_defaults(func=_cmd_sim)

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
    p.set_defaults(func=_cmd_probe)

    from daemon.journal_cli import add_parser as add_journal_commands  # backup, verify

    add_journal_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command = args.command + (f" {args.sim_command}" if getattr(args, "sim_command", None) else "")
    try:
        code: int = args.func(args)
    except NoDaemon as exc:
        print(f"carddaemon {command}: {exc}", file=sys.stderr)
        return 2
    except CallFailed as exc:
        print(f"carddaemon {command}: {exc}", file=sys.stderr)
        return 1
    except CardDaemonError as exc:
        print(f"carddaemon {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
