"""Journal: durability settings, idempotency claims, counters, bindings, hotlist, audit."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import CardCloned, CounterRollback, InvalidArgument, RequestIdReused
from daemon.journal import Journal, RequestState
from daemon.membercard.requests import MAX_REQUEST_ID, Debit


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.db") as j:
        yield j


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        assert j._db is not None
        assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    j.close()  # idempotent


def test_claim_intent_commit_then_retry_replays(journal: Journal) -> None:
    params = {"amount": 500, "uid": "A1B2C3D4"}
    with journal.claim("r1", "debit", params) as claim:
        assert claim.action == "execute"
        journal.record_intent("r1", "A1B2C3D4", {"counter": 1}, {"counter": 2})
        rec = journal.get("r1")
        assert rec is not None
        assert rec.state is RequestState.PENDING
        journal.finish("r1", RequestState.COMMITTED, {"balance": 9500})
    with journal.claim("r1", "debit", params) as claim:
        assert claim.action == "replay"
        assert claim.record.outcome == {"balance": 9500}


def test_same_id_different_parameters_is_refused(journal: Journal) -> None:
    with journal.claim("r1", "debit", {"amount": 500}):
        pass
    with pytest.raises(RequestIdReused, match="r1"), journal.claim("r1", "debit", {"amount": 501}):
        pass
    with pytest.raises(RequestIdReused), journal.claim("r1", "credit", {"amount": 500}):
        pass


def test_pending_survives_restart_and_needs_resolution(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as j, j.claim("r1", "debit", {"amount": 1}):
        j.record_intent("r1", "UID1", {"counter": 4}, {"counter": 5})
    with Journal(path) as j:
        assert [r.request_id for r in j.pending_for_uid("UID1")] == ["r1"]
        assert [r.request_id for r in j.pending()] == ["r1"]
        with j.claim("r1", "debit", {"amount": 1}) as claim:
            assert claim.action == "resolve"
            assert claim.record.after == {"counter": 5}
        j.finish("r1", RequestState.ABORTED, {"applied": False})
        with j.claim("r1", "debit", {"amount": 1}) as claim:
            assert claim.action == "execute"  # provably not applied: may run again


def test_concurrent_duplicates_execute_once(journal: Journal) -> None:
    executed: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        with journal.claim("dup", "credit", {"amount": 7}) as claim:
            if claim.action == "execute":
                executed.append(threading.current_thread().name)
                journal.record_intent("dup", "U", {}, {})
                journal.finish("dup", RequestState.COMMITTED, {"ok": True})

    threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(executed) == 1


def test_bad_request_id(journal: Journal) -> None:
    """A client's request_id is checked by the request (once); the journal keys what it gets,
    including ids the daemon derives from the longest client id (replace: ``<id>:issue``)."""
    with pytest.raises(InvalidArgument, match="request_id"):
        Debit("", 100)
    with pytest.raises(InvalidArgument, match="request_id"):
        Debit("x" * (MAX_REQUEST_ID + 1), 100)
    derived = "x" * MAX_REQUEST_ID + ":issue"
    with journal.claim(derived, "issue", {}) as claim:
        assert claim.action == "execute"
    assert journal.get(derived) is not None


def test_counter_only_moves_up_and_rollback_detected(journal: Journal) -> None:
    journal.observe("U1", "1001", 7, {"balance": 100})
    journal.observe("U1", "1001", 5, {"balance": 900})  # stale observation ignored
    seen = journal.last_seen("U1")
    assert seen is not None
    assert seen.last_counter == 7
    journal.check_counter("U1", 7)
    journal.check_counter("U2", 1)
    with pytest.raises(CounterRollback, match="counter 6"):
        journal.check_counter("U1", 6)


def test_member_binding_detects_clone(journal: Journal) -> None:
    journal.bind_member("1001", "U1")
    journal.check_binding("1001", "U1")
    journal.check_binding("2002", "U9")  # unknown member: nothing to compare
    with pytest.raises(CardCloned, match="1001"):
        journal.check_binding("1001", "U2")
    journal.bind_member("1001", "U2")  # replacement moves the binding
    journal.check_binding("1001", "U2")


def test_hotlist_and_audit(journal: Journal) -> None:
    assert journal.hotlist_reason("U1") is None
    journal.hotlist("U1", "lost")
    assert journal.hotlist_reason("U1") == "lost"
    journal.audit("key_use", uid="U1", detail={"purpose": "card_a", "version": 1})
    events = journal.audit_events(uid="U1")
    assert [e["event"] for e in events] == ["hotlist", "key_use"]
    assert events[1]["detail"] == {"purpose": "card_a", "version": 1}
    journal.unhotlist("U1")
    assert journal.hotlist_reason("U1") is None


def test_closed_journal_refuses(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.close()
    with pytest.raises(RuntimeError, match="closed"):
        j.hotlist("U", "x")
    assert isinstance(sqlite3.sqlite_version, str)


def test_old_pending_requests_are_listed_for_alerts(tmp_path: Path) -> None:
    now = [1000.0]
    with Journal(tmp_path / "j.db", clock=lambda: now[0]) as j:
        with j.claim("r1", "debit", {}):
            j.record_intent("r1", "U", {}, {})
        now[0] += 3600
        with j.claim("r2", "debit", {}):
            j.record_intent("r2", "U", {}, {})
        assert [r.request_id for r in j.pending(older_than_s=600)] == ["r1"]
        assert len(j.pending()) == 2


def test_hotlist_listing_update_and_unlisting_with_a_note(journal: Journal) -> None:
    journal.hotlist("U1", "LOST")
    journal.hotlist("U1", "STOLEN")  # already listed: kept as it was
    assert journal.hotlist_reason("U1") == "LOST"
    journal.hotlist("U1", "STOLEN", update=True)
    assert [(u, r) for u, r, _ in journal.hotlist_entries()] == [("U1", "STOLEN")]
    assert journal.unhotlist("U1", "found") is True
    assert journal.unhotlist("U1", "found") is False
    assert journal.hotlist_entries() == []
    assert journal.audit_events("unhotlist")[0]["detail"] == {"note": "found", "removed": True}


def test_requests_and_uids_of_a_card_and_member(journal: Journal) -> None:
    with journal.claim("r1", "debit", {"amount": 1}):
        journal.bind_request("r1", "U1")
    journal.bind_member("1001", "U1")
    journal.audit("issue", uid="U0", member_id="1001")
    assert [r.request_id for _, r in journal.requests_for_uid("U1")] == ["r1"]
    assert journal.uids_of_member("1001") == ["U0", "U1"]


def test_a_journal_of_the_previous_schema_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    """A store PC updated to this build opens its old journal: the reversal link column and
    the closed days appear (schema version 1), and every request it held is still there."""
    from daemon.cli.journal import verify
    from daemon.journal import _SCHEMA

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA)  # the tables as builds before schema version 1 made them
    old.execute(
        "INSERT INTO requests (request_id, op, params_hash, params, uid, state, outcome,"
        " created, updated) VALUES ('sale', 'debit', 'h', '{}', '04A1B2C3', 'COMMITTED',"
        " '{\"amount\": 500}', 1.0, 2.0)"
    )
    old.commit()
    old.close()
    with Journal(path) as journal:
        sale = journal.get("sale")
        assert sale is not None
        assert (sale.state, sale.outcome, sale.reverses, sale.updated) == (
            RequestState.COMMITTED, {"amount": 500}, None, 2.0,
        )  # fmt: skip
        with journal.claim("back", "refund", {"original_request_id": "sale"}):
            journal.link_reversal("back", "sale")
        assert [r.request_id for r in journal.reversals_of("sale")] == ["back"]
        assert journal.close_day("2026-11-23", 3.0, {"net_cash": 0})
        assert not journal.close_day("2026-11-23", 4.0, {"net_cash": 1})
        assert journal.closed_days() == {"2026-11-23": (3.0, {"net_cash": 0})}
    with Journal(path):  # opened again: nothing to migrate twice
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()
    verify(path)  # and `carddaemon journal verify` calls it sound


def test_a_report_query_may_only_read(journal: Journal) -> None:
    with pytest.raises(ValueError, match="SELECT"):
        journal.report("DELETE FROM requests")


def test_together_writes_all_or_nothing(tmp_path: Path) -> None:
    """A value change's card state, outcome and audit rows: one transaction, even if the
    process dies (here: an exception) between two of them."""
    path = tmp_path / "together.sqlite3"
    with Journal(path) as journal:

        def cut() -> None:
            with journal.together():
                journal.observe("04A1B2C3", "8800000001", 5, {"balance": 100})
                journal.audit("value_change", uid="04A1B2C3", detail={"amount": 1})
                raise RuntimeError("killed between the rows")

        with pytest.raises(RuntimeError):
            cut()
        assert journal.last_seen("04A1B2C3") is None
        assert journal.audit_events("value_change") == []
        with journal.together():
            journal.observe("04A1B2C3", "8800000001", 5, {"balance": 100})
            journal.audit("value_change", uid="04A1B2C3", detail={"amount": 1})
    with Journal(path) as reopened:
        seen = reopened.last_seen("04A1B2C3")
        assert seen is not None
        assert seen.last_counter == 5
        assert len(reopened.audit_events("value_change")) == 1


def test_observing_a_card_as_it_was_writes_nothing(journal: Journal) -> None:
    journal.observe("04A1B2C3", "8800000001", 5, {"balance": 100}, [(5, "aabbccdd")])
    writes: list[str] = []
    assert journal._db is not None
    journal._db.set_trace_callback(writes.append)
    journal.observe("04A1B2C3", "8800000001", 5, {"balance": 100}, [(5, "aabbccdd")])
    assert not [w for w in writes if w.split()[0].upper() in ("BEGIN", "INSERT", "UPDATE")]
    journal.observe("04A1B2C3", "8800000001", 6, {"balance": 90}, [(6, "11223344")])
    assert any(w.upper().startswith("BEGIN") for w in writes)
    seen = journal.last_seen("04A1B2C3")
    assert seen is not None
    assert seen.last_counter == 6
