"""The store PC's money journal: SQLite in WAL mode with ``synchronous=FULL``.

Why: the card is only a cache guarded by a MAC; this journal is the store-side truth. Every
value change is claimed by its ``request_id``, journalled as an *intent* (fsync) before the
card is written, and closed with an *outcome*. A request whose outcome is unknown (the card left
mid-write) stays ``PENDING`` until the card is read again and the service resolves it. The
journal also keeps the last counter seen per UID (rollback detection), the member ID -> UID
binding (clone detection), the hotlist and the audit log (value changes, key uses by purpose
and version - never key bytes).

Idempotency: the first ``claim`` of a request_id stores a hash of its parameters. A retry with
the same parameters gets the recorded outcome if it committed, a resolution step if pending,
or a fresh execution if it provably wrote nothing (``ABORTED``). Different parameters under
the same id raise ``RequestIdReused``. Concurrent duplicates in this process execute once: the
second waits for the first to finish, then sees its outcome.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import (
    CardBusy,
    CardCloned,
    CounterRollback,
    HistoryForked,
    JournalFull,
    OperationTimeout,
    RequestIdReused,
)

__all__ = ["CardSeen", "Claim", "Journal", "RequestRecord", "RequestState"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    op TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    params TEXT NOT NULL,
    uid TEXT,
    state TEXT NOT NULL,
    before TEXT,
    after TEXT,
    outcome TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests (uid, state);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state, updated);
CREATE TABLE IF NOT EXISTS cards (
    uid TEXT PRIMARY KEY,
    member_id TEXT,
    last_counter INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    member_id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hotlist (
    uid TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    uid TEXT NOT NULL,
    counter INTEGER NOT NULL,
    tag TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (uid, counter, tag)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    uid TEXT,
    member_id TEXT,
    request_id TEXT,
    detail TEXT NOT NULL
);
-- the audit log is append-only: a row, once written, is never changed nor removed
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE INDEX IF NOT EXISTS audit_by_uid ON audit (uid);
CREATE INDEX IF NOT EXISTS audit_by_at ON audit (at);
"""
_MIGRATIONS = (
    # 1: reversals (refund, cancelled top-up) name the operation they reverse; closed days
    "ALTER TABLE requests ADD COLUMN reverses TEXT;"
    "CREATE INDEX IF NOT EXISTS requests_reverses ON requests (reverses);"
    "CREATE TABLE IF NOT EXISTS closed_days (day TEXT PRIMARY KEY, closed_at REAL NOT NULL,"
    " totals TEXT NOT NULL);",
)
"""Schema steps after ``_SCHEMA``, in order; ``PRAGMA user_version`` counts those applied."""
_PENDING_BY_UID = "SELECT request_id FROM requests WHERE state=? AND uid=? ORDER BY created"
_HOTLIST_ADD = "INSERT OR IGNORE INTO hotlist (uid, reason, at) VALUES (?,?,?)"
_HOTLIST_UPDATE = (
    "INSERT INTO hotlist (uid, reason, at) VALUES (?,?,?)"
    " ON CONFLICT(uid) DO UPDATE SET reason=excluded.reason"
)
_PENDING_BY_AGE = "SELECT request_id FROM requests WHERE state=? AND updated<=? ORDER BY created"


#: free space a value operation needs on the journal's disk before it starts: the rest is
#: kept for what reads journal (last counter seen, key-use audit rows) and for WAL checkpoints
MIN_FREE_BYTES = 16 * 2**20
_SQLITE_FULL = 13


class RequestState(enum.StrEnum):
    CLAIMED = "CLAIMED"  # id reserved, card not written yet
    PENDING = "PENDING"  # intent journalled; outcome unknown until the card is read
    COMMITTED = "COMMITTED"  # applied and verified (or resolved as applied)
    ABORTED = "ABORTED"  # provably not applied; the id may be retried


