"""DLE EOT status: parsing, the simulator's answers, polling, push to subscribers, drawer."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import OperationTimeout, PrinterError
from daemon.printers import JobState, PrinterStatus, parse_status
from sim.printer import VirtualPrinter
from tests.printers.helpers import (
    RecordingBackend,
    job_writes,
    link_service,
    simple_receipt,
    tcp_service,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_all_clear() -> None:
    status = parse_status(h("12 12 12 12  # DLE EOT 1..4: fixed bits only"))
    assert status.ready
    assert status.problem == ""


@pytest.mark.parametrize(
    ("reply", "field", "problem"),
    [
        ("1a 12 12 12  # DLE EOT 1 bit 3: offline", "online", "OFFLINE"),
        ("1a 16 12 12  # DLE EOT 2 bit 2: cover open", "cover_open", "COVER_OPEN"),
        ("1a 32 12 72  # EOT 2 bit 5, EOT 4 bits 5+6: paper end", "paper_end", "PAPER_OUT"),
        ("1a 52 1a 12  # DLE EOT 3 bit 3: autocutter error", "cutter_error", "CUTTER_ERROR"),
        ("1a 52 32 12  # EOT 3 bit 5: unrecoverable", "unrecoverable_error", "UNRECOVERABLE_ERROR"),
    ],
)
def test_each_problem_bit(reply: str, field: str, problem: str) -> None:
    status = parse_status(h(reply))
    assert getattr(status, field) is (field != "online")
    assert not status.ready
    assert status.problem == problem


def test_near_end_still_prints_and_drawer_level_follows_wiring() -> None:
    status = parse_status(h("16 12 12 1e  # drawer pin 3 high; paper near end (bits 2,3)"))
    assert status.ready
    assert status.paper_near_end
    assert status.drawer_open
    assert not parse_status(h("16 12 12 12"), drawer_open_level=False).drawer_open


@pytest.mark.parametrize("reply", ["12 12 12", "12 12 12 13", "00 12 12 12", "92 12 12 12"])
def test_malformed_reply_is_refused_not_guessed(reply: str) -> None:
    with pytest.raises(PrinterError):
        parse_status(bytes.fromhex(reply))


def test_sim_answers_dle_eot_even_while_stopped() -> None:
    sim = VirtualPrinter(paper_lines=0)
    sim.set_cover_open()
    answers: list[bytes] = []
    sim.attach(answers.append)
    sim.receive(h("10 04 01 10 04 02 10 04 03 10 04 04  # DLE EOT 1..4"))
    status = parse_status(b"".join(answers))
    assert status.cover_open
    assert status.paper_end
    assert not status.online


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_status_call_and_changes_pushed_to_subscribers(tmp_path: Path, link: str) -> None:
    with link_service(link, tmp_path) as (service, sim, _server):
        assert service.status(refresh=True).ready
        with service.subscribe(kinds=("status",)) as sub:
            first = sub.get(2)
            assert first.payload.ready  # first item: the current state
            assert (first.snapshot, first.source) == (True, f"printers/{service.config.id}")
            sim.set_cover_open()
            assert sub.get(2).payload.problem == "COVER_OPEN"
            sim.set_cover_open(False)
            assert sub.get(2).payload.ready
            sim.set_paper(0)
            assert sub.get(2).payload.problem == "PAPER_OUT"
            assert service.status() == PrinterStatus(
                online=False, paper_end=True, paper_near_end=True, paper_end_stop=True
            )
            with pytest.raises(OperationTimeout):
                sub.get(0.15)


def test_slow_subscriber_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, sim, _server):
        service.status(refresh=True)
        with service.subscribe(maxsize=1) as sub:
            for _ in range(3):
                sim.set_offline(True)
                service.status(refresh=True)
                sim.set_offline(False)
                service.status(refresh=True)
            assert sub.dropped >= 5
            last = sub.get(0)  # the newest change is kept, and says what was lost before it
            assert last.payload.ready
            assert last.dropped_before == sub.dropped
        assert service.status(refresh=True).ready


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_drawer_kick_and_drawer_open_status(tmp_path: Path, link: str) -> None:
    with link_service(link, tmp_path, drawer_pin=5, drawer_pulse_ms=60) as (service, sim, _):
        assert not service.status(refresh=True).drawer_open
        service.kick_drawer()
        assert sim.wait_for(lambda p: len(p.drawer_kicks) == 1)
        assert (sim.drawer_kicks[0].pin, sim.drawer_kicks[0].on_ms) == (5, 60)
        assert service.status(refresh=True).drawer_open
        sim.close_drawer()
        assert not service.status(refresh=True).drawer_open
        assert service.spool.jobs(service.config.id) == []  # never spooled, never replayed
        assert job_writes(service) == [h("1b 70 01 1e 1e  # ESC p 1 30 30: pin 5, 60 ms")]


def test_unplugged_printer_reports_unreachable(tmp_path: Path) -> None:
    with tcp_service(tmp_path) as (service, _sim, server):
        assert service.status(refresh=True).ready
        server.unplug()
        assert service.status(refresh=True).problem == "UNREACHABLE"
        server.plug()
        assert service.status(refresh=True).ready


@pytest.mark.parametrize(
    "raw",
    [
        {"backend": "serial", "device": "/dev/carddaemon-no-such-tty"},
        {"backend": "network", "port": 1},
    ],
    ids=["serial", "network"],
)
def test_absent_printer_of_each_backend_is_offline_not_a_crash(
    tmp_path: Path, raw: dict[str, object]
) -> None:
    from daemon.errors import PrinterOffline
    from daemon.printers import PrinterConfig, PrinterService, create_backend

    cfg = PrinterConfig.from_mapping("gone", raw)
    with pytest.raises(PrinterOffline) as err, create_backend(cfg):
        pass
    assert "gone" in str(err.value)
    with PrinterService(cfg, tmp_path / "s.db") as service:
        assert service.status(refresh=True).problem == "UNREACHABLE"
        with pytest.raises(PrinterOffline):
            service.kick_drawer()


def test_absent_usb_printer_is_offline() -> None:
    """In a subprocess: libusb keeps a process-wide netlink socket once initialised."""
    import subprocess
    import sys

    code = (
        "from daemon.errors import PrinterOffline\n"
        "from daemon.printers import PrinterConfig, create_backend\n"
        "cfg = PrinterConfig(id='u', backend='usb', usb_vendor=0x0416, usb_product=0x5011)\n"
        "b = create_backend(cfg)\n"
        "try:\n"
        "    b.open()\n"
        "except PrinterOffline as exc:\n"
        "    print(exc.reason, 'usb 0416:5011' in str(exc))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.split() == ["PRINTER_OFFLINE", "True"], out.stderr


@pytest.mark.parametrize("link", ["tcp", "pty"])
def test_garbage_status_answers_mean_unreachable_and_the_worker_recovers(
    tmp_path: Path, link: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are no DLE EOT answer are never read as "paper OK": the printer is reported
    unreachable (after the status timeout), and once it talks sense again it is ready again."""
    with link_service(link, tmp_path) as (service, sim, _server):
        assert service.status(refresh=True).ready
        sim.set_status_noise(b"\xff\x80")  # neither pattern: bit 7 set
        assert service.status(refresh=True).problem == "UNREACHABLE"
        assert "unexpected byte 0xFF" in caplog.text
        job = service.submit(simple_receipt())
        assert service.wait_job(job.id, 0.3).state is JobState.QUEUED  # nothing sent blind
        sim.set_status_noise(None)
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
        assert len(sim.completed) == 1


