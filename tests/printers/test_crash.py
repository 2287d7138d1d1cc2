"""Kill the printing process (SIGKILL, a real subprocess) at each point of a job and restart.

The rule under test (docs/printing.md): a job is printed exactly once, except a job that was
SENDING when the process died; it becomes UNCERTAIN and is printed again only on request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.printers import JobState, PrinterConfig, PrinterService
from sim.printer import TcpPrinterServer, VirtualPrinter

ROOT = Path(__file__).resolve().parents[2]


def _state(spool: Path) -> str | None:
    if not spool.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(spool, timeout=5)) as db:
            row = db.execute("SELECT state FROM print_jobs ORDER BY id LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # the child has not created the schema yet
        return None
    return None if row is None else str(row[0])


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[TcpPrinterServer]:
    with TcpPrinterServer(VirtualPrinter()) as srv:
        yield srv


def _run_and_kill(
    spool: Path, port: int, until: str, also: Callable[[], bool] = lambda: True
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.printers.helpers", str(spool), str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: (_state(spool) == until and also()) or child.poll() is not None)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _restart(spool: Path, port: int) -> PrinterService:
    cfg = PrinterConfig(id="front", port=port, poll_interval_s=0.05, confirm_timeout_s=5)
    return PrinterService(cfg, spool)


def test_killed_while_sending_becomes_uncertain_and_is_reprinted_only_on_request(
    tmp_path: Path, server: TcpPrinterServer
) -> None:
    sim = server.printer
    sim.set_paper(12)  # the job stalls half-printed: bytes sent, confirmation pending
    spool = tmp_path / "spool.db"
    _run_and_kill(
        spool, server.port, until="SENDING", also=lambda: sim.paper_end and sim.buffered > 0
    )
    sim.set_paper(None)  # the printer still had the rest buffered: it finishes the receipt
    assert len(sim.wait_receipts(1)) == 1
    with _restart(spool, server.port) as service:
        [job] = service.recovered
        assert job.state is JobState.UNCERTAIN
        assert "interrupted" in job.detail
        assert service.status(refresh=True).ready
        service.status(refresh=True)  # a full worker cycle: it must not pick the job up
        assert service.spool.next_queued("front") is None
        assert len(sim.completed) == 1  # not silently printed twice
        again = service.reprint(job.id)
        assert service.wait_job(again.id, 5).state is JobState.PRINTED
    assert len(sim.completed) == 2
    assert any("重印 REPRINT" in t for t in sim.completed[1].texts())


def test_killed_after_printing_prints_nothing_again(
    tmp_path: Path, server: TcpPrinterServer
) -> None:
    spool = tmp_path / "spool.db"
    _run_and_kill(spool, server.port, until="PRINTED")
    with _restart(spool, server.port) as service:
        assert service.recovered == []
        assert service.status(refresh=True).ready
        assert service.spool.next_queued("front") is None
    assert len(server.printer.completed) == 1


def test_killed_while_queued_prints_exactly_once_after_restart(
    tmp_path: Path, server: TcpPrinterServer
) -> None:
    sim = server.printer
    sim.set_offline()
    spool = tmp_path / "spool.db"
    _run_and_kill(spool, server.port, until="QUEUED")
    assert sim.completed == []
    sim.set_offline(False)
    with _restart(spool, server.port) as service:
        [job] = service.spool.jobs("front")
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
    assert len(sim.completed) == 1
