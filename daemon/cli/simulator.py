"""``sim cards|present|swap|remove``: the simulated store's cards (a daemon on the simulated
backend only; any role's socket)."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.cli._args import SubParsers, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect, reader_id
from daemon.cli._output import Output, proto_dict

__all__ = ["register"]


def _where(card: Any) -> str:
    return card.reader or "(in the drawer)"


def _cmd_cards(args: argparse.Namespace) -> int:
    from daemon.api.v1 import simulator_service_pb2 as pb
    from daemon.api.v1 import simulator_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    with connect(args) as daemon:
        stub = pb_grpc.SimulatorServiceStub(daemon.channel)
        listed = daemon.call(
            lambda: stub.ListSimulatedCards(pb.ListSimulatedCardsRequest(), timeout=CALL_TIMEOUT_S)
        )
    if out.json:
        out.document(proto_dict(listed))
        return 0
    for card in listed.cards:
        out.say(f"{card.card_id:<10} {card.uid:<16} {_where(card):<16} {card.description}")
    return 0


def _cmd_lay(args: argparse.Namespace) -> int:
    from daemon.api.v1 import simulator_service_pb2 as pb
    from daemon.api.v1 import simulator_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    words = {
        reader_id(args.reader): f"READER {args.reader!r}",
        f"cards/{args.card}": f"CARD {args.card!r}",
    }
    with connect(args) as daemon:
        stub = pb_grpc.SimulatorServiceStub(daemon.channel)
        if args.sim_command == "present":
            request = pb.PresentCardRequest(reader=args.reader, card_id=args.card)
            done = daemon.call(
                lambda: stub.PresentCard(request, timeout=CALL_TIMEOUT_S), words=words
            )
            if out.json:
                out.document(proto_dict(done))
            else:
                out.say(f"presented {done.card.card_id} ({done.card.uid}) on {done.card.reader}")
            return 0
        swap = pb.SwapCardRequest(reader=args.reader, card_id=args.card)
        swapped = daemon.call(lambda: stub.SwapCard(swap, timeout=CALL_TIMEOUT_S), words=words)
    if out.json:
        out.document(proto_dict(swapped))
        return 0
    if swapped.HasField("removed"):
        out.say(f"removed {swapped.removed.card_id or swapped.removed.uid}")
    out.say(f"presented {swapped.presented.card_id} on {swapped.presented.reader}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from daemon.api.v1 import simulator_service_pb2 as pb
    from daemon.api.v1 import simulator_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    with connect(args) as daemon:
        stub = pb_grpc.SimulatorServiceStub(daemon.channel)
        removal = pb.RemoveCardRequest(reader=args.reader)
        gone = daemon.call(
            lambda: stub.RemoveCard(removal, timeout=CALL_TIMEOUT_S),
            words={reader_id(args.reader): f"READER {args.reader!r}"},
        )
    if out.json:
        out.document(proto_dict(gone))
    elif gone.HasField("card"):
        out.say(f"removed {gone.card.card_id or gone.card.uid} from {args.reader}")
    else:
        out.say(f"no card on {args.reader}")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("sim", help="the simulated store's cards (simulated readers only)")
    sim = p.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    add_command(
        sim, "cards", _cmd_cards, help="the simulated cards and where they lie", role="technician"
    )
    for name, what in (
        ("present", "lay a simulated card on a reader"),
        ("swap", "replace the card on a reader by another"),
    ):
        q = add_command(sim, name, _cmd_lay, help=what, role="technician")
        q.add_argument("reader", metavar="READER", help="readers/<id> or <id>, e.g. front")
        q.add_argument("card", metavar="CARD", help="a card id from `carddaemon sim cards`")
    q = add_command(
        sim, "remove", _cmd_remove, help="take the card off a reader", role="technician"
    )
    q.add_argument("reader", metavar="READER", help="readers/<id> or <id>, e.g. front")
