"""Versioned schema migrations of the chain ledger, and the store roles.

Why numbered SQL files applied once each, in order, in their own transaction: the ledger is one
database for the whole chain, upgraded while stores keep shipping; a half-applied upgrade must
not exist, and a file that was edited after it was applied is refused (its checksum no longer
matches) instead of silently diverging. Migrations run as the chain's admin role at the data
centre, never with a store's credential.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Final

from daemon.errors import InvalidArgument, LedgerError
from daemon.ledger.link import describe
from daemon.ledger.settings import STORE_CODE

if TYPE_CHECKING:
    import psycopg

__all__ = ["Migration", "add_store", "applied", "migrate", "migrations"]

logger = logging.getLogger(__name__)

_LOCK: Final = 0x1ED6E5  # pg_advisory_xact_lock key: one migrator at a time
_TABLE: Final = """
CREATE TABLE IF NOT EXISTS public.ledger_schema_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
#: months of card_events partitions kept ready ahead of today
MONTHS_AHEAD: Final = 12


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """Every ``sql/NNNN_name.sql`` shipped with the daemon, by version."""
    found = []
    for item in resources.files("daemon.ledger").joinpath("sql").iterdir():
        if item.name.endswith(".sql"):
            number, _, rest = item.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), item.read_text()))
    return sorted(found, key=lambda m: m.version)


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, str]:
    """version -> checksum of what this database has applied."""
    rows = conn.execute(
        "SELECT version, checksum FROM public.ledger_schema_migrations ORDER BY version"
    ).fetchall()
    return {int(str(v)): str(c) for v, c in rows}


def migrate(conninfo: str, *, today: dt.date | None = None) -> list[Migration]:
    """Apply what is missing (each file in its own transaction) and keep a year of monthly
    partitions ready; returns what was applied now. Safe to run again: nothing to do."""
    import psycopg

    done: list[Migration] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET timezone = 'UTC'")
            conn.execute(_TABLE)
            for migration in migrations():
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                    have = applied(conn)
                    if migration.version in have:
                        if have[migration.version] != migration.checksum:
                            raise LedgerError(
                                f"migration {migration.version:04d}_{migration.name} was applied "
                                "with different content (edited after release?); refusing to go on"
                            )
                        continue
                    conn.execute(migration.sql.encode())
                    conn.execute("RESET ROLE")
                    conn.execute(
                        "INSERT INTO public.ledger_schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                    done.append(migration)
                    logger.info("ledger: applied migration %04d_%s", migration.version,
                                migration.name)  # fmt: skip
            first = (today or dt.datetime.now(dt.UTC).date()).replace(day=1)
            first = (first - dt.timedelta(days=1)).replace(day=1)  # last month too
            conn.execute("SELECT ledger.ensure_month_partitions(%s, %s)", (first, MONTHS_AHEAD + 2))
    except psycopg.Error as exc:
        raise LedgerError(f"ledger migration failed: {describe(exc)}") from None
    return done


def add_store(conninfo: str, code: str, *, password: str | None = None, name: str = "") -> str:
    """Create store ``code``: its login role ``ledger_store_<code>`` (member of ledger_store,
    no other rights) and its row. Returns the role name. Idempotent; a given password is set
    again. Run as the admin role, at the data centre."""
    import psycopg
    from psycopg import sql

    if not STORE_CODE.fullmatch(code):
        raise InvalidArgument("store", f"{code!r} must be 1-32 lower-case letters, digits or '_'")
    role = f"ledger_store_{code}"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            ident = sql.Identifier(role)
            if exists is None:
                create = "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
                conn.execute(sql.SQL(create + " IN ROLE ledger_store").format(ident))
            if password is not None:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    ident, sql.Literal(password)))  # fmt: skip
            conn.execute(
                "INSERT INTO ledger.stores (code, role_name, name) VALUES (%s, %s, %s)"
                " ON CONFLICT (code) DO NOTHING",
                (code, role, name or code),
            )
    except psycopg.Error as exc:
        raise LedgerError(f"cannot add store {code}: {describe(exc)}") from None
    return role
