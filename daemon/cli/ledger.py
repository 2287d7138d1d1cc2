"""``carddaemon ledger migrate|add-store|review|unhotlist|status``: the chain ledger by hand.

``migrate``, ``add-store``, ``review`` and ``unhotlist`` run at the chain's data centre with
the admin role's connection string (``--conninfo-file``, mode 0600: never on the command line,
where ``ps`` and the shell history would show it). ``status`` runs on a store PC, offline:
what its outbox still has to ship and which hotlist version it holds (from the journal of
``--config``).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Final

from daemon.cli._args import Exit, Problem, SubParsers, UsageError, add_command
from daemon.cli._output import Output
from daemon.errors import ConfigError, InvalidArgument, LedgerError

__all__ = ["register"]

DEFAULT_CONFIG: Final = Path("/etc/carddaemon/carddaemon.toml")


def _conninfo(args: argparse.Namespace) -> str:
    from daemon.ledger.settings import LedgerConfig, read_conninfo

    try:
        return read_conninfo(LedgerConfig("admin", "cli", conninfo_file=args.conninfo_file))
    except ConfigError as exc:
        text = exc.message.removeprefix(f"{exc.key}: ")
        raise UsageError(f"--conninfo-file {str(args.conninfo_file)!r}: {text}") from None


def _cmd_migrate(args: argparse.Namespace) -> int:
    from daemon.ledger.migrate import migrate, migrations

    out = Output(args.json)
    try:
        done = migrate(_conninfo(args))
    except LedgerError as exc:
        raise Problem(exc.message) from None
    names = [f"{m.version:04d}_{m.name}" for m in done]
    if out.json:
        out.document({"applied": names, "latest": migrations()[-1].version})
    else:
        out.say(f"applied: {', '.join(names)}" if names else "schema up to date")
    return Exit.OK


def _cmd_add_store(args: argparse.Namespace) -> int:
    from daemon.ledger.migrate import add_store

    password = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            where = f"--password-file {str(args.password_file)!r}"
            raise UsageError(f"{where}: {exc.strerror}") from None
    try:
        role = add_store(_conninfo(args), args.code, password=password, name=args.name or "")
    except InvalidArgument:
        words = "must be 1-32 lower-case letters, digits or '_'"
        raise UsageError(f"CODE {args.code!r}: {words}") from None
    except LedgerError as exc:
        raise Problem(exc.message) from None
    out = Output(args.json)
    if out.json:
        out.document({"store": args.code, "role": role})
    else:
        out.say(f"store {args.code}: role {role} (inserts its own events, reads cards + hotlist)")
    return Exit.OK


def _cmd_review(args: argparse.Namespace) -> int:
    import psycopg

    try:
        with psycopg.connect(_conninfo(args)) as conn:
            rows = conn.execute(
                "SELECT r.id, r.created_at, r.uid, r.reason, s.code, r.counter, r.detail"
                " FROM ledger.review_queue r LEFT JOIN ledger.stores s ON s.id = r.store_id"
                " WHERE r.status = 'open' ORDER BY r.id DESC LIMIT %s",
                (args.limit,),
            ).fetchall()
    except psycopg.Error as exc:
        from daemon.ledger.link import describe

        raise Problem(f"chain ledger: {describe(exc)}") from None
    out = Output(args.json)
    items = [
        {
            "id": r[0],
            "at": r[1].isoformat(),
            "uid": r[2],
            "reason": r[3],
            "store": r[4],
            "counter": r[5],
            "detail": r[6],
        }
        for r in rows
    ]
    if out.json:
        out.document({"open": items})
    else:
        out.table(
            ("id", "at", "card", "reason", "store", "counter"),
            (_row(i) for i in items),
            empty="(no open divergence)",
        )
    return Exit.OK


def _cmd_unhotlist(args: argparse.Namespace) -> int:
    import psycopg

    from daemon.ledger.link import describe

    try:
        with psycopg.connect(_conninfo(args), autocommit=True) as conn:
            row = conn.execute(
                "SELECT ledger.hotlist_remove(%s, %s)", (args.uid.upper(), args.note)
            ).fetchone()
    except psycopg.Error as exc:
        raise Problem(f"chain ledger: {describe(exc)}") from None
    if row is None or not row[0]:
        raise Problem(f"UID {args.uid!r}: not on the chain hotlist")
    Output(args.json).say(f"card {args.uid.upper()} taken off the chain hotlist ({args.note})")
    return Exit.OK


def _row(item: dict[str, object]) -> list[str]:
    counter = item["counter"]
    return [
        str(item["id"]),
        str(item["at"])[:19],
        str(item["uid"]),
        str(item["reason"]),
        str(item["store"] or ""),
        "" if counter is None else str(counter),
    ]


def _cmd_status(args: argparse.Namespace) -> int:
    from daemon.config import load_config

    try:
        config = load_config(args.config, load_keys=False)
    except ConfigError as exc:
        raise UsageError(exc.message) from None
    if config.ledger is None:
        raise UsageError(f"--config {str(args.config)!r}: has no [ledger] section")
    path = config.daemon.journal_path
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM ledger_meta").fetchall())
            shipped = int(meta.get("shipped_seq", 0))
            row = db.execute("SELECT count(*) FROM ledger_outbox WHERE seq > ?", (shipped,))
            backlog = int(row.fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise Problem(f"journal {str(path)!r}: no ledger outbox ({exc})") from None
    status = {
        "store": config.ledger.store,
        "terminal": config.ledger.terminal,
        "mode": config.ledger.mode,
        "shipped_seq": shipped,
        "backlog": backlog,
        "hotlist_version": int(meta.get("hotlist_version", 0)),
    }
    out = Output(args.json)
    if out.json:
        out.document(status)
    else:
        for key, value in status.items():
            out.say(f"{key:<16}{value}")
    return Exit.OK


def register(sub: SubParsers) -> None:
    """The CLI's module hook (see :mod:`daemon.cli`)."""
    top = sub.add_parser("ledger", help="the chain ledger: migrate, add a store, review, status")
    cmds = top.add_subparsers(dest="ledger", required=True, metavar="COMMAND")
    admin_help = "the admin role's libpq connection string, in a file of mode 0600"
    p = add_command(
        cmds,
        "migrate",
        _cmd_migrate,
        role=None,
        help="apply the ledger's schema migrations (data centre, admin role)",
    )
    p.add_argument("--conninfo-file", type=Path, required=True, help=admin_help)
    p = add_command(
        cmds,
        "add-store",
        _cmd_add_store,
        role=None,
        help="create a store's own PostgreSQL role and row",
    )
    p.add_argument("code", metavar="CODE", help="the store's code ([ledger] store), e.g. sh001")
    p.add_argument("--conninfo-file", type=Path, required=True, help=admin_help)
    p.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help="a file holding the store role's password (scram-sha-256 logins)",
    )
    p.add_argument("--name", default=None, help="the store's name for people")
    p = add_command(
        cmds,
        "review",
        _cmd_review,
        role=None,
        help="the open divergences of the review queue, newest first",
    )
    p.add_argument("--conninfo-file", type=Path, required=True, help=admin_help)
    p.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    p = add_command(
        cmds,
        "unhotlist",
        _cmd_unhotlist,
        role=None,
        help="take a card off the chain hotlist after review (every store pulls the change)",
    )
    p.add_argument("uid", metavar="UID", help="the card's UID in hex, e.g. 04A7E3C2")
    p.add_argument("--note", required=True, help="why (kept in the hotlist's history)")
    p.add_argument("--conninfo-file", type=Path, required=True, help=admin_help)
    p = add_command(
        cmds,
        "status",
        _cmd_status,
        role=None,
        help="this store PC's outbox backlog and hotlist version (offline)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the daemon's config (default {DEFAULT_CONFIG})",
    )
