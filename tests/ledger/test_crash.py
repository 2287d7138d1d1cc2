"""Kill the ledger mid-shipping, kill a store mid-shipping: nothing lost, nothing doubled.

What a store committed is in its journal's outbox in the same transaction; the ledger counts
a row once however often it arrives. So after any crash and one reconciliation, the ledger
holds exactly the store's committed debits, each once, with the same amounts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from daemon.journal import Journal, RequestState
from tests.ledger.chain import admin_rows, attach, committed_debit, rewind
from tests.ledger.conftest import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _ledger_debits(ledger: Ledger, prefix: str) -> tuple[int, int]:
    row = admin_rows(
        ledger,
        "SELECT count(*), coalesce(sum(amount), 0) FROM ledger.card_events WHERE uid LIKE %s",
        prefix + "-%",
    )[0]
    return int(row[0]), int(row[1])


def _journal_debits(journal: Journal, prefix: str, count: int) -> tuple[int, int]:
    done = [journal.get(f"{prefix}-r{i}") for i in range(count)]
    committed = [r for r in done if r is not None and r.state is RequestState.COMMITTED]
    return len(committed), sum(int((r.outcome or {})["amount"]) for r in committed)


def test_the_ledger_killed_mid_shipping_loses_and_doubles_nothing(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    prefix = f"K{fresh_uid}"
    count = 600
    with Journal(tmp_path / "store.db") as journal:
        part = attach(ledger, journal, "a", batch_size=5)
        try:
            for i in range(count):
                committed_debit(journal, f"{prefix}-r{i}", f"{prefix}-{i % 30}", i // 30 + 1, i)
            shipping = threading.Thread(target=lambda: _ship_ignoring_errors(part))
            shipping.start()
            while _ledger_debits(ledger, prefix)[0] == 0:
                time.sleep(0.005)
            ledger.pg.kill()  # mid-shipping: batches in flight are cut off
            shipping.join()
            assert part.outbox.backlog() > 0  # the rest waits in the outbox
            ledger.pg.start()
            part.shipper.flush(timeout_s=20)
            assert part.outbox.backlog() == 0
            rewind(journal)  # as if every confirmation had been lost
            part.shipper.flush(timeout_s=20)  # everything sent again: ignored by the ledger
        finally:
            part.close()
            ledger.pg.start()  # (a no-op when running) never leave the session without it
        assert _ledger_debits(ledger, prefix) == _journal_debits(journal, prefix, count)
        assert _ledger_debits(ledger, prefix)[0] == count


def _ship_ignoring_errors(part: object) -> None:
    from daemon.errors import LedgerUnavailable
    from daemon.ledger.store import StoreLedger

    assert isinstance(part, StoreLedger)
    try:
        while part.shipper.ship_once():
            pass
    except LedgerUnavailable:
        pass


def test_a_store_killed_mid_shipping_catches_up_without_doubling(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    prefix = f"S{fresh_uid}"
    count = 400
    path = tmp_path / "store.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.store_process", str(path), ledger.store("a"),
         prefix, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while _ledger_debits(ledger, prefix)[0] < 50:  # it is shipping while it sells
            assert child.poll() is None, "the store process died on its own"
            assert time.monotonic() < deadline, "the store process shipped nothing"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    with Journal(path) as journal:  # the PC restarts: its outbox is where it left it
        part = attach(ledger, journal, "a")
        try:
            part.shipper.flush(timeout_s=20)
        finally:
            part.close()
        committed = _journal_debits(journal, prefix, count)
    assert committed[0] > 0
    assert _ledger_debits(ledger, prefix) == committed


def test_a_ledger_down_for_a_while_the_store_sells_on_and_its_worker_catches_up(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    prefix = f"D{fresh_uid}"
    with Journal(tmp_path / "store.db") as journal:
        part = attach(ledger, journal, "a")
        part.start()  # the background worker, as the station runs it
        try:
            ledger.pg.kill()
            for i in range(50):  # the store keeps selling: only its journal is needed
                committed_debit(journal, f"{prefix}-r{i}", f"{prefix}-{i % 5}", i // 5 + 1, 10)
            deadline = time.monotonic() + 15
            while not part.shipper.failures:  # the worker fails and backs off meanwhile
                assert time.monotonic() < deadline, "the worker never noticed the ledger down"
                time.sleep(0.02)
            assert part.outbox.backlog() == 50
            ledger.pg.start()
            deadline = time.monotonic() + 20
            while part.outbox.backlog():
                assert time.monotonic() < deadline, "the worker never caught up"
                time.sleep(0.02)
        finally:
            part.close()
            ledger.pg.start()  # (a no-op when running) never leave the session without it
    assert _ledger_debits(ledger, prefix) == (50, 500)
