"""Durable print spool in SQLite (WAL, synchronous=FULL).

A job is committed to disk before :meth:`Spool.add` returns, so a receipt the POS was told about
is never lost. State machine (see docs/printing.md)::

    QUEUED ──mark_sending──▶ SENDING ──mark_printed──▶ PRINTED
      │                        │
      └─cancel─▶ CANCELLED     └─(crash / link lost before confirmation)──▶ UNCERTAIN

SENDING is committed *before* the first byte goes to the printer. A SENDING job found when the
spool is opened again was interrupted: it may or may not be on paper, so it becomes UNCERTAIN
and is printed again only when someone asks (:meth:`resolve`), never automatically.

Idempotency: a job (or a drawer kick) may carry the client's ``request_id``. The table
``print_requests`` maps it to the job, with a fingerprint of what was asked, in the same
transaction as the job's insert: a retry after a crash, a lost reply or a timeout finds the job
of the first call (:class:`Replayed`), never queues a second receipt; the same id with another
fingerprint is :class:`~daemon.errors.RequestIdReused`. Spool files made before this table
existed are migrated when opened (``PRAGMA user_version`` 0 → 1: the table, and a
``request_id`` column on ``print_jobs``).
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from daemon.errors import InvalidArgument, RequestIdReused

__all__ = ["SCHEMA_VERSION", "Job", "JobState", "Replayed", "Spool"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS print_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    printer     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    summary     TEXT    NOT NULL DEFAULT '',
    reprint_of  INTEGER,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS print_jobs_queue ON print_jobs (printer, state, id);
"""

#: ``PRAGMA user_version`` of a spool with the idempotency table.
SCHEMA_VERSION = 1

_MIGRATE_1 = """
ALTER TABLE print_jobs ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS print_requests (
    request_id  TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    printer     TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    job_id      INTEGER,
    created_at  REAL    NOT NULL
);
PRAGMA user_version = 1;
"""


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    PRINTED = "PRINTED"
    UNCERTAIN = "UNCERTAIN"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    printer: str
    state: JobState
    data: bytes
    summary: str
    reprint_of: int | None
    created_at: float
    updated_at: float
    detail: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Replayed:
    """What :meth:`Spool.request` found for a request_id already used with the same
    fingerprint: the job of the first call (None for a drawer kick)."""

    job: Job | None


_COLUMNS = (
    "id, printer, state, data, summary, reprint_of, created_at, updated_at, detail, request_id"
)


def _job(row: tuple[object, ...]) -> Job:
    jid, printer, state, data, summary, reprint_of, created, updated, detail, rid = row
    assert isinstance(jid, int)
    assert isinstance(data, bytes)
    return Job(
        jid,
        str(printer),
        JobState(str(state)),
        data,
        str(summary),
        reprint_of if isinstance(reprint_of, int) else None,
        float(str(created)),
        float(str(updated)),
        str(detail),
        str(rid or ""),
    )


