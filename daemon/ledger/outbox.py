"""The store side of the chain ledger: an outbox table inside the store PC's own journal.

Why in the journal's file and transaction: an event must be shipped if and only if it happened
here. The journal calls :meth:`Outbox.record` inside the very SQLite transaction that commits
an outcome, a hotlist change or an audit row, so a crash either keeps both or neither; the
shipper then sends rows strictly in sequence and remembers how far the ledger has confirmed.
A row sent twice (the link dropped after the ledger's commit) is harmless: the ledger's unique
keys ignore it.

What leaves the store: committed records (value operations, membership changes, issues, and
pending intents resolved as applied) as *events*; intents resolved as not applied, hotlist
changes, fraud refusals, replacements and undetermined outcomes as *reports*.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from daemon.journal import Journal

__all__ = ["CHAIN_PREFIX", "Outbox", "OutboxRow"]

#: reason prefix of hotlist entries that came *from* the ledger (never shipped back)
CHAIN_PREFIX: Final = "chain hotlist"
_AUDITS_SHIPPED: Final = frozenset(
    {"fraud", "replace", "replacement_learnt", "pending_undetermined", "request_id_reused"}
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ledger_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,          -- event | report
    uid TEXT,
    op TEXT,
    amount INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_outbox_spent ON ledger_outbox (uid, op, at);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    at: float
    kind: str
    uid: str | None
    body: dict[str, Any]


def _json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def _event(op: str, row: tuple[Any, ...]) -> dict[str, Any] | None:
    """The card record a committed request wrote, or None when it wrote none."""
    request_id, uid, before, after, outcome = row[0], row[1], _json(row[2]), _json(row[3]), \
        _json(row[4]) or {}  # fmt: skip
    if after is None or uid is None:
        return None
    new = after.get("state")
    if isinstance(new, dict) and "counter" in new:
        old = (before or {}).get("state")
        old = old if isinstance(old, dict) else {}
        return {
            "request_id": request_id, "op": op, "uid": uid, "counter": int(new["counter"]),
            "tag": str(new["tag"]), "prev_counter": int(old.get("counter", 0)),
            "prev_tag": old.get("tag"), "amount": int(outcome.get("amount", 0) or 0),
            "balance_before": old.get("balance"), "balance_after": new.get("balance"),
            "points_before": old.get("points"), "points_after": new.get("points"),
            "member_id": outcome.get("member_id"),
        }  # fmt: skip
    if op == "issue" and "tag" in after:  # a new card's first record, counter 1
        result = after.get("result") or outcome
        return {
            "request_id": request_id, "op": "issue", "uid": uid, "counter": 1,
            "tag": str(after["tag"]), "prev_counter": 0, "prev_tag": None, "amount": 0,
            "balance_before": None, "balance_after": result.get("balance"),
            "points_before": None, "points_after": result.get("points"),
            "member_id": result.get("member_id"),
        }  # fmt: skip
    return None


class Outbox:
    """Installs itself as ``journal.on_write``; reads and advances with its own connection."""

    def __init__(self, journal: Journal, *, clock: Callable[[], float] = time.time) -> None:
        self.path = journal.path
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.wake: Callable[[], None] = lambda: None  # the shipper's nudge
        self._journal = journal
        journal.on_write = self.record

    def close(self) -> None:
        if self._journal.on_write == self.record:
            self._journal.on_write = None
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- the journal's side: inside its transaction -------------------------------------------

    def record(self, db: sqlite3.Connection, kind: str, data: dict[str, Any]) -> None:
        """Turn one journal write into an outbox row (or nothing) on the journal's ``db``."""
        found = self._translate(db, kind, data)
        if found is None:
            return
        what, uid, op, amount, body = found
        db.execute(
            "INSERT INTO ledger_outbox (at, kind, uid, op, amount, body) VALUES (?,?,?,?,?,?)",
            (self._clock(), what, uid, op, amount, json.dumps(body, sort_keys=True, default=str)),
        )
        self.wake()

    @staticmethod
    def _translate(
        db: sqlite3.Connection, kind: str, data: dict[str, Any]
    ) -> tuple[str, str | None, str | None, int, dict[str, Any]] | None:
        if kind == "outcome":
            row = db.execute(
                "SELECT request_id, uid, before, after, outcome, op, state FROM requests"
                " WHERE request_id=?",
                (data["request_id"],),
            ).fetchone()
            if row is None:
                return None
            op, state = str(row[5]), str(row[6])
            if state == "COMMITTED":
                event = _event(op, row)
                if event is not None:
                    return "event", event["uid"], op, event["amount"], event
                outcome = _json(row[4]) or {}
                return "report", row[1], op, 0, {"kind": op, "request_id": row[0], **outcome}
            if state == "ABORTED" and row[3] is not None:  # an intent closed as not applied
                after = (_json(row[3]) or {}).get("state")
                return "report", row[1], op, 0, {
                    "kind": "not_applied", "request_id": row[0], "op": op,
                    "record": after if isinstance(after, dict) else None,
                }  # fmt: skip
            return None
        if kind == "hotlist":
            if str(data["reason"]).startswith(CHAIN_PREFIX):
                return None  # it came from the ledger
            return "report", data["uid"], None, 0, {"kind": "hotlist", "reason": data["reason"]}
        if kind == "unhotlist":
            if str(data["note"] or "").startswith(CHAIN_PREFIX):
                return None  # the ledger's own removal, pulled back
            return "report", data["uid"], None, 0, {"kind": "unhotlist", "note": data["note"]}
        if kind == "audit" and data["event"] in _AUDITS_SHIPPED:
            body = {"kind": data["event"], "member_id": data["member_id"],
                    "request_id": data["request_id"], **data["detail"]}  # fmt: skip
            return "report", data["uid"], None, 0, body
        return None

    # --- the shipper's side -----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"outbox of {self.path} is closed")
        return self._db

    def _meta(self, key: str) -> int:
        with self._lock:
            row = (
                self._conn().execute("SELECT value FROM ledger_meta WHERE key=?", (key,)).fetchone()
            )
        return 0 if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT INTO ledger_meta (key, value) VALUES (?,?) ON CONFLICT(key)"
                " DO UPDATE SET value=excluded.value",
                (key, value),
            )

    @property
    def shipped(self) -> int:
        """The highest sequence number the ledger has confirmed."""
        return self._meta("shipped_seq")

    def mark_shipped(self, seq: int) -> None:
        self._set_meta("shipped_seq", max(seq, self.shipped))

    @property
    def hotlist_version(self) -> int:
        return self._meta("hotlist_version")

    def set_hotlist_version(self, version: int) -> None:
        self._set_meta("hotlist_version", version)

    def pending(self, limit: int) -> list[OutboxRow]:
        """The next rows to ship, in order."""
        after = self.shipped
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT seq, at, kind, uid, body FROM ledger_outbox WHERE seq>? ORDER BY seq"
                    " LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        return [OutboxRow(int(r[0]), float(r[1]), str(r[2]), r[3], json.loads(r[4])) for r in rows]

    def backlog(self) -> int:
        """Rows not yet confirmed by the ledger."""
        after = self.shipped
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT count(*) FROM ledger_outbox WHERE seq>?", (after,))
                .fetchone()
            )
        return int(row[0])

    def spent_since(self, uid: str, since: float) -> int:
        """Fen debited from card ``uid`` at this PC since ``since`` (the offline floor limit)."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT coalesce(sum(amount), 0) FROM ledger_outbox WHERE uid=? AND op='debit'"
                    " AND kind='event' AND at>=?",
                    (uid, since),
                )
                .fetchone()
            )
        return int(row[0])
