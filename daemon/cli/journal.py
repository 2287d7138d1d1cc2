"""``carddaemon journal backup FILE`` and ``carddaemon journal verify FILE``: offline commands.

``backup`` takes a consistent copy of the journal with SQLite's online backup API while the
daemon keeps serving (the copy is one snapshot: every committed transaction up to a point, none
half). The copy is written next to ``FILE``, checked (``integrity_check``), switched out of WAL
mode so it is one self-contained file, fsynced and renamed into place: a crash never leaves a
half backup under the final name. The live journal comes from ``--journal PATH``, else the
``[daemon] journal_path`` of ``--config`` (the master keys are not loaded).

``verify`` opens a file read-only and checks it: SQLite's ``integrity_check`` and the
journal's schema (every table and column the daemon uses). Exit 0 when sound; 1 naming the
problem when damaged, truncated, not a database or of another schema; 2 when it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["JournalDamaged", "add_parser", "backup", "register", "verify"]

DEFAULT_CONFIG: Final = Path("/etc/carddaemon/carddaemon.toml")
_PAGES_PER_STEP: Final = 256  # the daemon's writers get the lock between steps
#: table names here come from the daemon's own schema, never from the file or the user
_COUNT: Final = 'SELECT count(*) FROM "{}"'


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


class JournalDamaged(Exception):
    """The file is not a sound carddaemon journal (exit 1)."""


@dataclass(frozen=True, slots=True)
class Verified:
    path: Path
    tables: dict[str, int]  # table -> rows

    def format_text(self) -> str:
        counts = ", ".join(f"{table} {rows}" for table, rows in sorted(self.tables.items()))
        return f"{self.path}: ok (integrity ok, schema ok; rows: {counts})"


def _expected_schema() -> dict[str, list[str]]:
    """Tables -> columns as the daemon creates them (a fresh in-memory journal)."""
    from daemon.journal import Journal

    with Journal(":memory:") as journal, journal._tx() as db:
        return _schema(db)


def _schema(db: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: [c[1] for c in db.execute(f'PRAGMA table_info("{t}")')] for t in tables}


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def verify(path: Path) -> Verified:
    """Integrity and schema of the journal file ``path``; :class:`JournalDamaged` if not."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    expected = _expected_schema()
    try:
        with _read_only(path) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                shown = "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
                raise JournalDamaged(f"{path}: integrity check failed: {shown}")
            found = _schema(db)
            for table, columns in expected.items():
                if table not in found:
                    raise JournalDamaged(f"{path}: schema: table {table!r} is missing")
                missing = [c for c in columns if c not in found[table]]
                if missing:
                    raise JournalDamaged(
                        f"{path}: schema: table {table!r} lacks column(s) {', '.join(missing)}"
                    )
            rows = {t: int(db.execute(_COUNT.format(t)).fetchone()[0]) for t in expected}
    except sqlite3.DatabaseError as exc:
        raise JournalDamaged(f"{path}: not a readable SQLite journal: {exc}") from None
    return Verified(path, rows)


def backup(source: Path, target: Path) -> Verified:
    """A consistent copy of the live journal ``source`` at ``target`` (verified)."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such journal")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(str(source), timeout=30.0)
        try:
            dst = sqlite3.connect(str(partial))
            try:
                src.backup(dst, pages=_PAGES_PER_STEP, sleep=0.005)
                dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
        checked = verify(partial)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        partial.replace(target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        partial.unlink(missing_ok=True)
    return Verified(target, checked.tables)


def _journal_path(args: argparse.Namespace) -> Path:
    if args.journal is not None:
        return Path(args.journal)
    from daemon.config import load_config

    return load_config(args.config, load_keys=False).daemon.journal_path


def _cmd_backup(args: argparse.Namespace) -> int:
    source = _journal_path(args)
    started = time.monotonic()
    try:
        done = backup(source, args.file)
    except FileNotFoundError as exc:
        _say(f"carddaemon journal backup: {exc}", err=True)
        return 2
    except (JournalDamaged, sqlite3.Error, OSError) as exc:
        _say(f"carddaemon journal backup: {exc}", err=True)
        return 1
    took = time.monotonic() - started
    _say(f"backed up {source} to {done.path} in {took:.2f} s")
    _say(done.format_text())
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        _say(verify(args.file).format_text())
    except FileNotFoundError as exc:
        _say(f"carddaemon journal verify: {exc}", err=True)
        return 2
    except JournalDamaged as exc:
        _say(f"carddaemon journal verify: DAMAGED: {exc}", err=True)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``journal backup|verify`` under the ``carddaemon`` command line."""
    p = sub.add_parser("journal", help="back up and verify the journal (no daemon needed)")
    journal = p.add_subparsers(dest="journal", required=True)
    q = journal.add_parser(
        "backup", help="a consistent copy of the live journal (while the daemon serves)"
    )
    q.add_argument("file", type=Path, help="where the copy goes (replaced atomically)")
    q.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the daemon's config: its [daemon] journal_path (default {DEFAULT_CONFIG})",
    )
    q.add_argument("--journal", type=Path, default=None, help="the journal file itself")
    q.set_defaults(func=_cmd_backup, role=None, command_name="carddaemon journal backup")
    q = journal.add_parser("verify", help="integrity and schema check of a journal file")
    q.add_argument("file", type=Path, help="the journal file to check")
    q.set_defaults(func=_cmd_verify, role=None, command_name="carddaemon journal verify")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The CLI's module hook (see :mod:`daemon.cli`)."""
    add_parser(sub)
