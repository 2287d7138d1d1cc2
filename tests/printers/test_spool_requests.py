"""Idempotency records in the spool: request_id → job, durable, and old spool files migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.errors import RequestIdReused
from daemon.printers.spool import SCHEMA_VERSION, JobState, Spool

OLD_SCHEMA = """
CREATE TABLE print_jobs (
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
INSERT INTO print_jobs (printer, state, data, summary, created_at, updated_at)
    VALUES ('receipt', 'QUEUED', x'1b40', 'old', 1.0, 1.0);
"""


def test_a_spool_file_of_the_old_version_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Spool(path) as spool:
        old = spool.next_queued("receipt")
        assert old is not None
        assert (old.summary, old.request_id, old.state) == ("old", "", JobState.QUEUED)
        job = spool.add("receipt", b"\x1b@x", request_id="r-1", fingerprint="a")
        assert job.request_id == "r-1"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Spool(path) as spool:  # opening a migrated file again changes nothing
        assert spool.add("receipt", b"\x1b@x", request_id="r-1", fingerprint="a").id == job.id


def test_same_request_id_same_fingerprint_returns_the_first_job(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        job = spool.add("receipt", b"\x1b@x", request_id="r", fingerprint="a")
        assert spool.add("receipt", b"\x1b@y", request_id="r", fingerprint="a").id == job.id
        assert spool.count("receipt", JobState.QUEUED) == 1
        earlier = spool.request("r", "a")
        assert earlier is not None
        assert earlier.job is not None
        assert earlier.job.id == job.id
        assert spool.request("new", "a") is None
        with pytest.raises(RequestIdReused):
            spool.add("receipt", b"\x1b@z", request_id="r", fingerprint="b")
        with pytest.raises(RequestIdReused):
            spool.request("r", "b")


def test_a_drawer_request_is_recorded_once(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        assert spool.record_request("d", "drawer", "receipt", "drawer:receipt")
        assert not spool.record_request("d", "drawer", "receipt", "drawer:receipt")
        replay = spool.request("d", "drawer:receipt")
        assert replay is not None
        assert replay.job is None
        with pytest.raises(RequestIdReused):
            spool.add("receipt", b"\x1b@", request_id="d", fingerprint="x")


def test_a_reprint_retry_returns_the_first_copy(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        job = spool.add("receipt", b"\x1b@x")
        spool.mark_sending(job.id)
        spool.mark_uncertain(job.id, "test")
        copy = spool.add_reprint(job.id, b"\x1b@copy", request_id="re", fingerprint="r")
        again = spool.add_reprint(job.id, b"\x1b@copy", request_id="re", fingerprint="r")
        assert again.id == copy.id
        assert spool.get(job.id).state is JobState.CANCELLED
