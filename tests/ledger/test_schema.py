"""The ledger's schema, migrations and what a store's own role may do (row-level security)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from daemon.errors import InvalidArgument, LedgerError
from daemon.journal import Journal
from daemon.ledger.migrate import add_store, migrate, migrations
from tests.ledger.chain import admin_rows, attach, committed_debit, rewind
from tests.ledger.conftest import Ledger

_EVENT = (
    "INSERT INTO ledger.card_events (uid, counter, tag, at, store_id, terminal, store_seq,"
    " request_id, op, prev_counter) VALUES (%s, 1, 'aa', now(), %s, 'pc', 1, 'r', 'debit', 0)"
)


def _store_id(ledger: Ledger, code: str) -> int:
    return int(admin_rows(ledger, "SELECT id FROM ledger.stores WHERE code=%s", code)[0][0])


def test_migrate_again_applies_nothing_and_keeps_monthly_partitions_ready(ledger: Ledger) -> None:
    assert [m.version for m in migrations()] == [1, 2, 3, 4]
    assert migrate(ledger.admin) == []
    applied = admin_rows(ledger, "SELECT version FROM public.ledger_schema_migrations")
    assert sorted(v for (v,) in applied) == [1, 2, 3, 4]
    month = dt.datetime.now(dt.UTC).strftime("%Y_%m")
    parts = {r[0] for r in admin_rows(
        ledger, "SELECT relname FROM pg_class WHERE relname LIKE 'card_events_%%'")}  # fmt: skip
    assert f"card_events_{month}" in parts
    assert "card_events_default" in parts
    assert len(parts) >= 13


def test_a_migration_edited_after_it_was_applied_is_refused(ledger: Ledger) -> None:
    with psycopg.connect(ledger.admin, autocommit=True) as conn:
        conn.execute("UPDATE public.ledger_schema_migrations SET checksum='x' WHERE version=2")
    try:
        with pytest.raises(LedgerError, match="0002_checks was applied with different content"):
            migrate(ledger.admin)
    finally:
        with psycopg.connect(ledger.admin, autocommit=True) as conn:
            conn.execute(
                "UPDATE public.ledger_schema_migrations SET checksum=%s WHERE version=2",
                (migrations()[1].checksum,),
            )


def test_a_store_inserts_only_its_own_events(ledger: Ledger, fresh_uid: int) -> None:
    with psycopg.connect(ledger.store("a"), autocommit=True) as conn:
        conn.execute(_EVENT, (f"RLS{fresh_uid}", _store_id(ledger, "a")))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(_EVENT, (f"RLS{fresh_uid}x", _store_id(ledger, "b")))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger.cards SET balance = 10000000",
        "DELETE FROM ledger.card_events",
        "SELECT * FROM ledger.review_queue",
        "SELECT * FROM ledger.card_events",
        "INSERT INTO ledger.hotlist (uid, action, reason) VALUES ('X', 'remove', 'me')",
        "SELECT ledger.hotlist_remove('X', 'me')",
        "UPDATE ledger.policy SET value = '' WHERE name = 'hotlist_reasons'",
    ],
)
def test_a_store_role_cannot_change_or_read_beyond_card_state_and_hotlist(
    ledger: Ledger, statement: str
) -> None:
    with (
        psycopg.connect(ledger.store("a"), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement.encode())


def test_a_store_role_sees_only_its_own_store_row_and_holds_no_power(ledger: Ledger) -> None:
    with psycopg.connect(ledger.store("b"), autocommit=True) as conn:
        assert conn.execute("SELECT code FROM ledger.stores").fetchall() == [("b",)]
        conn.execute("SELECT uid FROM ledger.cards LIMIT 1")
        conn.execute("SELECT version FROM ledger.hotlist LIMIT 1")
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, False, False)


def test_a_bad_store_code_is_refused_naming_it(ledger: Ledger) -> None:
    with pytest.raises(InvalidArgument, match="store: 'Bad Store!'"):
        add_store(ledger.admin, "Bad Store!")


def test_sending_the_same_events_again_is_harmless(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    uid = f"R{fresh_uid}"
    with Journal(tmp_path / "j.db") as journal:
        part = attach(ledger, journal, "a")
        try:
            for i in range(5):
                committed_debit(journal, f"{uid}-{i}", uid, i + 1, 1000)
            part.shipper.flush()
            before = admin_rows(ledger, "SELECT balance, last_counter FROM ledger.cards"
                                " WHERE uid=%s", uid)  # fmt: skip
            part.outbox.mark_shipped(0)
            assert part.outbox.shipped == 5  # the confirmed position never moves back
        finally:
            part.close()
        rewind(journal)  # the PC restored from a backup sends everything again
        again = attach(ledger, journal, "a")
        try:
            again.shipper.flush()
        finally:
            again.close()
    rows = admin_rows(ledger, "SELECT count(*), sum(amount) FROM ledger.card_events WHERE uid=%s",
                      uid)  # fmt: skip
    assert rows == [(5, 5000)]
    assert admin_rows(ledger, "SELECT balance, last_counter FROM ledger.cards WHERE uid=%s",
                      uid) == before  # fmt: skip
    assert admin_rows(ledger, "SELECT count(*) FROM ledger.review_queue WHERE uid=%s", uid) == [
        (0,)
    ]


def test_a_replaced_journal_starting_its_sequence_again_still_reports(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    uids = [f"NJ{fresh_uid}-{n}" for n in range(2)]
    for n, uid in enumerate(uids):  # the PC's disk replaced: a new journal, outbox seq 1 again
        with Journal(tmp_path / f"journal-{n}.db") as journal:
            part = attach(ledger, journal, "a")
            try:
                journal.hotlist(uid, "MAC_INVALID")
                part.shipper.flush()
            finally:
                part.close()
    found = admin_rows(
        ledger, "SELECT uid FROM ledger.store_reports WHERE kind='hotlist' AND uid = ANY(%s)", uids
    )
    assert sorted(u for (u,) in found) == uids
