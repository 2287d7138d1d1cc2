"""``readers`` (the daemon's readers and the cards on them) and ``read READER`` (the member
card on a reader, as the POS sees it)."""

from __future__ import annotations

import argparse

from daemon import registry
from daemon.cli._args import SubParsers, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect, reader_id
from daemon.cli._output import Output, proto_dict

__all__ = ["register", "yuan"]


def yuan(fen: int) -> str:
    """An amount in fen as store staff read it: ``¥1,234.50``."""
    return f"¥{fen / 100:,.2f}"


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
    if out.json:
        out.document(proto_dict(found))
        return 0
    if not found.readers:
        out.say("no readers attached")
    for reader in found.readers:
        if reader.HasField("card"):
            card = reader.card
            state = f"card {card.uid}" + (
                f" ({card.card_type_name})" if card.card_type_name else ""
            )
        else:
            state = pb.Reader.State.Name(reader.state).removeprefix("STATE_").lower()
        out.say(f"{reader.name:<16} {state:<32} {reader.pcsc_name} [{reader.dialect}]")
    return 0


def _cmd_read(args: argparse.Namespace) -> int:
    from daemon.api.v1 import member_card_service_pb2 as pb
    from daemon.api.v1 import member_card_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    with connect(args) as daemon:
        stub = pb_grpc.MemberCardServiceStub(daemon.channel)
        read = daemon.call(
            lambda: stub.ReadCard(pb.ReadCardRequest(reader=args.reader), timeout=CALL_TIMEOUT_S),
            words={reader_id(args.reader): f"READER {args.reader!r}"},
        )
    if out.json:
        out.document(proto_dict(read))
        return 0
    card = read.card
    until = card.valid_until
    valid = f"{until.year:04d}-{until.month:02d}-{until.day:02d}" if until.year else "no end"
    status = pb.MemberCardStatus.Name(card.status).removeprefix("MEMBER_CARD_STATUS_").lower()
    rate = f"{card.price_rate_bp / 100:g}%"
    out.say(f"card {card.uid}")
    out.say(f"  member       {card.member_id}")
    out.say(f"  tier         {card.tier_name} (pays {rate} of the price)")
    out.say(f"  balance      {yuan(card.balance.amount_fen)}")
    out.say(f"  points       {card.points}")
    out.say(f"  valid until  {valid} ({status})")
    for rid in read.resolved_request_ids:
        out.say(f"  settled      {rid}")
    return 0


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "readers",
        _cmd_readers,
        help="list the daemon's readers and the cards on them",
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
        "read",
        _cmd_read,
        help="read the member card on a reader as the POS does (through the daemon)",
        role="pos",
    )
    p.add_argument("reader", metavar="READER", help="readers/<id> or <id>, e.g. front")
