"""``audit`` (this PC's audit log, filtered) and ``dispute`` (a member's complaint about a
charge, answered in one command: every value change of their cards in a day, with what is
still unsettled).

Both read the daemon's journal over the technician socket; neither changes anything. Times are
the PC's local time, as the receipts print them.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

from daemon.cli._args import Exit, SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, Daemon, connect
from daemon.cli._output import Output, enum_name, proto_dict, when, yuan

__all__ = ["register"]

_PAGE: Final = 500
#: history entries whose outcome is not known yet: the dispute cannot be closed on them
_UNSETTLED: Final = frozenset({"PENDING", "CLAIMED"})


def _moment(flag: str, text: str) -> dt.datetime:
    """``2026-12-03``, ``2026-12-03 12:30`` or ISO 8601 (local time unless an offset is given)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: not a date or time (e.g. 2026-12-03 or '2026-12-03 12:30')"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _stamp(moment: dt.datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    out = Timestamp()
    out.FromNanoseconds(int(moment.timestamp() * 1e9))
    return out


def _window(args: argparse.Namespace) -> tuple[dt.datetime | None, dt.datetime | None]:
    since = _moment("--since", args.since) if args.since else None
    until = _moment("--until", args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--until {args.until!r} is not after --since {args.since!r}")
    return since, until


def _detail(detail: dict[str, Any]) -> str:
    """An audit row's detail on one line, ``amount=1200 op=debit``."""
    parts = []
    for key in sorted(detail):
        value = detail[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _audit_rows(daemon: Daemon, request: Any, limit: int) -> Iterator[Any]:
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
    shown = 0
    while True:
        request.page_size = min(_PAGE, limit - shown) if limit else _PAGE
        page = daemon.call(
            lambda: stub.ListAuditEvents(request, timeout=CALL_TIMEOUT_S),
            words={"uid": "--card", "member_id": "--member", "events": "--kind"},
        )
        for event in page.events:
            yield event
            shown += 1
        if not page.next_page_token or (limit and shown >= limit):
            return
        request.page_token = page.next_page_token


def _cmd_audit(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb

    if args.limit < 0:
        raise UsageError(f"--limit {args.limit}: must be 0 (everything) or more")
    since, until = _window(args)
    request = pb.ListAuditEventsRequest(
        uid=args.card or "", member_id=args.member or "", events=args.kind or []
    )
    if since is not None:
        request.start_time.CopyFrom(_stamp(since))
    if until is not None:
        request.end_time.CopyFrom(_stamp(until))
    out = Output(args.json)
    with connect(args) as daemon:
        events = list(_audit_rows(daemon, request, args.limit))
    if out.json:
        out.document({"events": [proto_dict(e) for e in events]})
        return Exit.OK
    rows = [
        [when(e.time), str(e.sequence), e.event, e.uid or "-", e.member_id or "-",
         e.request_id or "-", _detail(dict(e.detail.items()))]
        for e in events
    ]  # fmt: skip
    columns = ["TIME", "#", "EVENT", "CARD", "MEMBER", "REQUEST", "DETAIL"]
    out.table(columns, rows, empty="no audit events match")
    return Exit.OK


# --- dispute --------------------------------------------------------------------------------------


def _day(args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    if args.day:
        try:
            day = dt.date.fromisoformat(args.day)
        except ValueError:
            raise UsageError(f"--day {args.day!r}: not a date (e.g. 2026-12-03)") from None
    else:
        day = dt.date.today()
    start = dt.datetime.combine(day, dt.time()).astimezone()
    return start, start + dt.timedelta(days=1)


def _history(daemon: Daemon, request: Any) -> list[Any]:
    from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc

    stub = pb_grpc.DiagnosticsServiceStub(daemon.channel)
    entries: list[Any] = []
    request.page_size = _PAGE
    while True:
        page = daemon.call(
            lambda: stub.GetCardHistory(request, timeout=CALL_TIMEOUT_S),
            words={"uid": "--card", "member_id": "--member"},
        )
        entries.extend(page.entries)
        if not page.next_page_token:
            return entries
        request.page_token = page.next_page_token


def _operation(entry: Any) -> str:
    from daemon.api.v1 import member_card_service_pb2 as mc

    if entry.type:
        return enum_name(mc.OperationType, entry.type, "OPERATION_TYPE_")
    return str(entry.event).replace("_", " ")


def _dispute_row(entry: Any) -> list[str]:
    has = entry.HasField("result")
    result = entry.result
    amount = before_after = points = "-"
    if has:
        amount = yuan(result.amount.amount_fen)
        if result.bonus.amount_fen:
            amount += f" +{yuan(result.bonus.amount_fen)} bonus"
        before_after = (
            f"{yuan(result.balance_before.amount_fen)} → {yuan(result.balance_after.amount_fen)}"
        )
        points = f"{result.points_delta:+d}" if result.points_delta else "0"
    state = entry.event if entry.event in ("COMMITTED", "PENDING", "ABORTED", "CLAIMED") else ""
    if entry.event == "value_change":
        state = "committed"
    outcome = (state or entry.event).lower().replace("aborted", "not applied")
    if entry.error_reason:
        outcome += f" ({entry.error_reason})"
    return [when(entry.time), entry.uid, _operation(entry), entry.request_id or "-", amount,
            before_after, points, outcome]  # fmt: skip


def _cmd_dispute(args: argparse.Namespace) -> int:
    from daemon.api.v1 import diagnostics_service_pb2 as pb

    if bool(args.card) == bool(args.member):
        raise UsageError("give the member's card (--card UID) or the member (--member ID)")
    start, end = _day(args)
    request = pb.GetCardHistoryRequest(uid=args.card or "", member_id=args.member or "")
    request.start_time.CopyFrom(_stamp(start))
    request.end_time.CopyFrom(_stamp(end))
    out = Output(args.json)
    with connect(args) as daemon:
        entries = sorted(_history(daemon, request), key=lambda e: e.time.ToNanoseconds())
    money = [e for e in entries if e.HasField("result")]
    unsettled = [e for e in entries if e.event in _UNSETTLED]
    from daemon.api.v1 import member_card_service_pb2 as mc

    paid = sum(e.result.amount.amount_fen for e in money if e.type == mc.OPERATION_TYPE_DEBIT)
    refunded = sum(e.result.amount.amount_fen for e in money if e.type == mc.OPERATION_TYPE_REFUND)
    summary = {
        "day": start.date().isoformat(),
        "who": f"card {args.card}" if args.card else f"member {args.member}",
        "value_changes": len(money),
        "paid_fen": paid,
        "refunded_fen": refunded,
        "unsettled": [e.request_id for e in unsettled],
    }
    if out.json:
        out.document({**summary, "entries": [proto_dict(e) for e in entries]})
    else:
        out.say(f"{summary['who']}, {summary['day']} (this PC's journal, local time)")
        columns = ["TIME", "CARD", "OPERATION", "REQUEST", "AMOUNT", "BALANCE", "POINTS",
                   "OUTCOME"]  # fmt: skip
        out.table(columns, [_dispute_row(e) for e in entries], empty="nothing that day")
        out.say(
            f"{len(money)} value change(s); paid from the card: {yuan(paid)}, "
            f"refunded to it: {yuan(refunded)}"
        )
        if unsettled:
            ids = ", ".join(e.request_id for e in unsettled)
            out.say(
                f"still unsettled: {ids} — present the card at a till (or ask "
                "GetOperation) to settle, then answer the member"
            )
    return Exit.PROBLEM if unsettled else Exit.OK


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "audit",
        _cmd_audit,
        help="this PC's audit log: value changes, issuing, hotlist, key uses, refusals",
        role="technician",
    )
    p.add_argument("--card", metavar="UID", help="only events about this card (UID in hex)")
    p.add_argument("--member", metavar="ID", help="only events about this member ID")
    p.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="only this event kind (repeatable), e.g. value_change, key_use, fraud, hotlist, "
        "permission_refused",
    )
    p.add_argument("--since", metavar="WHEN", help="from this local time, e.g. '2026-12-03 12:00'")
    p.add_argument("--until", metavar="WHEN", help="before this local time")
    p.add_argument(
        "--limit", type=int, default=0, metavar="N", help="at most N events (0: every one)"
    )
    p = add_command(
        sub,
        "dispute",
        _cmd_dispute,
        help="a member's complaint about a charge: every value change of the day, and what "
        "is still unsettled (exit 1 while something is)",
        role="technician",
    )
    p.add_argument("--card", metavar="UID", help="the member's card (UID in hex)")
    p.add_argument("--member", metavar="ID", help="the member: every card bound to them")
    p.add_argument(
        "--day", metavar="YYYY-MM-DD", help="the day of the complaint (default: today, local)"
    )
