"""``carddaemon journal backup`` / ``verify``: a consistent copy of the live journal while a real
``carddaemon serve`` debits a card through gRPC, and damaged files refused by name."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import grpc

from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import simulator_service_pb2 as s
from daemon.api.v1 import simulator_service_pb2_grpc as sg
from daemon.cli.journal import verify
from daemon.journal import Journal
from tests.api import conftest as api_conftest
from tests.api.conftest import BIN, Served

live_daemon = api_conftest.served  # fixture: `carddaemon serve` on the simulated store

CARDDAEMON = str(BIN / "carddaemon")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CARDDAEMON, *args], capture_output=True, text=True, timeout=120)


def _committed(path: Path) -> set[str]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT request_id FROM requests WHERE state='COMMITTED' AND op='debit'"
        ).fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


def test_backup_while_the_daemon_debits_is_consistent(live_daemon: Served, tmp_path: Path) -> None:
    served = live_daemon
    with grpc.insecure_channel(f"unix:{served.socket('pos')}") as channel:
        sim = sg.SimulatorServiceStub(channel)
        cards = sim.ListSimulatedCards(s.ListSimulatedCardsRequest(), timeout=10).cards
        member = next(c for c in cards if c.card_id == "gold")
        sim.PresentCard(s.PresentCardRequest(reader="readers/front", card_id="gold"), timeout=15)
        pos = mg.MemberCardServiceStub(channel)
        acked: list[str] = []
        stop = threading.Event()
        failures: list[BaseException] = []

        def till() -> None:
            n = 0
            try:
                while not stop.is_set() and n < 400:
                    rid = f"sale-{n}"
                    pos.Debit(
                        m.DebitRequest(
                            expected_uid=member.uid,
                            reader="readers/front",
                            request_id=rid,
                            amount=common_pb2.Money(currency_code="CNY", amount_fen=1),
                        ),
                        timeout=15,
                    )
                    acked.append(rid)
                    n += 1
            except BaseException as exc:  # reported below
                failures.append(exc)

        thread = threading.Thread(target=till, name="till")
        thread.start()
        try:
            copies = []
            for i in range(3):
                while len(acked) < 5 * (i + 1) and thread.is_alive():
                    threading.Event().wait(0.02)
                before = set(acked)
                target = tmp_path / f"journal-{i}.sqlite3"
                done = _cli("journal", "backup", str(target), "--config", str(served.config))
                assert done.returncode == 0, done.stderr
                assert "ok (integrity ok, schema ok" in done.stdout
                after = set(acked)
                copies.append((target, before, after))
        finally:
            stop.set()
            thread.join(60)
        assert not failures, failures
    for target, before, after in copies:
        assert not (target.parent / (target.name + "-wal")).exists()  # one self-contained file
        committed = _committed(target)
        # every debit acknowledged before the copy began is in it; nothing from after it ended
        assert before <= committed, sorted(before - committed)
        assert committed <= after | {f"sale-{len(after)}"}, sorted(committed - after)
        checked = _cli("journal", "verify", str(target))
        assert checked.returncode == 0, checked.stderr
    assert len(copies[-1][1]) >= 15


def _journal_with_rows(path: Path) -> None:
    with Journal(path) as journal:
        for i in range(200):
            journal.audit("test", detail={"n": i, "pad": "x" * 200})


def test_verify_names_a_damaged_file(tmp_path: Path) -> None:
    good = tmp_path / "good.sqlite3"
    _journal_with_rows(good)
    ok = _cli("journal", "verify", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "audit 200" in ok.stdout

    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(good.read_bytes()[: 4096 * 3 + 100])
    bad = _cli("journal", "verify", str(truncated))
    assert bad.returncode == 1
    assert "DAMAGED" in bad.stderr
    assert str(truncated) in bad.stderr

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    bad = _cli("journal", "verify", str(garbage))
    assert bad.returncode == 1
    assert "not a readable SQLite journal" in bad.stderr

    flipped = tmp_path / "flipped.sqlite3"
    image = bytearray(good.read_bytes())
    last_page = len(image) - 4096  # an audit leaf page: garble its b-tree header
    image[last_page : last_page + 12] = b"\x0d" + b"\xff" * 11
    flipped.write_bytes(bytes(image))
    bad = _cli("journal", "verify", str(flipped))
    assert bad.returncode == 1, bad.stdout
    assert "DAMAGED" in bad.stderr

    other = tmp_path / "other.sqlite3"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE requests (request_id TEXT)")
    db.commit()
    db.close()
    bad = _cli("journal", "verify", str(other))
    assert bad.returncode == 1
    assert "schema" in bad.stderr

    missing = _cli("journal", "verify", str(tmp_path / "nope.sqlite3"))
    assert missing.returncode == 2


def test_backup_with_journal_path_and_a_missing_source(tmp_path: Path) -> None:
    source = tmp_path / "live.sqlite3"
    _journal_with_rows(source)
    target = tmp_path / "copy.sqlite3"
    done = _cli("journal", "backup", str(target), "--journal", str(source))
    assert done.returncode == 0, done.stderr
    assert verify(target).tables["audit"] == 200
    gone = _cli("journal", "backup", str(target), "--journal", str(tmp_path / "none.sqlite3"))
    assert gone.returncode == 2
    assert "no such journal" in gone.stderr
