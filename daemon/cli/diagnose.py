"""The technician's look at a reader and a card, through the daemon: ``probe``, ``selftest``,
``trace`` and ``card history``. (``dump`` is in :mod:`daemon.cli.dump`.)

The daemon holds the readers and the keys: these commands never open pcscd themselves (the
daemon would be holding the reader) and never see a key, so they cannot show one.
"""

from __future__ import annotations

import argparse
from typing import Any

from daemon import registry
from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect, reader_id
from daemon.cli._output import Output, enum_name, proto_dict, when
from daemon.cli._show import member_lines
from daemon.cli.readers import reader_arg, reader_words

__all__ = ["register"]

#: a probe or dump reads every sector: slower readers (ACR122U, 25 ms per APDU) need longer
_CARD_TIMEOUT_S = 60.0


def _rounds(text: str) -> int:
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number in 0..1000")
    return value


def _ms(duration: Any) -> str:
    return f"{(duration.seconds * 1000 + duration.nanos / 1e6):.1f} ms"


def _member_card(daemon: Any, reader: str) -> Any:
    """The member card on ``reader`` as the daemon decodes it (its keys), or None."""
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
    dumped = daemon.call(
        lambda: stub.DumpCard(pb.DumpCardRequest(reader=reader), timeout=_CARD_TIMEOUT_S),
        words=reader_words(reader),
    )
    return dumped.member_card if dumped.HasField("member_card") else None


