"""``day show|close|export|print``: the daily settlement (日结) of this store PC.

Every subcommand calls the POS socket (closing and printing are POS calls; ``--socket`` can
name the technician socket for ``show`` and ``export``). ``--day YYYY-MM-DD`` picks the
business day; without it, the day operations count in now. Exit 1 when the daemon refuses (a
day closed before: ``DAY_ALREADY_CLOSED``), 2 for a bad ``--day`` or ``--printer``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect
from daemon.cli._output import Output, proto_dict, when, yuan

__all__ = ["register"]

#: (label, field, money?) in the order the store manager reads them
_LINES = (
    ("top-ups", "top_up_count", False),
    ("  cash taken", "top_up_cash", True),
    ("  bonus granted", "top_up_bonus", True),
    ("payments", "payment_count", False),
    ("  paid from cards", "payment_amount", True),
    ("refunds", "refund_count", False),
    ("  put back on cards", "refund_amount", True),
    ("  points taken back", "refund_points", False),
    ("cancelled top-ups", "cancelled_top_up_count", False),
    ("  cash handed back", "cancelled_top_up_cash", True),
    ("  bonus taken back", "cancelled_top_up_bonus", True),
    ("points earned", "points_earned", False),
    ("points redeemed", "points_redeemed", False),
    ("cards issued", "cards_issued", False),
    ("  opening balances", "issued_balance", True),
    ("cards replaced", "cards_replaced", False),
    ("unconfirmed (settled)", "unconfirmed_count", False),
    ("pending (present cards)", "pending_count", False),
    ("net cash", "net_cash", True),
    ("card balances changed", "stored_value_change", True),
)


def _business_day(args: argparse.Namespace) -> Any:
    from daemon.api.v1 import common_pb2

    if args.day is None:
        return None
    try:
        day = dt.date.fromisoformat(args.day)
    except ValueError:
        raise UsageError(f"--day {args.day!r}: not a date (YYYY-MM-DD, e.g. 2026-11-23)") from None
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def _show(out: Output, settlement: Any) -> None:
    day = settlement.business_day
    state = f"closed {when(settlement.close_time)}" if settlement.closed else "open"
    out.say(
        f"business day {day.year:04d}-{day.month:02d}-{day.day:02d} at {settlement.pc} "
        f"(from {settlement.day_cutoff_hour:02d}:00): {state}"
    )
    rows = []
    for label, name, money in _LINES:
        value = getattr(settlement, name)
        rows.append([label, yuan(value.amount_fen) if money else str(value)])
    out.table(["", ""], rows, empty="")


def _run(args: argparse.Namespace) -> int:
    from daemon.api.v1 import member_card_service_pb2 as pb
    from daemon.api.v1 import member_card_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    day = _business_day(args)
    words = {"business_day": f"--day {args.day!r}"} if args.day else {}
    with connect(args) as daemon:
        stub = pb_grpc.MemberCardServiceStub(daemon.channel)
        if args.day_command == "show":
            got: Any = daemon.call(
                lambda: stub.GetDaySettlement(
                    pb.GetDaySettlementRequest(business_day=day), timeout=CALL_TIMEOUT_S
                ),
                words=words,
            )
        elif args.day_command == "close":
            got = daemon.call(
                lambda: stub.CloseDay(pb.CloseDayRequest(business_day=day), timeout=CALL_TIMEOUT_S),
                words=words,
            )
        elif args.day_command == "export":
            got = daemon.call(
                lambda: stub.ExportDaySettlement(
                    pb.ExportDaySettlementRequest(business_day=day), timeout=CALL_TIMEOUT_S
                ),
                words=words,
            )
        else:
            printer = args.printer if "/" in args.printer else f"printers/{args.printer}"
            words[printer] = f"--printer {args.printer!r}"
            got = daemon.call(
                lambda: stub.PrintDaySettlement(
                    pb.PrintDaySettlementRequest(printer=printer, business_day=day),
                    timeout=CALL_TIMEOUT_S,
                ),
                words=words,
            )
    if out.json:
        out.document(proto_dict(got))
        return 0
    if args.day_command == "export":
        if args.output is None:
            out.say(got.csv.rstrip("\r\n"))
        else:
            try:
                args.output.write_text(got.csv, encoding="utf-8", newline="")
            except OSError as exc:
                raise UsageError(f"--output {str(args.output)!r}: {exc.strerror}") from None
            out.say(f"wrote {args.output}")
        return 0
    if args.day_command == "print":
        out.say(f"settlement slip queued as {got.print_job}")
        return 0
    _show(out, got.settlement)
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("day", help="the daily settlement (日结): show, close, export, print")
    day = p.add_subparsers(dest="day_command", required=True, metavar="COMMAND")
    for name, what in (
        ("show", "the settlement of a business day (open: as of now; closed: as frozen)"),
        ("close", "close a business day: its settlement never changes again"),
        ("export", "the settlement of a business day as CSV"),
        ("print", "print the settlement slip on a receipt printer"),
    ):
        q = add_command(day, name, _run, help=what, role="pos")
        q.add_argument(
            "--day",
            default=None,
            metavar="YYYY-MM-DD",
            help="the business day (default: the day operations count in now)",
        )
        if name == "export":
            q.add_argument(
                "--output",
                type=Path,
                default=None,
                metavar="FILE",
                help="write the CSV to FILE (default: print it)",
            )
        if name == "print":
            q.add_argument(
                "--printer",
                default="receipt",
                help="printers/<id> or <id> of the receipt printer (default: receipt)",
            )
