"""Batch issue from a CSV of member IDs, restartable without issuing a card twice.

Input CSV (UTF-8, header row; only ``member_id`` is required)::

    member_id,tier,valid_until,balance,points
    8800000001,0,2028-12-31,0,0

The whole file is validated before the first card is touched; bad rows raise one
``InvalidArgument`` naming file, line and column of each problem. Results are appended (and
fsynced) to a result CSV, one row per card: ``member_id,uid,status,reason``. On restart,
members already ``issued`` there or bound to a card in the journal are skipped; the request_id
``batch:<batch_id>:<member_id>`` makes an interrupted issue resume on the same card (another
card is refused until that one is presented again).

``python -m daemon.membercard.batch --config FILE --reader NAME --csv IN --results OUT`` waits
for each card on a real reader; tiers, balance cap, journal and key file come from the daemon's
config (``[membercard]``, ``[daemon]``; ``--keys``/``--journal`` override the last two). The
simulated run (blank simulated cards, for a demo) is ``python -m demo.batch``: the product
never imports the simulator.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.config import DEFAULT_CONFIG_PATH, DaemonConfig, load_config
from daemon.errors import CardDaemonError, InvalidArgument, WriteUnconfirmed
from daemon.journal import Journal
from daemon.keystore import Keystore
from daemon.membercard.issuing import IssueSpec, Personaliser
from daemon.membercard.layout import check_member_id
from daemon.membercard.requests import IssueCard
from daemon.membercard.rules import Programme, check_amount
from daemon.readers.backends import ReaderBackend
from daemon.readers.storage import StorageCard

__all__ = [
    "BatchRow",
    "BatchSummary",
    "build_parser",
    "load_batch",
    "main",
    "reader_cards",
    "run_batch",
    "run_file",
]

logger = logging.getLogger(__name__)

COLUMNS = ("member_id", "tier", "valid_until", "balance", "points")
RESULT_COLUMNS = ("member_id", "uid", "status", "reason")
Progress = Callable[[int, int, str, str], None]  # done, total, member_id, status


@dataclass(frozen=True, slots=True)
class BatchRow:
    line: int
    spec: IssueSpec


@dataclass(frozen=True, slots=True)
class BatchSummary:
    issued: int
    skipped: int
    failed: int
    interrupted: bool


def _number(cell: dict[str, str], col: str) -> int:
    text = cell.get(col) or "0"
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a whole number")
    return check_amount(col, int(text), allow_zero=True)


def _parse_row(
    line: int, cell: dict[str, str], programme: Programme, problems: list[str]
) -> IssueSpec | None:
    """One row as an IssueSpec; each bad field adds "line N column: why" to ``problems``."""
    found = len(problems)
    values: dict[str, object] = {}
    for col in COLUMNS:
        try:
            if col == "member_id":
                values[col] = check_member_id(cell.get(col, ""))
            elif col == "valid_until":
                text = cell.get(col, "")
                values[col] = dt.date.fromisoformat(text) if text else None
            else:
                values[col] = _number(cell, col)
                if col == "tier":
                    programme.tier(_number(cell, col))
                if col == "balance" and _number(cell, col) > programme.balance_cap:
                    raise ValueError(f"{cell[col]} fen is above the card cap")
        except (CardDaemonError, ValueError) as exc:
            problems.append(f"line {line} {col}: {_why(exc)}")
    if len(problems) > found:
        return None
    until = values["valid_until"]
    return IssueSpec(
        str(values["member_id"]),
        int(str(values["tier"])),
        until if isinstance(until, dt.date) else None,
        int(str(values["balance"])),
        int(str(values["points"])),
    )


def _why(exc: Exception) -> str:
    """The reason without the field name the caller already prefixes (``tier: tier: ...``)."""
    if isinstance(exc, InvalidArgument):
        return exc.message.removeprefix(f"{exc.field}: ")
    return getattr(exc, "message", str(exc))


def load_batch(path: str | Path, programme: Programme) -> list[BatchRow]:
    """Parse and validate every row; nothing is issued from a file with a bad row."""
    name = Path(path).name
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
            records = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(name, f"cannot read the batch file ({exc})") from None
    if not records or "member_id" not in [c.strip() for c in records[0]]:
        raise InvalidArgument(name, "line 1: header row with a member_id column required")
    header = [c.strip() for c in records[0]]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise InvalidArgument(name, f"line 1: unknown columns {', '.join(unknown)}")
    rows: list[BatchRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, values in enumerate(records[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"line {line}: {len(values)} fields, header has {len(header)}")
            continue
        cell = dict(zip(header, (v.strip() for v in values), strict=True))
        spec = _parse_row(line, cell, programme, problems)
        if spec is None:
            continue
        if spec.member_id in seen:
            problems.append(
                f"line {line} member_id: {spec.member_id} repeats line {seen[spec.member_id]}"
            )
        seen[spec.member_id] = line
        rows.append(BatchRow(line, spec))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InvalidArgument(name, f"{len(problems)} bad field(s): {shown}{more}")
    return rows


def _done(result_path: Path) -> set[str]:
    if not result_path.exists():
        return set()
    with open(result_path, newline="", encoding="utf-8") as fh:
        return {r["member_id"] for r in csv.DictReader(fh) if r.get("status") == "issued"}


def _append(result_path: Path, row: tuple[str, str, str, str]) -> None:
    new = not result_path.exists()
    with open(result_path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(RESULT_COLUMNS)
        writer.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())


def run_batch(
    personaliser: Personaliser,
    rows: list[BatchRow],
    next_card: Callable[[], StorageCard | None],
    result_path: str | Path,
    *,
    batch_id: str,
    progress: Progress | None = None,
) -> BatchSummary:
    """Issue one card per row; ``next_card`` returns the next presented card (None: stop)."""
    results = Path(result_path)
    done = _done(results)
    issued = skipped = failed = 0
    for i, row in enumerate(rows, start=1):
        member = row.spec.member_id
        if member in done or personaliser.journal.bound_uid(member) is not None:
            skipped += 1
            if progress:
                progress(i, len(rows), member, "skipped")
            continue
        card = next_card()
        if card is None:
            return BatchSummary(issued, skipped, failed, interrupted=True)
        with card:
            try:
                res = personaliser.issue(
                    card, IssueCard(row.spec, request_id=f"batch:{batch_id}:{member}")
                )
            except CardDaemonError as exc:
                failed += 1
                uid = _uid(card)
                _append(results, (member, uid, "failed", f"{exc.reason}: {exc.message}"))
                if progress:
                    progress(i, len(rows), member, exc.reason)
                if isinstance(exc, WriteUnconfirmed):  # only this card can finish it
                    return BatchSummary(issued, skipped, failed, interrupted=True)
                continue
        issued += 1
        _append(results, (member, res.uid, "issued", ""))
        if progress:
            progress(i, len(rows), member, "issued")
    return BatchSummary(issued, skipped, failed, interrupted=False)


def _uid(card: StorageCard) -> str:
    try:
        return card.uid().hex().upper()
    except CardDaemonError:
        return ""


def _bar(done: int, total: int, member: str, status: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {member} {status}   "
    )
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def reader_cards(backend: ReaderBackend, reader: str) -> Iterator[StorageCard]:
    """Each card presented on ``reader`` in turn (the operator swaps cards); closes the backend
    when the batch stops."""
    try:
        states = backend.wait_for_change(None, 0)
        while True:
            sys.stderr.write(f"present a blank card on {reader!r}\n")
            while not states.get(reader) or not states[reader].present:
                states = backend.wait_for_change(states, 1.0)
            yield StorageCard(backend.connect(reader, exclusive=True))
            sys.stderr.write("remove the card\n")
            while states.get(reader) and states[reader].present:
                states = backend.wait_for_change(states, 1.0)
    finally:
        backend.close()


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The options every batch run takes, whatever supplies the cards."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", required=True, help="member IDs to issue (UTF-8 CSV)")
    parser.add_argument("--results", required=True, help="result CSV, appended and fsynced")
    parser.add_argument("--batch-id", default=None, help="default: the CSV's file name stem")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH,
        help="the daemon's config file: its [membercard] tiers and cap, its journal and keys",
    )  # fmt: skip
    parser.add_argument("--keys", default=None, help="key file (0600) instead of the config's")
    parser.add_argument("--journal", default=None, help="journal instead of the config's")
    return parser


def run_file(
    args: argparse.Namespace, cards: Callable[[DaemonConfig], Iterator[StorageCard]]
) -> int:
    """Load the config's programme, validate the CSV whole, then issue one card per row.

    Returns the exit status: 0 all issued, 1 failures or stopped early, 2 nothing done (bad
    config, CSV or key file; the message names it)."""
    try:
        config = load_config(args.config, load_keys=args.keys is None)
        rows = load_batch(args.csv, config.membercard)
        keystore = Keystore.load(args.keys) if args.keys else config.keystore
    except CardDaemonError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    assert keystore is not None  # load_config(load_keys=True) set it
    journal_path = args.journal or config.daemon.journal_path
    with Journal(journal_path) as journal:
        issuer = Personaliser(keystore, journal, config.membercard)
        started = time.monotonic()
        summary = run_batch(
            issuer, rows, functools.partial(next, cards(config), None), args.results,
            batch_id=args.batch_id or Path(args.csv).stem, progress=_bar,
        )  # fmt: skip
    sys.stdout.write(
        f"batch: issued={summary.issued} skipped={summary.skipped} failed={summary.failed} "
        f"interrupted={summary.interrupted} in {time.monotonic() - started:.1f} s\n"
    )
    return 1 if summary.failed or summary.interrupted else 0


def main(argv: list[str] | None = None) -> int:
    """Batch issue on a real reader of the config's backend (an issuing station)."""
    parser = build_parser("python -m daemon.membercard.batch")
    parser.add_argument("--reader", required=True, help="PC/SC reader name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    return run_file(args, lambda config: reader_cards(config.readers.create_backend(), args.reader))


if __name__ == "__main__":
    sys.exit(main())