def test_printer_without_drawer_port_refuses_kicks_and_reports_no_drawer_state(
    tmp_path: Path,
) -> None:
    from daemon.errors import ReceiptInvalid
    from daemon.printers import PrinterConfig, PrinterService, get_profile
    from sim.printer import TcpPrinterServer

    profile = get_profile("zh-58", drawer=False)
    sim = VirtualPrinter(32)
    with TcpPrinterServer(sim) as server:
        cfg = PrinterConfig(id="nodrawer", port=server.port, poll_interval_s=0.05)
        with PrinterService(cfg, tmp_path / "s.db", RecordingBackend(cfg), profile) as service:
            with pytest.raises(PrinterError, match="nodrawer: profile has no drawer port"):
                service.kick_drawer()
            with pytest.raises(ReceiptInvalid) as err:
                service.submit(simple_receipt(open_drawer=True))
            assert err.value.field == "open_drawer"
            sim.receive(h("1b 70 00 32 32  # a kick from elsewhere: the pin 3 level goes high"))
            assert sim.drawer_open
            assert service.status(refresh=True).drawer_open is None  # not reported, not guessed
            assert job_writes(service) == []


def test_drawer_without_sensor_reports_none(tmp_path: Path) -> None:
    from daemon.printers import PrinterConfig, PrinterService, get_profile
    from sim.printer import TcpPrinterServer

    profile = get_profile("zh-80", drawer_sensor=False)
    with TcpPrinterServer(VirtualPrinter()) as server:
        cfg = PrinterConfig(id="blind", port=server.port, poll_interval_s=0.05)
        with PrinterService(cfg, tmp_path / "s.db", profile=profile) as service:
            service.kick_drawer()
            assert server.printer.wait_for(lambda p: p.drawer_open)
            status = service.status(refresh=True)
            assert status.ready
            assert status.drawer_open is None
