"""``issue-batch FILE --reader READER``: issue a CSV of members card after card, restartable.

The file (UTF-8, Excel's BOM accepted; a header row, only ``member_id`` required)::

    member_id,tier,valid_until,balance_yuan,points
    8800000001,金卡,2028-12-31,100.00,0

``tier`` is a name or number of the daemon's tiers (``carddaemon tiers``). The whole file is
checked before the first card: every bad field is listed (line, column, why) and nothing is
issued (exit 2). The daemon issues each card under the request id ``<batch id>:<row>``; the
batch id comes from the file's content, so running the same command again after a crash, a
``kill -9`` or a closed laptop skips the cards already issued (the daemon's journal says so)
and goes on: every card is issued exactly once. The per-card result file
(``FILE.results.csv`` unless ``--results``) is rewritten atomically after every card.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from daemon.cli._args import CliError, Problem, SubParsers, UsageError, add_command
from daemon.cli._client import Daemon, connect, reader_id
from daemon.cli._output import Output, enum_name, proto_dict
from daemon.cli.issuing import parse_date, parse_yuan, resolve_tier, tiers
from daemon.cli.readers import reader_words

__all__ = ["register"]

COLUMNS: Final = ("member_id", "tier", "valid_until", "balance_yuan", "points")
RESULT_COLUMNS: Final = ("line", "member_id", "uid", "status", "reason")
_MAX_FILE_BYTES: Final = 4 * 1024 * 1024
_MAX_SHOWN: Final = 20


@dataclass(frozen=True)
class Row:
    line: int
    member_id: str
    tier: int
    valid_until: Any  # dt.date | None
    balance_fen: int
    points: int


def _read(path: Path) -> list[list[str]]:
    try:
        if not path.is_file():
            raise UsageError(f"FILE {str(path)!r}: no such file (a CSV with a member_id column)")
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise UsageError(f"FILE {str(path)!r}: larger than {_MAX_FILE_BYTES} bytes")
        text = path.read_bytes().decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"FILE {str(path)!r}: not UTF-8 at byte {exc.start} (save it as 'CSV UTF-8')"
        ) from None
    except OSError as exc:
        raise UsageError(f"FILE {str(path)!r}: {exc.strerror or exc}") from None
    return list(csv.reader(io.StringIO(text, newline="")))


def load(path: Path, listed: Any) -> list[Row]:
    """Every row checked; :class:`UsageError` listing every bad field."""
    records = _read(path)
    header = [c.strip().lower() for c in records[0]] if records else []
    if "member_id" not in header:
        raise UsageError(f"FILE {str(path)!r} line 1: a header row with a member_id column")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise UsageError(
            f"FILE {str(path)!r} line 1: unknown column(s) {', '.join(unknown)} "
            f"(columns: {', '.join(COLUMNS)})"
        )
    cap = listed.balance_cap.amount_fen
    rows: list[Row] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, values in enumerate(records[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"line {line}: {len(values)} fields, the header has {len(header)}")
            continue
        cell = dict(zip(header, (v.strip() for v in values), strict=True))
        before = len(problems)

        member = cell["member_id"]
        if not 1 <= len(member) <= 16 or not member.isascii() or not member.isprintable():
            problems.append(f"line {line} member_id: {member!r} is not 1..16 printable ASCII")
        elif member in seen:
            problems.append(f"line {line} member_id: {member} repeats line {seen[member]}")
        seen.setdefault(member, line)
        tier = _field(
            cell.get("tier", ""), line, lambda t: resolve_tier(listed, t, "tier"), 0, problems
        )
        until = _field(
            cell.get("valid_until", ""),
            line,
            lambda t: parse_date(t, "valid_until"),
            None,
            problems,
        )
        balance = _field(
            cell.get("balance_yuan", ""), line, lambda t: parse_yuan(t, "balance_yuan"), 0, problems
        )
        if balance > cap:
            problems.append(f"line {line} balance_yuan: above the card cap of {cap / 100:.2f}")
        points = _field(cell.get("points", ""), line, _points, 0, problems)
        if len(problems) == before:
            rows.append(Row(line, member, tier, until, balance, points))
    if problems:
        shown = "\n  ".join(problems[:_MAX_SHOWN])
        more = f"\n  (+{len(problems) - _MAX_SHOWN} more)" if len(problems) > _MAX_SHOWN else ""
        raise UsageError(
            f"FILE {str(path)!r}: {len(problems)} bad field(s), nothing issued:\n  {shown}{more}"
        )
    if not rows:
        raise UsageError(f"FILE {str(path)!r}: no members to issue")
    return rows


def _field(text: str, line: int, parse: Any, default: Any, problems: list[str]) -> Any:
    """One cell parsed; a bad one adds ``line N <column> 'value': why`` to ``problems``."""
    if not text:
        return default
    try:
        return parse(text)
    except UsageError as exc:
        problems.append(f"line {line} {exc}")
        return default


def _points(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"points {text!r}: a whole number, 0 or more")
    return int(text)


def batch_id(path: Path, reader: str) -> str:
    """Stable for the same file content: a rerun resumes instead of issuing again."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    stem = "".join(c for c in path.stem if c.isascii() and c.isalnum())[:20] or "batch"
    return f"{stem}-{digest}"


