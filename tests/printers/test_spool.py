"""The durable spool and the worker: order, waiting out faults, uncertain jobs, reprint, cancel."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from daemon.errors import InvalidArgument
from daemon.printers import (
    Item,
    JobState,
    Payment,
    PrinterConfig,
    PrinterService,
    Totals,
    get_profile,
)
from daemon.printers.commands import GS_R_PAPER
from sim.printer import TcpPrinterServer, VirtualPrinter
from tests.printers.helpers import (
    RecordingBackend,
    job_writes,
    link_service,
    pty_service,
    sample_receipt,
    simple_receipt,
    tcp_service,
)


def _numbers(sim: VirtualPrinter) -> list[str]:
    out = []
    for receipt in sim.completed:
        out += [t.split(": ")[1] for t in receipt.texts() if t.startswith("单号: ")]
    return out


def test_job_is_on_disk_before_submit_returns_and_survives_restart(tmp_path: Path) -> None:
    sim = VirtualPrinter()
    sim.set_offline()
    with tcp_service(tmp_path, printer=sim) as (service, _sim, _server):
        job = service.submit(simple_receipt("R-1"))
        # another connection (another process could do the same) already sees it
        with contextlib.closing(sqlite3.connect(tmp_path / "spool.db")) as db:
            row = db.execute("SELECT state, summary FROM print_jobs WHERE id=?", (job.id,))
            assert row.fetchone() == ("QUEUED", "R-1")
    assert sim.completed == []
    sim.set_offline(False)
    with tcp_service(tmp_path, printer=sim) as (service, _sim, _server):
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
    assert _numbers(sim) == ["R-1"]


def test_jobs_print_in_order_after_offline_and_cancelled_ones_never(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, sim, _server):
        sim.set_offline()
        service.status(refresh=True)
        jobs = [service.submit(simple_receipt(f"R-{i}")) for i in range(4)]
        service.cancel(jobs[2].id)
        assert all(service.job(j.id).state is not JobState.SENDING for j in jobs)
        assert service.status().problem == "OFFLINE"
        sim.set_offline(False)
        assert service.wait_job(jobs[3].id, 5).state is JobState.PRINTED
        assert _numbers(sim) == ["R-0", "R-1", "R-3"]
        assert service.job(jobs[2].id).state is JobState.CANCELLED
        with pytest.raises(InvalidArgument):
            service.cancel(jobs[0].id)  # printed: too late
        with pytest.raises(InvalidArgument):
            service.reprint(jobs[2].id)  # cancelled: there is nothing to reprint


def test_cover_open_holds_the_queue(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, sim, _server):
        sim.set_cover_open()
        service.status(refresh=True)
        job = service.submit(simple_receipt())
        assert service.wait_job(job.id, 0.3).state is JobState.QUEUED
        sim.set_cover_open(False)
        assert service.wait_job(job.id, 5).state is JobState.PRINTED


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_paper_out_mid_receipt_finishes_after_reload_exactly_once(
    tmp_path: Path, link: str
) -> None:
    sim = VirtualPrinter(paper_lines=12)
    with (
        link_service(link, tmp_path, printer=sim) as (service, _sim, _server),
        service.subscribe(kinds=("status",)) as sub,
    ):
        job = service.submit(sample_receipt())
        assert sim.wait_for(lambda p: p.paper_end and p.buffered > 0)
        partial = list(sim.current.texts())
        assert 0 < len(partial) < 20
        while sub.get(2).payload.problem != "PAPER_OUT":
            pass  # earlier states (start-up, READY) come first
        assert service.wait_job(job.id, 0.3).state is JobState.SENDING
        sim.set_paper(None)
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
    assert len(sim.completed) == 1
    texts = sim.completed[0].texts()
    assert texts[: len(partial)] == partial  # continued where it stopped, nothing repeated
    assert sum("合计" in t for t in texts) == 1


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_reprint_last_is_marked_on_paper(tmp_path: Path, link: str) -> None:
    with link_service(link, tmp_path) as (service, sim, _server):
        with pytest.raises(InvalidArgument):
            service.reprint_last()
        first = service.submit(simple_receipt("R-7"))
        assert service.wait_job(first.id, 5).state is JobState.PRINTED
        again = service.reprint_last()
        assert again.reprint_of == first.id
        assert service.wait_job(again.id, 5).state is JobState.PRINTED
        assert _numbers(sim) == ["R-7", "R-7"]
        assert f"*** 重印 REPRINT #{first.id} ***" in sim.completed[1].texts()
        assert not any("重印" in t for t in sim.completed[0].texts())


def test_tcp_unplugged_mid_receipt_is_uncertain_and_not_reprinted_by_itself(
    tmp_path: Path,
) -> None:
    sim = VirtualPrinter(paper_lines=12)
    with tcp_service(tmp_path, printer=sim) as (service, _sim, server):
        job = service.submit(sample_receipt())
        assert sim.wait_for(lambda p: p.paper_end and p.buffered > 0)
        server.unplug()
        done = service.wait_job(job.id, 5)
        assert done.state is JobState.UNCERTAIN
        assert "before confirmation" in done.detail
        server.plug()
        sim.set_paper(None)
        assert service.status(refresh=True).ready
        assert service.spool.next_queued("front") is None
        again = service.reprint(job.id)  # the operator asks for it
        assert service.job(job.id).state is JobState.CANCELLED
        assert service.job(job.id).detail == f"reprinted as #{again.id}"
        assert service.wait_job(again.id, 5).state is JobState.PRINTED


def test_unplugged_before_the_job_keeps_it_queued_until_plugged_back(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, sim, server):
        server.unplug()
        assert service.status(refresh=True).problem == "UNREACHABLE"
        job = service.submit(simple_receipt())
        assert service.wait_job(job.id, 0.3).state is JobState.QUEUED
        server.plug()
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
        assert len(sim.completed) == 1


def test_pty_closed_mid_receipt_is_uncertain(tmp_path: Path) -> None:
    sim = VirtualPrinter(paper_lines=12)
    with pty_service(tmp_path, printer=sim) as (service, _sim, server):
        job = service.submit(sample_receipt())
        assert sim.wait_for(lambda p: p.paper_end and p.buffered > 0)
        server.unplug()
        assert service.wait_job(job.id, 5).state is JobState.UNCERTAIN
        assert service.status(refresh=True).problem == "UNREACHABLE"


def test_uncertain_job_can_be_confirmed_instead_of_reprinted(tmp_path: Path) -> None:
    sim = VirtualPrinter(paper_lines=12)
    with tcp_service(tmp_path, printer=sim) as (service, _sim, server):
        job = service.submit(sample_receipt())
        assert sim.wait_for(lambda p: p.paper_end and p.buffered > 0)
        server.unplug()
        assert service.wait_job(job.id, 5).state is JobState.UNCERTAIN
        assert service.confirm_printed(job.id).detail == "confirmed by operator"
        with pytest.raises(InvalidArgument):
            service.confirm_printed(job.id)


def test_jobs_of_another_printer_are_not_touched(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, _sim, _server):
        other = service.spool.add("back", b"\x1b@x\n", "other")
        with pytest.raises(InvalidArgument):
            service.cancel(other.id)
        cfg = PrinterConfig(id="back", port=1, poll_interval_s=0.05)
        with PrinterService(cfg, service.spool) as back:
            assert back.status(refresh=True).problem == "UNREACHABLE"
        assert service.job(other.id).state is JobState.QUEUED


def test_printer_that_never_confirms_leaves_the_job_uncertain(tmp_path: Path) -> None:
    sim = VirtualPrinter(answers_gs_r=False)
    with tcp_service(tmp_path, printer=sim, confirm_timeout_s=0.3) as (service, _sim, _srv):
        job = service.submit(simple_receipt())
        done = service.wait_job(job.id, 5)
        assert done.state is JobState.UNCERTAIN
        assert done.detail == "printer never confirmed the job"
        assert len(sim.completed) == 1  # it did print: exactly why it is not sent again


def test_profile_without_print_confirmation_trusts_a_ready_printer(tmp_path: Path) -> None:
    sim = VirtualPrinter(answers_gs_r=False)
    profile = get_profile("zh-80", print_confirm=False)
    with TcpPrinterServer(sim) as server:
        cfg = PrinterConfig(id="nocfm", port=server.port, poll_interval_s=0.05)
        backend = RecordingBackend(cfg)
        with PrinterService(cfg, tmp_path / "nocfm.db", backend, profile) as service:
            job = service.submit(simple_receipt())
            assert service.wait_job(job.id, 5).state is JobState.PRINTED
            # the job exactly as encoded: it ends with the cut, no GS r 1 after it
            assert job_writes(service) == [job.data]
            assert job.data.endswith(b"\x1dV\x42\x03")
    assert len(sim.completed) == 1


def test_long_receipt_over_9600_baud_is_one_write_and_prints(tmp_path: Path) -> None:
    items = tuple(Item(f"商品{i:03d} 测试", 1, 100, 100) for i in range(80))
    receipt = simple_receipt(
        items=items,
        totals=Totals(subtotal_fen=8000, total_fen=8000),
        payments=(Payment("Cash", 8000),),
    )
    with pty_service(tmp_path, baudrate=9600) as (service, sim, _server):
        job = service.submit(receipt)
        assert len(job.data) > 4096  # more than a pty/UART buffer: the write has to wait
        assert service.wait_job(job.id, 15).state is JobState.PRINTED
        assert job_writes(service) == [job.data + GS_R_PAPER]  # ONE write: job + confirmation
        assert len(sim.completed[0].lines()) > 80


def test_spool_refuses_to_send_a_cancelled_job(tmp_path: Path) -> None:
    from daemon.printers import Spool

    with Spool(tmp_path / "s.db") as spool:
        job = spool.add("front", b"\x1b@x\n")
        spool.cancel(job.id)
        with pytest.raises(InvalidArgument):
            spool.mark_sending(job.id)  # the worker's race with cancel ends here


def test_worker_survives_an_unexpected_driver_error(tmp_path: Path) -> None:
    from daemon.printers.connectors import NetworkBackend

    class GlitchOnce(NetworkBackend):
        """A driver that raises something nobody planned for, once."""

        glitched = False

        def read(self, size: int, timeout: float) -> bytes:
            if not self.glitched:
                self.glitched = True
                raise RuntimeError("driver bug")
            return super().read(size, timeout)

    with TcpPrinterServer(VirtualPrinter()) as server:
        cfg = PrinterConfig(id="glitch", port=server.port, poll_interval_s=0.05)
        with PrinterService(cfg, tmp_path / "g.db", backend=GlitchOnce(cfg)) as service:
            job = service.submit(simple_receipt())
            assert service.wait_job(job.id, 5).state is JobState.PRINTED


def test_unexpected_driver_error_after_sending_makes_the_job_uncertain_not_stuck(
    tmp_path: Path,
) -> None:
    """A bug after SENDING must not leave the job SENDING (nothing would ever resolve it)."""
    from daemon.printers.connectors import NetworkBackend

    class GlitchAfterJob(NetworkBackend):
        sent_job = glitched = False

        def _write(self, data: bytes) -> None:
            super()._write(data)
            self.sent_job = self.sent_job or data.startswith(b"\x1b@")

        def read(self, size: int, timeout: float) -> bytes:
            if self.sent_job and not self.glitched:
                self.glitched = True
                raise RuntimeError("driver bug")
            return super().read(size, timeout)

    with TcpPrinterServer(VirtualPrinter()) as server:
        cfg = PrinterConfig(id="glitch", port=server.port, poll_interval_s=0.05)
        with PrinterService(cfg, tmp_path / "g.db", backend=GlitchAfterJob(cfg)) as service:
            first = service.submit(simple_receipt("R-1"))
            done = service.wait_job(first.id, 5)
            assert (done.state, done.detail) == (
                JobState.UNCERTAIN,
                "unexpected RuntimeError while sending",
            )
            second = service.submit(simple_receipt("R-2"))  # the worker is still alive
            assert service.wait_job(second.id, 5).state is JobState.PRINTED


def test_status_is_checked_right_before_each_job_not_taken_from_the_last_poll(
    tmp_path: Path,
) -> None:
    """The last poll said READY; the printer went offline since. DLE EOT 1 before the job
    catches it: nothing is sent into a stopped printer, the job waits QUEUED."""
    with (
        tcp_service(tmp_path, poll_interval_s=30.0) as (service, sim, _server),
        service.subscribe(kinds=("status",)) as sub,
    ):
        assert service.status(refresh=True).ready  # the next poll is 30 s away
        sim.set_offline()
        job = service.submit(simple_receipt())
        while sub.get(5).payload.problem != "OFFLINE":  # published by the check the job triggered
            pass
        assert service.job(job.id).state is JobState.QUEUED
        assert job_writes(service) == []
        sim.set_offline(False)
        assert service.status(refresh=True).ready  # wakes the worker: the job goes now
        assert service.wait_job(job.id, 5).state is JobState.PRINTED


def test_job_state_changes_are_published_to_the_hub(tmp_path: Path) -> None:
    with (
        tcp_service(tmp_path) as (service, _sim, _server),
        service.subscribe(kinds=("job",)) as jobs,
    ):
        job = service.submit(simple_receipt())
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
        seen = [jobs.get(2) for _ in range(3)]
    assert [e.payload.state for e in seen] == [JobState.QUEUED, JobState.SENDING, JobState.PRINTED]
    assert {(e.source, e.payload.id) for e in seen} == {("printers/front", job.id)}
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)
