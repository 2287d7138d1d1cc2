"""The issuing station's commands, over the issuer socket: ``tiers``, ``issue``, ``erase``,
``replace`` and ``hotlist add|remove|list``. (``issue-batch`` is :mod:`daemon.cli.batch`.)

Every card-writing command sends a request id that is the same when the same command is typed
again (``issue:<member>``, ``replace:<old uid>``): after an interruption (``WRITE_UNCONFIRMED``)
running the very same command again finishes the job on the same card, never a second card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import uuid
from typing import Any, Final

from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, Daemon, connect, reader_id
from daemon.cli._output import Output, enum_name, proto_dict, when, yuan
from daemon.cli.readers import reader_arg, reader_words

__all__ = ["parse_date", "parse_yuan", "register", "resolve_tier", "tiers"]

_CARD_TIMEOUT_S: Final = 60.0
_YUAN: Final = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")
_REASONS: Final = ("lost", "stolen", "fraud", "damaged", "other")


def parse_yuan(text: str, flag: str) -> int:
    """``"100"`` / ``"99.5"`` / ``"0.01"`` yuan -> fen; anything else names ``flag``."""
    match = _YUAN.match(text.strip().removeprefix("¥"))
    if match is None:
        raise UsageError(f"{flag} {text!r}: give yuan, e.g. 100 or 99.50 (at most 2 decimals)")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def parse_date(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give a date as YYYY-MM-DD, e.g. 2028-12-31") from None


def tiers(daemon: Daemon) -> Any:
    """The store's tiers and balance cap from the daemon's config."""
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    stub = pb_grpc.IssuingServiceStub(daemon.channel)
    return daemon.call(lambda: stub.ListTiers(pb.ListTiersRequest(), timeout=CALL_TIMEOUT_S))


def resolve_tier(listed: Any, text: str, flag: str) -> int:
    """A tier given by its name (``金卡``) or its index (``2``) -> the index."""
    wanted = text.strip()
    for tier in listed.tiers:
        if wanted in (tier.name, str(tier.index)):
            return int(tier.index)
    known = ", ".join(f"{t.index} {t.name}" for t in listed.tiers)
    raise UsageError(f"{flag} {text!r}: not a tier of this store (tiers: {known})")


def _cmd_tiers(args: argparse.Namespace) -> int:
    out = Output(args.json)
    with connect(args) as daemon:
        listed = tiers(daemon)
    if out.json:
        out.document(proto_dict(listed))
        return 0
    out.table(
        ["#", "TIER", "PAYS", "POINTS PER ¥100"],
        (
            [str(t.index), t.name, f"{t.price_rate_bp / 100:g}%", str(t.points_per_100_yuan)]
            for t in listed.tiers
        ),
        title=f"tiers of this store (a card holds at most {yuan(listed.balance_cap.amount_fen)}):",
    )
    return 0


def _issued(out: Output, card: Any, what: str) -> None:
    again = " (already done by an earlier run: nothing written twice)" if card.replayed else ""
    out.say(f"{what} card {card.uid} for member {card.member_id}{again}")
    out.say(f"  balance      {yuan(card.balance.amount_fen)}")
    out.say(f"  points       {card.points}")
    out.say(f"  request id   {card.request_id}")


def _cmd_issue(args: argparse.Namespace) -> int:
    from daemon.api.v1 import common_pb2
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    balance = parse_yuan(args.balance, "--balance") if args.balance else 0
    until = parse_date(args.valid_until, "--valid-until") if args.valid_until else None
    with connect(args) as daemon:
        tier = resolve_tier(tiers(daemon), args.tier, "--tier")
        spec = pb.CardSpec(
            member_id=args.member,
            tier=tier,
            opening_balance=common_pb2.Money(currency_code="CNY", amount_fen=balance),
            opening_points=args.points,
        )
        if until is not None:
            spec.valid_until.CopyFrom(
                common_pb2.Date(year=until.year, month=until.month, day=until.day)
            )
        request = pb.IssueCardRequest(
            reader=reader_id(args.reader),
            request_id=args.request_id or f"issue:{args.member}",
            spec=spec,
            expected_uid=args.uid or "",
        )
        stub = pb_grpc.IssuingServiceStub(daemon.channel)
        issued = daemon.call(
            lambda: stub.IssueCard(request, timeout=_CARD_TIMEOUT_S),
            words={
                **reader_words(args.reader),
                "spec.member_id": "--member",
                "spec.opening_balance": "--balance",
                "spec.opening_points": "--points",
                "spec.valid_until": "--valid-until",
                "spec.tier": "--tier",
                "request_id": "--request-id",
                "expected_uid": "--uid",
            },
        )
    if out.json:
        out.document(proto_dict(issued))
    else:
        _issued(out, issued.card, "issued")
    return 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    request = pb.EraseCardRequest(
        reader=reader_id(args.reader),
        request_id=args.request_id or f"erase:{uuid.uuid4().hex[:12]}",
        expected_uid=args.uid or "",
        force=args.force,
    )
    with connect(args) as daemon:
        stub = pb_grpc.IssuingServiceStub(daemon.channel)
        erased = daemon.call(
            lambda: stub.EraseCard(request, timeout=_CARD_TIMEOUT_S),
            words={**reader_words(args.reader), "expected_uid": "--uid", "force": "--force"},
        )
    if out.json:
        out.document(proto_dict(erased))
    else:
        out.say(f"erased card {erased.uid}: transport keys, no member data")
    return 0


def _cmd_replace(args: argparse.Namespace) -> int:
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    old = args.old_uid.strip().upper()
    request = pb.ReplaceCardRequest(
        reader=reader_id(args.reader),
        request_id=args.request_id or f"replace:{old}",
        old_uid=old,
        expected_uid=args.uid or "",
    )
    with connect(args) as daemon:
        stub = pb_grpc.IssuingServiceStub(daemon.channel)
        replaced = daemon.call(
            lambda: stub.ReplaceCard(request, timeout=_CARD_TIMEOUT_S),
            words={**reader_words(args.reader), "old_uid": "OLD_UID", "expected_uid": "--uid"},
        )
    if out.json:
        out.document(proto_dict(replaced))
    else:
        _issued(out, replaced.card, "replacement")
        out.say(f"  old card     {replaced.old_uid} is on the hotlist (replaced)")
    return 0


def _cmd_hotlist(args: argparse.Namespace) -> int:
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    words = {"uid": "UID", "note": "--note", "reason": "--reason", "page_size": "--limit"}
    with connect(args) as daemon:
        stub = pb_grpc.IssuingServiceStub(daemon.channel)
        if args.hotlist_command == "add":
            reason = pb.HotlistReason.Value(f"HOTLIST_REASON_{args.reason.upper()}")
            add = pb.AddToHotlistRequest(uid=args.uid, reason=reason, note=args.note)
            added = daemon.call(lambda: stub.AddToHotlist(add, timeout=CALL_TIMEOUT_S), words=words)
            if out.json:
                out.document(proto_dict(added))
            else:
                out.say(f"card {added.entry.uid} is on the hotlist ({args.reason}): refused")
            return 0
        if args.hotlist_command == "remove":
            drop = pb.RemoveFromHotlistRequest(uid=args.uid, note=args.note)
            gone = daemon.call(
                lambda: stub.RemoveFromHotlist(drop, timeout=CALL_TIMEOUT_S), words=words
            )
            if out.json:
                out.document(proto_dict(gone))
            elif gone.removed:
                out.say(f"card {args.uid.upper()} removed from the hotlist")
            else:
                out.say(f"card {args.uid.upper()} was not on the hotlist (nothing changed)")
            return 0
        listing = pb.ListHotlistRequest(page_size=args.limit)
        listed = daemon.call(lambda: stub.ListHotlist(listing, timeout=CALL_TIMEOUT_S), words=words)
    if out.json:
        out.document(proto_dict(listed))
        return 0
    out.table(
        ["UID", "REASON", "MEMBER", "SINCE", "NOTE"],
        (
            [
                e.uid,
                enum_name(pb.HotlistReason, e.reason, "HOTLIST_REASON_"),
                e.member_id or "-",
                when(e.create_time),
                e.note,
            ]
            for e in listed.entries
        ),
        title="hotlist, newest first:",
        empty="the hotlist is empty",
    )
    return 0


def _writing_options(p: argparse.ArgumentParser, default_id: str, *, uid: bool = False) -> None:
    p.add_argument(
        "--uid",
        metavar="UID",
        required=uid,
        help="the card's UID (hex), as `carddaemon readers` shows it: "
        + ("required, so only the card meant is erased" if uid else "refuse any other card"),
    )
    p.add_argument(
        "--request-id",
        metavar="ID",
        help=f"the idempotency key (default {default_id}: the same command again after an "
        "interruption finishes the same card)",
    )


def register(sub: SubParsers) -> None:
    add_command(
        sub, "tiers", _cmd_tiers, help="the store's member tiers and card cap", role="issuer"
    )
    p = add_command(
        sub,
        "issue",
        _cmd_issue,
        help="personalise the blank card on a reader for a member (issuing station)",
        role="issuer",
    )
    reader_arg(p)
    p.add_argument("--member", required=True, metavar="MEMBER_ID", help="the member ID (1..16)")
    p.add_argument(
        "--tier",
        required=True,
        metavar="TIER",
        help="the tier's name or number as `carddaemon tiers` lists them, e.g. 金卡 or 2",
    )
    p.add_argument("--valid-until", metavar="YYYY-MM-DD", help="last valid day (default: none)")
    p.add_argument("--balance", metavar="YUAN", help="opening balance in yuan (default 0)")
    p.add_argument("--points", type=int, default=0, metavar="N", help="opening points (default 0)")
    _writing_options(p, "issue:<member>")
    p = add_command(
        sub,
        "erase",
        _cmd_erase,
        help="return the card on a reader to transport state (no member data)",
        role="issuer",
    )
    reader_arg(p)
    p.add_argument(
        "--force", action="store_true", help="erase even though it still holds value or points"
    )
    _writing_options(p, "a new one each time", uid=True)
    p = add_command(
        sub,
        "replace",
        _cmd_replace,
        help="补卡: issue the blank card on a reader to the member of a lost card, with its "
        "balance and points; the old card goes on the hotlist",
        role="issuer",
    )
    reader_arg(p)
    p.add_argument("old_uid", metavar="OLD_UID", help="the lost card's UID (hex)")
    _writing_options(p, "replace:<OLD_UID>")
    p = sub.add_parser("hotlist", help="blocked cards: hotlist add|remove|list")
    hot = p.add_subparsers(dest="hotlist_command", required=True, metavar="COMMAND")
    q = add_command(hot, "add", _cmd_hotlist, help="block a card at this store", role="issuer")
    q.add_argument("uid", metavar="UID", help="the card's UID (hex)")
    q.add_argument(
        "--reason",
        required=True,
        choices=_REASONS,
        help=f"why: {', '.join(_REASONS)}",
    )
    q.add_argument("--note", default="", help="what happened (kept in the audit log)")
    q = add_command(hot, "remove", _cmd_hotlist, help="unblock a card", role="issuer")
    q.add_argument("uid", metavar="UID", help="the card's UID (hex)")
    q.add_argument("--note", required=True, help="why it is unblocked (kept in the audit log)")
    q = add_command(
        hot, "list", _cmd_hotlist, help="the blocked cards, newest first", role="issuer"
    )
    q.add_argument(
        "--limit", type=int, default=0, metavar="N", help="at most N entries, 1..500 (default 100)"
    )