class Results:
    """The per-card result file, rewritten whole (and atomically) after every card."""

    def __init__(self, path: Path, rows: list[Row]) -> None:
        self.path = path
        self.rows: dict[int, list[str]] = {
            i: [str(r.line), r.member_id, "", "pending", ""] for i, r in enumerate(rows)
        }

    def set(self, index: int, uid: str, status: str, reason: str = "") -> None:
        row = self.rows[index]
        row[2:] = [uid or row[2], status, reason]
        self._save()

    def _save(self) -> None:
        partial = self.path.with_name(f".{self.path.name}.partial")
        with open(partial, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(RESULT_COLUMNS)
            writer.writerows(self.rows[i] for i in sorted(self.rows))
            fh.flush()
            os.fsync(fh.fileno())
        partial.replace(self.path)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.rows.values():
            found[row[3]] = found.get(row[3], 0) + 1
        return found


def _events(daemon: Daemon, args: argparse.Namespace, rows: list[Row], bid: str) -> Iterator[Any]:
    from google.protobuf import duration_pb2

    from daemon.api.v1 import common_pb2
    from daemon.api.v1 import issuing_service_pb2 as pb
    from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc

    cards = []
    for r in rows:
        spec = pb.CardSpec(
            member_id=r.member_id,
            tier=r.tier,
            opening_balance=common_pb2.Money(currency_code="CNY", amount_fen=r.balance_fen),
            opening_points=r.points,
        )
        if r.valid_until is not None:
            u = r.valid_until
            spec.valid_until.CopyFrom(common_pb2.Date(year=u.year, month=u.month, day=u.day))
        cards.append(spec)
    request = pb.BatchIssueCardsRequest(
        reader=reader_id(args.reader),
        batch_id=bid,
        cards=cards,
        card_timeout=duration_pb2.Duration(seconds=args.card_timeout),
    )
    stub = pb_grpc.IssuingServiceStub(daemon.channel)
    words = {**reader_words(args.reader), "card_timeout": "--card-timeout"}
    yield from daemon.stream(lambda: stub.BatchIssueCards(request), words=words)


def _resumable(events: Iterator[Any], results: Path) -> Iterator[Any]:
    """The batch's events; a batch that stopped (no card in time, the reader gone) says how
    to go on: the same command again."""
    try:
        yield from events
    except CliError as exc:
        raise CliError(
            f"{exc} — the batch stopped; results so far in {results}; run the same command "
            "again to go on (cards already issued are skipped)",
            exc.code,
        ) from None


def _cmd_issue_batch(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from daemon.api.v1 import issuing_service_pb2 as pb

    if not 1 <= args.card_timeout <= 120:
        raise UsageError(f"--card-timeout {args.card_timeout}: give 1..120 seconds")
    out = Output(args.json)
    state = pb.BatchIssueCardsResponse.State
    results_path: Path = args.results or args.file.with_name(args.file.name + ".results.csv")
    with connect(args) as daemon:
        rows = load(args.file, tiers(daemon))
        bid = args.batch_id or batch_id(args.file, args.reader)
        results = Results(results_path, rows)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=out.errors,
            disable=out.json or not out.errors.is_terminal,
        )
        with progress:
            task = progress.add_task("issuing", total=len(rows), rate="")
            for event in _resumable(_events(daemon, args, rows, bid), results_path):
                name = enum_name(state, event.state, "STATE_")
                row = rows[event.index]
                if out.json:
                    out.json_line({**proto_dict(event), "line": row.line, "batch_id": bid})
                elif event.state == state.STATE_WAITING_FOR_CARD:
                    progress.update(task, description=f"present a blank card for {row.member_id}")
                else:
                    what = {"skipped": "issued earlier"}.get(name, name)
                    detail = (
                        f" {event.error_reason}: {event.error_message}"
                        if event.error_reason
                        else ""
                    )
                    out.say(f"line {row.line} {row.member_id}: {what} {event.uid}{detail}".rstrip())
                if event.state == state.STATE_WAITING_FOR_CARD:
                    continue
                status = {"skipped": "issued"}.get(name, name)
                results.set(event.index, event.uid, status, event.error_reason)
                elapsed = progress.tasks[0].elapsed or 0.0
                rate = f"{event.done / elapsed * 60:.1f} cards/min" if elapsed > 0 else ""
                progress.update(task, completed=event.done, rate=rate, description="issuing")
    counts = results.counts()
    failed = counts.get("failed", 0)
    summary = (
        f"batch {bid}: {counts.get('issued', 0)} of {len(rows)} issued, {failed} failed; "
        f"results in {results_path}"
    )
    if out.json:
        out.json_line({"summary": counts, "batch_id": bid, "results": str(results_path)})
    else:
        out.say(summary)
    if failed:
        raise Problem(
            f"{failed} card(s) failed (see {results_path}); run the same command again "
            "to retry them with new blank cards"
        )
    return 0


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "issue-batch",
        _cmd_issue_batch,
        help="issue a CSV file of members, one blank card after the other; run it again to "
        "resume (cards already issued are skipped)",
        role="issuer",
    )
    p.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help=f"the CSV (UTF-8, Excel BOM ok): header {','.join(COLUMNS)}; only member_id "
        "required; tier by name or number",
    )
    p.add_argument(
        "--reader",
        required=True,
        metavar="READER",
        help="the reader the blank cards are laid on: readers/<id> or <id>",
    )
    p.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="the per-card result CSV (default: FILE.results.csv)",
    )
    p.add_argument(
        "--batch-id",
        metavar="ID",
        help="the batch's idempotency key (default: from the file's name and content)",
    )
    p.add_argument(
        "--card-timeout",
        type=int,
        default=120,
        metavar="SECONDS",
        help="how long to wait for each blank card, 1..120 (default 120)",
    )
