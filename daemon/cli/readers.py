"""``readers`` (the daemon's readers and the cards on them) and ``read READER`` (the member
card on a reader, as the POS sees it).

``readers`` lists every reader of the config, attached or not. A configured reader that no
PC/SC reader matches is a row ``not connected`` and a line under the table saying which
``match`` pattern it expects; the command then exits 1 (a device found a problem, as
``printers`` does for a printer that needs attention), so a daily check or a script notices an
unplugged reader even when it only looks at the exit status."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from daemon import registry
from daemon.api.v1.reader_service_pb2 import Reader
from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect, reader_id
from daemon.cli._output import Output, enum_name, proto_dict, when
from daemon.cli._show import member_lines

__all__ = ["reader_arg", "reader_words", "register"]


def reader_arg(parser: argparse.ArgumentParser) -> None:
    """The READER argument every card command takes."""
    parser.add_argument(
        "reader",
        metavar="READER",
        help="the reader's id as `carddaemon readers` lists it: readers/<id> or <id>, e.g. front",
    )


def reader_words(name: str) -> dict[str, str]:
    """The daemon's name for the reader -> what the user typed (for error messages)."""
    return {reader_id(name): f"READER {name!r}"}


def _state(reader: Any) -> str:
    return enum_name(Reader.State, reader.state, "STATE_")


def _missing(reader: Any) -> bool:
    """A configured reader that no PC/SC reader matches (unplugged, or a wrong pattern)."""
    return bool(reader.state == Reader.STATE_DETACHED)


def _problems(reader: Any) -> list[str]:
    """What a technician must fix about ``reader``, in plain words (none: it is fine)."""
    if not _missing(reader):
        return []
    expects = f" (expects a reader matching {reader.match!r})" if reader.match else ""
    return [f"not connected{expects}"]


def _readers_table(out: Output, readers: Sequence[Any]) -> None:
    rows = []
    for reader in readers:
        card = reader.card if reader.HasField("card") else None
        rows.append(
            [
                reader.name,
                "not connected" if _missing(reader) else _state(reader),
                card.uid if card else "-",
                (card.card_type_name or "?") if card else "-",
                card.atr.hex(" ").upper() if card else "-",
                reader.dialect or "-",
                reader.firmware or "-",
                reader.pcsc_name or "-",
            ]
        )
    columns = ["READER", "STATE", "UID", "CARD", "ATR", "DIALECT", "FIRMWARE", "PC/SC NAME"]
    out.table(columns, rows, empty="no readers attached")
    for reader in readers:
        for problem in _problems(reader):
            out.say(f"{reader.name}: {problem}")


def _cmd_readers(args: argparse.Namespace) -> int:
    if args.local or args.backend is not None:
        from daemon.cli.offline import readers_local

        return readers_local(args.backend or "pcsc")
    from daemon.api.v1 import reader_service_pb2 as pb
    from daemon.api.v1 import reader_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    with connect(args) as daemon:
        stub = pb_grpc.ReaderServiceStub(daemon.channel)
        found = daemon.call(
            lambda: stub.ListReaders(pb.ListReadersRequest(), timeout=CALL_TIMEOUT_S)
        )
    problems = {reader.name: _problems(reader) for reader in found.readers}
    if out.json:
        data = proto_dict(found)
        for item in data.get("readers", []):
            item["problems"] = problems[item["name"]]
        out.document(data)
    else:
        _readers_table(out, found.readers)
    return 1 if any(problems.values()) else 0


def _event_text(event: Any) -> str:
    kind = event.WhichOneof("event")
    detail: str
    if kind in ("snapshot", "reader_attached"):
        reader = getattr(event, kind).reader
        card = f" card {reader.card.uid}" if reader.HasField("card") else ""
        label = "now" if kind == "snapshot" else "attached"
        detail = f"{reader.name} {label}: {_state(reader)}{card} [{reader.dialect}]"
    elif kind == "card_present":
        card = event.card_present.card
        detail = (
            f"{event.card_present.reader} card present: {card.uid} "
            f"({card.card_type_name or 'unknown card'}) ATR {card.atr.hex(' ').upper()}"
        )
    elif kind == "card_removed":
        detail = f"{event.card_removed.reader} card removed: {event.card_removed.uid}"
    elif kind == "reader_detached":
        detail = f"{event.reader_detached.reader} detached"
    elif kind == "service_lost":
        detail = f"PC/SC service lost: {event.service_lost.detail}"
    elif kind == "service_restored":
        detail = "PC/SC service restored"
    else:
        detail = str(kind)
    header = event.header
    gap = f" ({header.dropped_before} events lost before this)" if header.dropped_before else ""
    return f"{when(header.publish_time)}  #{header.sequence}  {detail}{gap}"


def _cmd_watch(args: argparse.Namespace) -> int:
    from daemon.api.v1 import reader_service_pb2 as pb
    from daemon.api.v1 import reader_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    request = pb.WatchReadersRequest(readers=[reader_id(r) for r in args.reader])
    words: dict[str, str] = {}
    for name in args.reader:
        words.update(reader_words(name))
    with connect(args) as daemon:
        stub = pb_grpc.ReaderServiceStub(daemon.channel)
        if args.reader:  # the stream filters silently: a typo would show nothing, forever
            found = daemon.call(
                lambda: stub.ListReaders(pb.ListReadersRequest(), timeout=CALL_TIMEOUT_S)
            )
            names = [r.name for r in found.readers]
            for name in args.reader:
                if reader_id(name) not in names:
                    raise UsageError(
                        f"READER {name!r}: no such reader on this PC "
                        f"(readers: {', '.join(names) or 'none attached'})"
                    )
        events = daemon.stream(lambda: stub.WatchReaders(request), words=words)
        return out.follow(events, _event_text, args.count)


def _cmd_read(args: argparse.Namespace) -> int:
    from daemon.api.v1 import member_card_service_pb2 as pb
    from daemon.api.v1 import member_card_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    with connect(args) as daemon:
        stub = pb_grpc.MemberCardServiceStub(daemon.channel)
        read = daemon.call(
            lambda: stub.ReadCard(pb.ReadCardRequest(reader=args.reader), timeout=CALL_TIMEOUT_S),
            words=reader_words(args.reader),
        )
    if out.json:
        out.document(proto_dict(read))
        return 0
    out.say(f"card {read.card.uid}")
    for line in member_lines(read.card):
        out.say(line)
    for rid in read.resolved_request_ids:
        out.say(f"  settled      {rid}")
    return 0


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "readers",
        _cmd_readers,
        help="list the daemon's readers and the cards on them; a configured reader that is "
        "not connected is listed with the pattern it expects (exit 1)",
        role="technician",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="ask the reader backend directly instead of the daemon (names only)",
    )
    backends = ", ".join(registry.names("readers"))
    p.add_argument("--backend", default=None, help=f"reader backend: {backends}; implies --local")
    p = add_command(
        sub,
        "watch",
        _cmd_watch,
        help="live reader events: attached, detached, card present (UID, ATR), card removed",
        role="technician",
    )
    p.add_argument(
        "reader",
        metavar="READER",
        nargs="*",
        help="only these readers (readers/<id> or <id>); none: every reader",
    )
    p.add_argument(
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="stop after N events (the first are the readers as they are now); 0: until Ctrl-C",
    )
    p = add_command(
        sub,
        "read",
        _cmd_read,
        help="read the member card on a reader as the POS does (through the daemon)",
        role="pos",
    )
    reader_arg(p)