@dataclass(frozen=True, slots=True)
class RequestRecord:
    request_id: str
    op: str
    params: dict[str, Any]
    uid: str | None
    state: RequestState
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    outcome: dict[str, Any] | None
    reverses: str | None = None  # the request_id this refund or cancellation reverses
    created: float = 0.0  # claimed (epoch seconds)
    updated: float = 0.0  # last state change: for a COMMITTED request, when it committed


@dataclass(frozen=True, slots=True)
class Claim:
    """What the caller must do: ``execute``, ``replay`` the outcome, or ``resolve`` first."""

    action: str
    record: RequestRecord


@dataclass(frozen=True, slots=True)
class CardSeen:
    uid: str
    member_id: str | None
    last_counter: int
    state: dict[str, Any]


@dataclass(slots=True)
class _CardHold:
    """One UID's operation in progress at this PC (see :meth:`Journal.card_lock`)."""

    owner: int  # thread ident
    depth: int = 1
    contended: bool = False


def _canon(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def _load(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


class Journal:
    """One SQLite file; thread-safe; a context manager with an idempotent ``close``."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        wait_timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._wait_timeout = wait_timeout_s
        self._lock = threading.RLock()
        self._active: dict[str, threading.Event] = {}
        self._cards: dict[str, _CardHold] = {}
        self._joined = 0  # together() depth (read and changed only under _lock)
        #: called inside the transaction of every finished request, hotlist change and audit
        #: row, as ``(db, kind, record)``: the chain ledger's outbox (daemon/ledger/outbox.py)
        #: writes its row in the same commit, so nothing is shipped that did not happen
        self.on_write: Callable[[sqlite3.Connection, str, dict[str, Any]], None] | None = None
        self._db: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._migrate(self._db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring an older journal file up to this build's schema (each step once, atomically)."""
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        for number, step in enumerate(_MIGRATIONS[version:], start=version + 1):
            db.executescript(f"BEGIN IMMEDIATE;{step}PRAGMA user_version={number};COMMIT;")
            logger.info("journal schema migrated to version %d", number)

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Make the writes inside one transaction: all of them or none reach the disk, with
        one fsync (a value change's outcome, its audit row and the card state it left). Keep
        the body short: it holds the journal for every other thread."""
        with self._tx():
            self._joined += 1
            try:
                yield
            finally:
                self._joined -= 1

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise RuntimeError(f"journal {self.path} is closed")
            if self._joined:  # inside together(): its transaction commits (or rolls back) all
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # a failed COMMIT may leave it open
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == _SQLITE_FULL:
                    raise JournalFull(self._full("nothing could be written")) from exc
                raise

    def check_space(self) -> None:
        """Refuse a value operation before it starts (``JournalFull``) when the journal's disk
        has less than ``MIN_FREE_BYTES`` free: its intent and outcome must both fit."""
        free = shutil.disk_usage(self.path.parent).free
        if free < MIN_FREE_BYTES:
            raise JournalFull(self._full(f"{free // 2**20} MiB free, {MIN_FREE_BYTES // 2**20} "
                                         "MiB needed"))  # fmt: skip

    def _full(self, detail: str) -> str:
        return (
            f"the disk holding the journal {self.path} is full ({detail}): value operations "
            "are refused before the card is touched until space is freed"
        )

    def _emit(self, db: sqlite3.Connection, kind: str, record: dict[str, Any]) -> None:
        if self.on_write is not None:
            self.on_write(db, kind, record)

    # --- requests -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def claim(self, request_id: str, op: str, params: Mapping[str, Any]) -> Iterator[Claim]:
        """Reserve ``request_id`` for the duration of the block (see module docstring).

        What a client's request_id may be is checked once, where the request is made
        (:mod:`daemon.membercard.requests`); ids the daemon derives from it (``<id>:issue``)
        may be longer."""
        event = self._enter(request_id)
        try:
            yield self._claim(request_id, op, params)
        finally:
            with self._lock:
                self._active.pop(request_id, None)
            event.set()

    def _enter(self, request_id: str) -> threading.Event:
        deadline = time.monotonic() + self._wait_timeout
        while True:
            with self._lock:
                other = self._active.get(request_id)
                if other is None:
                    event = threading.Event()
                    self._active[request_id] = event
                    return event
            if not other.wait(max(0.0, deadline - time.monotonic())):
                raise OperationTimeout(f"request_id {request_id!r} is still executing")

    def _claim(self, request_id: str, op: str, params: Mapping[str, Any]) -> Claim:
        canon = _canon(params)
        digest = hashlib.sha256(f"{op}\n{canon}".encode()).hexdigest()
        now = self._clock()
        with self._tx() as db:
            row = db.execute(
                "SELECT params_hash, state FROM requests WHERE request_id=?", (request_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO requests (request_id, op, params_hash, params, state, created,"
                    " updated) VALUES (?,?,?,?,?,?,?)",
                    (request_id, op, digest, canon, RequestState.CLAIMED, now, now),
                )
            elif row[0] != digest:
                raise RequestIdReused(
                    f"request_id {request_id!r} was first used for a different {op} request"
                )
        record = self.get(request_id)
        assert record is not None
        if record.state is RequestState.COMMITTED:
            return Claim("replay", record)
        if record.state is RequestState.PENDING:
            return Claim("resolve", record)
        return Claim("execute", record)

    def get(self, request_id: str) -> RequestRecord | None:
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT request_id, op, params, uid, state, before, after, outcome, reverses,"
                " created, updated FROM requests WHERE request_id=?",
                (request_id,),
            ).fetchone()
        if row is None:
            return None
        params = _load(row[2]) or {}
        return RequestRecord(
            row[0], row[1], params, row[3], RequestState(row[4]), _load(row[5]), _load(row[6]),
            _load(row[7]), row[8], float(row[9]), float(row[10]),
        )  # fmt: skip

    def left_behind(self, request_id: str) -> bool:
        """A ``CLAIMED`` request with no intent that no call of this process holds: its
        process ended (``kill -9``, a crash) between the claim and the intent, so nothing of
        it reached a card and nothing will finish it (``close_abandoned`` closes it later)."""
        with self._lock:
            record = self.get(request_id)
            return (
                record is not None
                and record.state is RequestState.CLAIMED
                and record.after is None
                and request_id not in self._active
            )

    def link_reversal(self, request_id: str, original_request_id: str) -> None:
        """Record that ``request_id`` (a refund or cancellation) reverses the original."""
        with self._tx() as db:
            db.execute(
                "UPDATE requests SET reverses=? WHERE request_id=?",
                (original_request_id, request_id),
            )

    def reversals_of(self, original_request_id: str) -> list[RequestRecord]:
        """Every request linked to ``original_request_id`` as its reversal, oldest first."""
        with self._lock:
            assert self._db is not None
            ids = [r[0] for r in self._db.execute(
                "SELECT request_id FROM requests WHERE reverses=? ORDER BY created",
                (original_request_id,),
            )]  # fmt: skip
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def report(self, query: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only report query (the daily settlement), under the journal lock."""
        if not query.lstrip().upper().startswith("SELECT"):
            raise ValueError("a report query must be a SELECT")
        with self._lock:
            assert self._db is not None
            return [tuple(r) for r in self._db.execute(query, tuple(args))]

    def close_day(self, day: str, closed_at: float, totals: Mapping[str, Any]) -> bool:
        """Freeze business day ``day`` with its ``totals``; False if it was closed before."""
        with self._tx() as db:
            done = db.execute(
                "INSERT OR IGNORE INTO closed_days (day, closed_at, totals) VALUES (?,?,?)",
                (day, closed_at, _canon(totals)),
            ).rowcount
        return done > 0

    def closed_days(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """Every closed business day (ISO date) -> (when it was closed, its frozen totals)."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute("SELECT day, closed_at, totals FROM closed_days").fetchall()
        return {str(r[0]): (float(r[1]), dict(json.loads(r[2]))) for r in rows}

    def now(self) -> float:
        """The journal's clock (the time it stamps on every row)."""
        return self._clock()

    def bind_request(self, request_id: str, uid: str) -> None:
        """Record the card a request first met (kept once set; the intent names it too)."""
        with self._tx() as db:
            db.execute(
                "UPDATE requests SET uid=?, updated=? WHERE request_id=? AND uid IS NULL",
                (uid, self._clock(), request_id),
            )

    def record_intent(
        self,
        request_id: str,
        uid: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        *,
        expect_counter: int | None = None,
    ) -> None:
        """Durably record what is about to be written; call before the first card write.

        ``expect_counter`` (value changes): the counter the card showed in this tap. In the same
        SQLite transaction the intent is refused (``CardBusy``, nothing recorded) when this PC
        has meanwhile seen the card at a higher counter, another open intent on this UID
        starts from the same counter, or a second tap of the UID was refused while this
        operation held it (a clone on another reader): never two writes on one counter."""
        with self._lock:
            hold = self._cards.get(uid)
            if expect_counter is not None and hold is not None and hold.contended:
                raise CardBusy(
                    f"card {uid} was presented on another reader during this operation "
                    "(clone suspected, audited); nothing written, present one card only"
                )
        with self._tx() as db:
            if expect_counter is not None:
                self._check_counter_free(db, request_id, uid, expect_counter)
            db.execute(
                "UPDATE requests SET uid=?, state=?, before=?, after=?, updated=? "
                "WHERE request_id=?",
                (uid, RequestState.PENDING, _canon(before), _canon(after), self._clock(),
                 request_id),
            )  # fmt: skip

    @staticmethod
    def _check_counter_free(
        db: sqlite3.Connection, request_id: str, uid: str, counter: int
    ) -> None:
        row = db.execute("SELECT last_counter FROM cards WHERE uid=?", (uid,)).fetchone()
        if row is not None and row[0] > counter:
            raise CardBusy(
                f"card {uid}: this PC saw counter {row[0]} while this operation read {counter} "
                "(another operation used the card meanwhile); nothing written, read it again"
            )
        others = db.execute(
            "SELECT request_id FROM requests WHERE state=? AND uid=? AND request_id<>?"
            " AND json_extract(before, '$.state.counter')>=?",
            (RequestState.PENDING, uid, request_id, counter),
        ).fetchall()
        if others:
            raise CardBusy(
                f"card {uid}: request {others[0][0]} is writing counter {counter + 1} too; "
                "nothing written, present the card again"
            )

    @contextlib.contextmanager
    def card_lock(self, uid: str) -> Iterator[None]:
        """Hold ``uid`` for one operation, from reading the card to journalling the outcome.

        A second hold of the same UID from another thread (another reader, or a second thread
        on the same reader) is refused at once with ``CardBusy`` and marks the running one
        *contended*: it is then refused too at its intent unless it already wrote one (a card
        seen on two readers at once is a clone signal). The same thread may nest holds."""
        me = threading.get_ident()
        with self._lock:
            hold = self._cards.get(uid)
            if hold is not None and hold.owner != me:
                hold.contended = True
                raise CardBusy(
                    f"card {uid} is in use by another operation at this PC (another reader or "
                    "thread); nothing done, present the card again when that one is finished"
                )
            if hold is None:
                self._cards[uid] = _CardHold(me)
            else:
                hold.depth += 1
        try:
            yield
        finally:
            with self._lock:
                hold = self._cards[uid]
                hold.depth -= 1
                if hold.depth == 0:
                    del self._cards[uid]

    def finish(self, request_id: str, state: RequestState, outcome: Mapping[str, Any]) -> None:
        """Close a request as COMMITTED or ABORTED, with its outcome (replayed on retry)."""
        if state not in (RequestState.COMMITTED, RequestState.ABORTED):
            raise ValueError(f"cannot finish a request as {state}")
        with self._tx() as db:
            db.execute(
                "UPDATE requests SET state=?, outcome=?, updated=? WHERE request_id=?",
                (state, _canon(outcome), self._clock(), request_id),
            )
            self._emit(db, "outcome", {"request_id": request_id})

    def close_abandoned(self, older_than_s: float) -> tuple[str, ...]:
        """Close ``CLAIMED`` requests untouched for ``older_than_s`` and with no intent as
        never started (``ABORTED``, error ``ABANDONED``), each audited as ``claim_abandoned``.

        A claim is left behind when the process dies between claiming and its intent (``kill
        -9``): nothing of it reached a card. A claim executing in this process is never
        closed; a retry with the same id executes the request as for any ABORTED one."""
        cutoff = self._clock() - older_than_s
        with self._tx() as db:
            rows = db.execute(
                "SELECT request_id, op, uid FROM requests WHERE state=? AND updated<=?"
                " AND after IS NULL ORDER BY created",
                (RequestState.CLAIMED, cutoff),
            ).fetchall()
            stale = [r for r in rows if r[0] not in self._active]
            outcome = _canon({"error": "ABANDONED"})
            db.executemany(
                "UPDATE requests SET state=?, outcome=?, updated=? WHERE request_id=? AND state=?",
                [(RequestState.ABORTED, outcome, self._clock(), r[0], RequestState.CLAIMED)
                 for r in stale],
            )  # fmt: skip
        for request_id, op, uid in stale:
            self.audit(
                "claim_abandoned",
                uid=uid,
                request_id=request_id,
                detail={"op": op, "older_than_s": older_than_s},
            )
        if stale:
            logger.info("journal %s: closed %d abandoned claims", self.path, len(stale))
        return tuple(r[0] for r in stale)

    def _pending(self, query: str, args: tuple[object, ...]) -> list[RequestRecord]:
        with self._lock:
            assert self._db is not None
            ids = [r[0] for r in self._db.execute(query, (RequestState.PENDING, *args))]
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def pending_for_uid(self, uid: str) -> list[RequestRecord]:
        """Unresolved requests on this card, oldest first (resolved when it is read)."""
        return self._pending(_PENDING_BY_UID, (uid,))

    def requests_for_uid(self, uid: str) -> list[tuple[float, RequestRecord]]:
        """Every request that met card ``uid``, with its last update time, newest first."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT request_id, updated FROM requests WHERE uid=? ORDER BY updated DESC",
                (uid,),
            ).fetchall()
        found = [(float(r[1]), self.get(r[0])) for r in rows]
        return [(at, record) for at, record in found if record is not None]

    def uids_of_member(self, member_id: str) -> list[str]:
        """Every card UID this PC has known for ``member_id`` (bound, seen or audited)."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT uid FROM members WHERE member_id=? UNION SELECT uid FROM cards WHERE"
                " member_id=? UNION SELECT uid FROM audit WHERE member_id=? AND uid IS NOT NULL",
                (member_id, member_id, member_id),
            ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def pending(self, older_than_s: float = 0.0) -> list[RequestRecord]:
        """Unresolved requests whose intent is at least ``older_than_s`` old (alerts and
        reconciliation: a card that never comes back leaves one here)."""
        return self._pending(_PENDING_BY_AGE, (self._clock() - older_than_s,))

    # --- cards: last seen counter, member binding, hotlist --------------------------------------

    def last_seen(self, uid: str) -> CardSeen | None:
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT uid, member_id, last_counter, state FROM cards WHERE uid=?", (uid,)
            ).fetchone()
        return None if row is None else CardSeen(row[0], row[1], row[2], json.loads(row[3]))

    def check_counter(self, uid: str, counter: int) -> None:
        """Refuse a card whose counter is below the highest this PC has seen for its UID."""
        seen = self.last_seen(uid)
        if seen is not None and counter < seen.last_counter:
            raise CounterRollback(
                f"card {uid} shows counter {counter}, this terminal saw {seen.last_counter}"
            )

    def observe(
        self,
        uid: str,
        member_id: str | None,
        counter: int,
        state: Mapping[str, Any],
        records: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Remember a verified card state; the counter only ever moves up. ``records``: the
        (counter, write tag) of each committed record verified on the card (see
        :meth:`check_history`), in the same transaction. Nothing is written (no fsync) when
        the journal knows all of it already: a card read again as it was."""
        with self._lock:
            if self._knows(uid, member_id, counter, state, records):
                return
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO records (uid, counter, tag, status, at) VALUES (?,?,?,?,?)",
                [(uid, c, tag, "seen", self._clock()) for c, tag in records],
            )
            row = db.execute("SELECT last_counter FROM cards WHERE uid=?", (uid,)).fetchone()
            if row is not None and row[0] > counter:
                return
            db.execute(
                "INSERT INTO cards (uid, member_id, last_counter, state, updated) VALUES"
                " (?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET member_id=excluded.member_id,"
                " last_counter=excluded.last_counter, state=excluded.state,"
                " updated=excluded.updated",
                (uid, member_id, counter, _canon(state), self._clock()),
            )

    def _knows(
        self,
        uid: str,
        member_id: str | None,
        counter: int,
        state: Mapping[str, Any],
        records: Sequence[tuple[int, str]],
    ) -> bool:
        """Does :meth:`observe` have nothing to add? (caller holds ``_lock``)"""
        if self._db is None:
            return False  # closed: the write says so
        row = self._db.execute(
            "SELECT member_id, last_counter, state FROM cards WHERE uid=?", (uid,)
        ).fetchone()
        if row is None or tuple(row) != (member_id, counter, _canon(state)):
            return False
        return all(
            self._db.execute(
                "SELECT 1 FROM records WHERE uid=? AND counter=? AND tag=?", (uid, c, tag)
            ).fetchone()
            is not None
            for c, tag in records
        )

    def forget_card(self, uid: str) -> None:
        """Drop the last-seen state of an erased card (its counter restarts on re-issue)."""
        with self._tx() as db:
            db.execute("DELETE FROM cards WHERE uid=?", (uid,))
            db.execute("DELETE FROM records WHERE uid=?", (uid,))

    # --- records: which (UID, counter, write tag) this PC knows as committed or as burned -----

    def burn_record(self, uid: str, counter: int, tag: str) -> None:
        """Remember a record whose intent was closed as not applied: it must never appear on
        the card (committed records are remembered by :meth:`observe`)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO records (uid, counter, tag, status, at) VALUES (?,?,?,?,?)",
                (uid, counter, tag, "burned", self._clock()),
            )

    def check_history(self, uid: str, records: list[tuple[int, str]]) -> None:
        """Refuse records that fork this card's history as this PC knows it: a burned tag, or
        another tag at a counter whose committed record this PC has seen."""
        with self._lock:
            assert self._db is not None
            for counter, tag in records:
                rows = self._db.execute(
                    "SELECT tag, status FROM records WHERE uid=? AND counter=?", (uid, counter)
                ).fetchall()
                for known, status in rows:
                    if status == "burned" and known == tag:
                        raise HistoryForked(
                            f"card {uid} shows record {counter} with write tag {tag}, whose "
                            "intent this PC closed as not applied (record hidden, then put back)"
                        )
                    if status == "seen" and known != tag:
                        raise HistoryForked(
                            f"card {uid} shows record {counter} with write tag {tag}; this PC "
                            f"knows record {counter} of this card with tag {known} (two "
                            "histories of one card: a dump restored and used elsewhere)"
                        )

    def bound_uid(self, member_id: str) -> str | None:
        with self._lock:
            assert self._db is not None
            row = self._db.execute(
                "SELECT uid FROM members WHERE member_id=?", (member_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def check_binding(self, member_id: str, uid: str) -> None:
        """Refuse a member ID that this PC knows on another card (clone or double issue)."""
        bound = self.bound_uid(member_id)
        if bound is not None and bound != uid:
            raise CardCloned(f"member {member_id} is bound to card {bound}, presented on {uid}")

    def bind_member(self, member_id: str, uid: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO members (member_id, uid, updated) VALUES (?,?,?) ON CONFLICT"
                "(member_id) DO UPDATE SET uid=excluded.uid, updated=excluded.updated",
                (member_id, uid, self._clock()),
            )

    def unbind_member(self, member_id: str, uid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM members WHERE member_id=? AND uid=?", (member_id, uid))

    def hotlist(self, uid: str, reason: str, *, update: bool = False) -> None:
        """Block ``uid``; a UID already listed keeps its entry unless ``update`` (new reason,
        same listing time)."""
        with self._tx() as db:
            db.execute(_HOTLIST_UPDATE if update else _HOTLIST_ADD, (uid, reason, self._clock()))
            self._emit(db, "hotlist", {"uid": uid, "reason": reason})
        self.audit("hotlist", uid=uid, detail={"reason": reason})

    def unhotlist(self, uid: str, note: str | None = None) -> bool:
        """Unblock ``uid`` (audited with ``note``); False when it was not listed."""
        with self._tx() as db:
            removed = db.execute("DELETE FROM hotlist WHERE uid=?", (uid,)).rowcount > 0
            if removed:
                self._emit(db, "unhotlist", {"uid": uid, "note": note})
        self.audit("unhotlist", uid=uid, detail={} if note is None else {"note": note,
                   "removed": removed})  # fmt: skip
        return removed

    def hotlist_entries(self) -> list[tuple[str, str, float]]:
        """Every listed ``(uid, reason, listed at)``, newest first."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT uid, reason, at FROM hotlist ORDER BY at DESC, uid"
            ).fetchall()
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    def hotlist_reason(self, uid: str) -> str | None:
        with self._lock:
            assert self._db is not None
            row = self._db.execute("SELECT reason FROM hotlist WHERE uid=?", (uid,)).fetchone()
        return None if row is None else str(row[0])

    # --- audit ----------------------------------------------------------------------------------

    def audit(
        self,
        event: str,
        *,
        uid: str | None = None,
        member_id: str | None = None,
        request_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one audit row. ``detail`` must never hold key bytes (callers pass versions)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO audit (at, event, uid, member_id, request_id, detail) VALUES"
                " (?,?,?,?,?,?)",
                (self._clock(), event, uid, member_id, request_id, _canon(detail or {})),
            )
            record = {"event": event, "uid": uid, "member_id": member_id,
                      "request_id": request_id, "detail": dict(detail or {})}  # fmt: skip
            self._emit(db, "audit", record)

    def audit_events(
        self,
        event: str | None = None,
        uid: str | None = None,
        *,
        events: Collection[str] = (),
        member_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Audit rows in the order they were written, filtered (all filters combine): by one
        ``event`` or any of ``events``, card, member, time range ``since <= at < until`` and,
        for paging, rows after ``after_id`` (each row carries its ``id``)."""
        query = "SELECT id, at, event, uid, member_id, request_id, detail FROM audit WHERE id>?"
        args: list[Any] = [after_id]
        kinds = [*events, *([event] if event is not None else [])]
        if kinds:
            query += f" AND event IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        for column, value in (("uid", uid), ("member_id", member_id)):
            if value is not None:
                query += f" AND {column}=?"
                args.append(value)
        if since is not None:
            query += " AND at>=?"
            args.append(since)
        if until is not None:
            query += " AND at<?"
            args.append(until)
        query += " ORDER BY id" + ("" if limit is None else f" LIMIT {int(limit)}")
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(query, args).fetchall()
        return [
            {"id": r[0], "at": r[1], "event": r[2], "uid": r[3], "member_id": r[4],
             "request_id": r[5], "detail": json.loads(r[6])}
            for r in rows
        ]  # fmt: skip