def _cmd_probe(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    if args.local or args.backend is not None or args.local_reader is not None:
        from daemon.cli.offline import _cmd_probe as probe_local

        args.backend = args.backend or "pcsc"
        args.reader = args.local_reader or args.reader
        args.rounds = 20 if args.rounds is None else args.rounds
        return probe_local(args)
    if args.reader is None:
        raise UsageError("READER is required: which reader (see `carddaemon readers`)")
    if args.allow_block0_write:
        raise UsageError("--allow-block0-write is for --local; the daemon's --gen2 needs none")
    args.rounds = 0 if args.rounds is None else args.rounds
    if not 0 <= args.rounds <= 1000:
        raise UsageError(f"--rounds {args.rounds}: give 0..1000 round trips")
    out = Output(args.json)
    request = pb.ProbeCardRequest(
        reader=reader_id(args.reader), latency_rounds=args.rounds, gen2_check=args.gen2
    )
    with connect(args) as daemon:
        stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
        probed = daemon.call(
            lambda: stub.ProbeCard(request, timeout=_CARD_TIMEOUT_S),
            words={**reader_words(args.reader), "gen2_check": "--gen2"},
        )
        member = _member_card(daemon, request.reader)
    errors = [f for f in probed.findings if f.severity == pb.FINDING_SEVERITY_ERROR]
    problem = bool(errors or probed.block0_error or probed.atr_problem)
    if out.json:
        data = proto_dict(probed)
        data["member_card"] = proto_dict(member) if member is not None else None
        data["problem"] = problem
        out.document(data)
        return 1 if problem else 0
    card = probed.card
    firmware = probed.firmware or "not reported"
    out.say(f"reader       {probed.reader} ({probed.dialect_title or probed.dialect})")
    out.say(
        f"firmware     {firmware}" + (f" ({probed.firmware_note})" if probed.firmware_note else "")
    )
    out.say(f"card         {card.uid} {card.card_type_name or '(unknown type)'}")
    atr = card.atr.hex(" ").upper()
    out.say(f"ATR          {atr}" + (f" ({probed.atr_standard})" if probed.atr_standard else ""))
    if probed.atr_problem:
        out.say(f"             PROBLEM: {probed.atr_problem}")
    out.say(f"opened with  {probed.key_used or 'no key (block 0 not read)'}")
    if probed.block0:
        out.say(f"block 0      {probed.block0.hex(' ').upper()}")
    if probed.block0_error:
        out.say(f"block 0      PROBLEM: {probed.block0_error}")
    gen2 = enum_name(
        pb.Gen2Verdict, probed.gen2_verdict or pb.GEN2_VERDICT_NOT_RUN, "GEN2_VERDICT_"
    )
    out.say(f"gen2 test    {gen2}" + (f": {probed.gen2_detail}" if probed.gen2_detail else ""))
    if probed.HasField("latency") and probed.latency.rounds:
        lat = probed.latency
        out.say(
            f"latency      {lat.rounds} rounds: p50 {_ms(lat.p50)}, p99 {_ms(lat.p99)}, "
            f"max {_ms(lat.max)}"
        )
    out.table(
        ["SEVERITY", "FINDING", "WHAT"],
        (
            [enum_name(pb.FindingSeverity, f.severity, "FINDING_SEVERITY_"), f.code, f.message]
            for f in probed.findings
        ),
        title="findings:",
        empty="  none: block 0, ATR and card type look like a genuine card",
    )
    if member is None:
        out.say("member card: no (blank, another system's card, or not readable with our keys)")
    else:
        out.say("member card: yes, read with this store's keys")
        for line in member_lines(member):
            out.say(line)
    return 1 if problem else 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    request = pb.TestReaderRequest(reader=reader_id(args.reader), latency_rounds=args.rounds)
    with connect(args) as daemon:
        stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
        tested = daemon.call(
            lambda: stub.TestReader(request, timeout=_CARD_TIMEOUT_S),
            words=reader_words(args.reader),
        )
    if out.json:
        out.document(proto_dict(tested))
        return 0 if tested.passed else 1
    out.table(
        ["CHECK", "RESULT", "DETAIL"],
        ([c.name, "ok" if c.passed else "FAILED", c.detail] for c in tested.checks),
        title=f"{tested.reader}: {'passed' if tested.passed else 'FAILED'}",
    )
    if tested.HasField("latency") and tested.latency.rounds:
        lat = tested.latency
        out.say(
            f"latency: {lat.rounds} rounds, p50 {_ms(lat.p50)}, p99 {_ms(lat.p99)}, "
            f"min {_ms(lat.min)}, max {_ms(lat.max)}"
        )
    return 0 if tested.passed else 1


def _cmd_trace(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    request = pb.GetApduTraceRequest(reader=reader_id(args.reader), limit=args.limit)
    with connect(args) as daemon:
        stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
        trace = daemon.call(
            lambda: stub.GetApduTrace(request, timeout=CALL_TIMEOUT_S),
            words={**reader_words(args.reader), "limit": "--limit"},
        )
    if out.json:
        out.document(proto_dict(trace))
        return 0
    out.table(
        ["#", "TIME", "COMMAND", "RESPONSE", "SW", "TOOK", "ERROR"],
        (
            [
                str(x.index),
                when(x.send_time),
                x.command_hex,
                x.response_hex or "-",
                f"{x.status_word:04X}" if x.status_word else "-",
                _ms(x.duration),
                x.error_reason or "",
            ]
            for x in trace.exchanges
        ),
        title=f"{request.reader}: last {len(trace.exchanges)} of {trace.total} exchanges "
        "(key bytes masked as **)",
        empty="no exchanges yet",
    )
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc
    from daemon.api.v1 import member_card_service_pb2 as mc

    if bool(args.uid) == bool(args.member):
        raise UsageError("give a card UID or --member MEMBER_ID (one of them)")
    out = Output(args.json)
    request = pb.GetCardHistoryRequest(
        uid=args.uid or "", member_id=args.member or "", page_size=args.limit
    )
    with connect(args) as daemon:
        stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
        history = daemon.call(
            lambda: stub.GetCardHistory(request, timeout=CALL_TIMEOUT_S),
            words={"uid": "UID", "member_id": "--member", "page_size": "--limit"},
        )
    if out.json:
        out.document(proto_dict(history))
        return 0
    out.table(
        ["TIME", "WHAT", "EVENT", "UID", "REQUEST ID", "ERROR"],
        (
            [
                when(e.time),
                enum_name(mc.OperationType, e.type, "OPERATION_TYPE_"),
                e.event,
                e.uid,
                e.request_id,
                e.error_reason,
            ]
            for e in history.entries
        ),
        title=f"history of {'card ' + args.uid if args.uid else 'member ' + args.member}, "
        "newest first:",
        empty="nothing in this PC's journal",
    )
    if history.next_page_token:
        out.say(f"(more: raise --limit above {args.limit or 100})")
    return 0


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "probe",
        _cmd_probe,
        help="identify the card on a reader: type, ATR, block 0, clone/magic fingerprints, and "
        "its member record when it is one of ours (exit 1: a problem was found)",
        role="technician",
    )
    p.add_argument(
        "reader",
        metavar="READER",
        nargs="?",
        help="the reader's id as `carddaemon readers` lists it: readers/<id> or <id>, e.g. front",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        metavar="N",
        help="also time N GET DATA round trips, 0..1000 (default: none through the daemon, "
        "20 with --local)",
    )
    p.add_argument(
        "--gen2",
        action="store_true",
        help="also test for a gen2/CUID magic card (writes block 0 back unchanged; "
        "issuing station only)",
    )
    local = p.add_argument_group(
        "without a daemon (the reader directly through pcscd: stop the daemon first)"
    )
    local.add_argument("--local", action="store_true", help="probe the hardware directly")
    local.add_argument(
        "--backend",
        default=None,
        help=f"reader backend: {', '.join(registry.names('readers'))} (implies --local; "
        "default pcsc)",
    )
    local.add_argument(
        "--reader",
        dest="local_reader",
        default=None,
        metavar="NAME",
        help="the PC/SC reader name (implies --local; default: the first one)",
    )
    local.add_argument(
        "--station",
        default="technician",
        choices=("pos", "technician", "issuing"),
        help="the station this PC is (pos, technician, issuing); --gen2 needs issuing",
    )
    local.add_argument(
        "--allow-block0-write",
        action="store_true",
        help="permit the gen2 test to rewrite block 0 with its own bytes (issuing station only)",
    )
    p = add_command(
        sub,
        "selftest",
        _cmd_selftest,
        help="the reader's self-test: firmware, field on/off, latency with a card "
        "(exit 1: a check failed)",
        role="technician",
    )
    reader_arg(p)
    p.add_argument(
        "--rounds",
        type=_rounds,
        default=0,
        metavar="N",
        help="latency round trips with a card present, 0..1000 (default 0: the daemon's 50)",
    )
    p = add_command(
        sub,
        "trace",
        _cmd_trace,
        help="the reader's last APDU exchanges (keys masked)",
        role="technician",
    )
    reader_arg(p)
    p.add_argument(
        "--limit",
        type=_rounds,
        default=0,
        metavar="N",
        help="at most N exchanges, 1..1000 (default 0: the last 100)",
    )
    p = sub.add_parser("card", help="a card in this PC's journal: `card history UID`")
    card = p.add_subparsers(dest="card_command", required=True, metavar="COMMAND")
    q = add_command(
        card,
        "history",
        _cmd_history,
        help="a card's (or member's) operations in this PC's journal, newest first",
        role="technician",
    )
    q.add_argument("uid", metavar="UID", nargs="?", help="the card's UID in hex, e.g. 9E1A4B01")
    q.add_argument("--member", metavar="MEMBER_ID", help="every card of this member instead")
    q.add_argument(
        "--limit", type=_rounds, default=0, metavar="N", help="at most N entries (default 100)"
    )