class Spool:
    """The job table of one SQLite file; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate(self._db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring a spool file of an earlier version up to :data:`SCHEMA_VERSION` (its jobs
        stay as they are; they simply have no request_id)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version < 1:
                for statement in _MIGRATE_1.split(";"):
                    if statement.strip():
                        db.execute(statement)
                logger.info("spool: migrated to version %d", SCHEMA_VERSION)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise InvalidArgument("spool", f"{self.path} is closed")
        return self._db

    # --- writes (each one committed with fsync before returning) ---------------------------

    def add(
        self,
        printer: str,
        data: bytes,
        summary: str = "",
        reprint_of: int | None = None,
        *,
        request_id: str = "",
        fingerprint: str = "",
    ) -> Job:
        """Queue a job; durable when this returns. With ``request_id`` the id is recorded in
        the same transaction; an id used before raises :class:`RequestIdReused` unless its
        fingerprint matches, which raises nothing and returns the first job (check with
        :meth:`request` first to tell the two apart)."""
        now = time.time()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                if request_id:
                    earlier = self._request(db, request_id, fingerprint)
                    if earlier is not None:
                        db.execute("ROLLBACK")
                        if earlier.job is None:
                            raise RequestIdReused(f"request_id {request_id!r} opened a drawer")
                        return earlier.job
                cur = db.execute(
                    "INSERT INTO print_jobs (printer, state, data, summary, reprint_of, created_at,"
                    " updated_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (printer, JobState.QUEUED, data, summary, reprint_of, now, now, request_id),
                )
                job_id = cur.lastrowid
                assert job_id is not None
                if request_id:
                    self._insert_request(db, request_id, "job", printer, fingerprint, job_id, now)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return self.get(job_id)

    # --- idempotency ----------------------------------------------------------------------

    def _request(
        self, db: sqlite3.Connection, request_id: str, fingerprint: str
    ) -> Replayed | None:
        row = db.execute(
            "SELECT fingerprint, job_id FROM print_requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        if row[0] != fingerprint:
            raise RequestIdReused(
                f"request_id {request_id!r} was used before for a different request; "
                "use a new id for a new receipt"
            )
        if row[1] is None:
            return Replayed(None)
        job = db.execute(
            f"SELECT {_COLUMNS} FROM print_jobs WHERE id = ?",  # noqa: S608
            (int(row[1]),),
        ).fetchone()
        return Replayed(_job(job))

    @staticmethod
    def _insert_request(
        db: sqlite3.Connection,
        request_id: str,
        kind: str,
        printer: str,
        fingerprint: str,
        job_id: int | None,
        now: float,
    ) -> None:
        db.execute(
            "INSERT INTO print_requests (request_id, kind, printer, fingerprint, job_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (request_id, kind, printer, fingerprint, job_id, now),
        )

    def request(self, request_id: str, fingerprint: str) -> Replayed | None:
        """The outcome of an earlier call with ``request_id``: None when the id is new,
        :class:`Replayed` when it was used with the same ``fingerprint``;
        :class:`RequestIdReused` when it was used for something else."""
        with self._lock:
            return self._request(self._conn(), request_id, fingerprint)

    def record_request(self, request_id: str, kind: str, printer: str, fingerprint: str) -> bool:
        """Record a request that made no job (a drawer kick) once it was done; False when the
        id was already recorded with this fingerprint (RequestIdReused with another one)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                if self._request(db, request_id, fingerprint) is not None:
                    db.execute("ROLLBACK")
                    return False
                self._insert_request(db, request_id, kind, printer, fingerprint, None, time.time())
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return True

    def _move(self, job_id: int, allowed: tuple[JobState, ...], new: JobState, detail: str) -> Job:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT state FROM print_jobs WHERE id = ?", (job_id,)).fetchone()
                if row is None:
                    raise InvalidArgument("job_id", f"no print job {job_id}")
                if JobState(row[0]) not in allowed:
                    raise InvalidArgument("job_id", f"job {job_id} is {row[0]}, not {new}-able")
                db.execute(
                    "UPDATE print_jobs SET state = ?, updated_at = ?, detail = ? WHERE id = ?",
                    (new, time.time(), detail, job_id),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        logger.info("print job %s -> %s %s", job_id, new, detail)
        return self.get(job_id)

    def mark_sending(self, job_id: int) -> Job:
        return self._move(job_id, (JobState.QUEUED,), JobState.SENDING, "")

    def mark_printed(self, job_id: int, detail: str = "") -> Job:
        return self._move(job_id, (JobState.SENDING,), JobState.PRINTED, detail)

    def mark_uncertain(self, job_id: int, detail: str) -> Job:
        return self._move(job_id, (JobState.SENDING,), JobState.UNCERTAIN, detail)

    def requeue(self, job_id: int, detail: str) -> Job:
        """Back to QUEUED: only when it is certain that no byte reached the printer."""
        return self._move(job_id, (JobState.SENDING,), JobState.QUEUED, detail)

    def cancel(self, job_id: int) -> Job:
        """Cancel a job still waiting, or close an UNCERTAIN one without reprinting it."""
        return self._move(
            job_id, (JobState.QUEUED, JobState.UNCERTAIN), JobState.CANCELLED, "cancelled"
        )

    def confirm_printed(self, job_id: int) -> Job:
        """An operator looked: the UNCERTAIN job is on paper."""
        return self._move(job_id, (JobState.UNCERTAIN,), JobState.PRINTED, "confirmed by operator")

    def add_reprint(
        self, job_id: int, data: bytes, *, request_id: str = "", fingerprint: str = ""
    ) -> Job:
        """Queue a copy of a PRINTED or UNCERTAIN job; an UNCERTAIN original is closed
        (CANCELLED, "reprinted as #n") in the same transaction, so it is never both. With
        ``request_id``, a retry returns the copy made by the first call (see :meth:`add`)."""
        now = time.time()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                if request_id:
                    earlier = self._request(db, request_id, fingerprint)
                    if earlier is not None:
                        db.execute("ROLLBACK")
                        if earlier.job is None:
                            raise RequestIdReused(f"request_id {request_id!r} opened a drawer")
                        return earlier.job
                row = db.execute(
                    "SELECT printer, state, summary FROM print_jobs WHERE id = ?", (job_id,)
                ).fetchone()
                if row is None:
                    raise InvalidArgument("job_id", f"no print job {job_id}")
                printer, state, summary = row
                if JobState(state) not in (JobState.PRINTED, JobState.UNCERTAIN):
                    raise InvalidArgument("job_id", f"job {job_id} is {state}, cannot reprint")
                cur = db.execute(
                    "INSERT INTO print_jobs (printer, state, data, summary, reprint_of,"
                    " created_at, updated_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (printer, JobState.QUEUED, data, summary, job_id, now, now, request_id),
                )
                new_id = cur.lastrowid
                assert new_id is not None
                if request_id:
                    self._insert_request(
                        db, request_id, "reprint", printer, fingerprint, new_id, now
                    )
                if JobState(state) is JobState.UNCERTAIN:
                    db.execute(
                        "UPDATE print_jobs SET state = ?, updated_at = ?, detail = ? WHERE id = ?",
                        (JobState.CANCELLED, now, f"reprinted as #{new_id}", job_id),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        logger.info("print job %s: reprint queued as %s", job_id, new_id)
        return self.get(new_id)

    def recover(self, printer: str) -> list[Job]:
        """At start: every SENDING job of ``printer`` was interrupted → UNCERTAIN."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT id FROM print_jobs WHERE printer = ? AND state = ? ORDER BY id",
                    (printer, JobState.SENDING),
                )
                .fetchall()
            )
        return [
            self.mark_uncertain(int(r[0]), "interrupted while sending (daemon restarted)")
            for r in rows
        ]

    # --- reads ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._lock:
            row = (
                self._conn()
                .execute(f"SELECT {_COLUMNS} FROM print_jobs WHERE id = ?", (job_id,))  # noqa: S608
                .fetchone()
            )
        if row is None:
            raise InvalidArgument("job_id", f"no print job {job_id}")
        return _job(row)

    def count(self, printer: str, state: JobState) -> int:
        """How many of ``printer``'s jobs are in ``state`` (queued / uncertain counters)."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT COUNT(*) FROM print_jobs WHERE printer = ? AND state = ?",
                    (printer, state),
                )
                .fetchone()
            )
        return int(row[0])

    def next_queued(self, printer: str) -> Job | None:
        """Oldest QUEUED job: jobs print in the order they were accepted."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM print_jobs WHERE printer = ? AND state = ?"  # noqa: S608
                    " ORDER BY id LIMIT 1",
                    (printer, JobState.QUEUED),
                )
                .fetchone()
            )
        return None if row is None else _job(row)

    def jobs(self, printer: str, limit: int = 50) -> list[Job]:
        """Most recent jobs first."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM print_jobs WHERE printer = ?"  # noqa: S608
                    " ORDER BY id DESC LIMIT ?",
                    (printer, limit),
                )
                .fetchall()
            )
        return [_job(r) for r in rows]

    def last_printed(self, printer: str) -> Job | None:
        """The newest job that is (or may be) on paper: what "reprint last" means."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM print_jobs WHERE printer = ?"  # noqa: S608
                    " AND state IN (?, ?) ORDER BY id DESC LIMIT 1",
                    (printer, JobState.PRINTED, JobState.UNCERTAIN),
                )
                .fetchone()
            )
        return None if row is None else _job(row)
