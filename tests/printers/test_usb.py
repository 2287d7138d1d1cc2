"""USB printers end to end: the daemon's USB backend through python-escpos and pyusb to a
simulated printer-class device (``sim.printer.usb``), no USB hardware needed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import PrinterOffline
from daemon.printers import JobState, PrinterConfig, PrinterService
from daemon.printers.connectors import UsbBackend
from sim.printer import VirtualPrinter
from sim.printer.usb import SimUsbPrinter, SimUsbPrinterBackend
from tests.printers.helpers import sample_receipt, simple_receipt

CFG = PrinterConfig(
    id="usb1",
    backend="usb",
    usb_vendor=0x0416,
    usb_product=0x5011,
    poll_interval_s=0.05,
    confirm_timeout_s=5.0,
)


@contextlib.contextmanager
def usb_service(
    tmp_path: Path, sim: VirtualPrinter
) -> Iterator[tuple[PrinterService, SimUsbPrinter]]:
    with SimUsbPrinter(sim, CFG.usb_vendor, CFG.usb_product) as dev:
        assert dev.kernel_driver_attached  # usblp owns a freshly plugged printer
        backend = UsbBackend(CFG, usb_backend=SimUsbPrinterBackend(dev))
        with PrinterService(CFG, tmp_path / "spool.db", backend) as service:
            yield service, dev


def test_receipt_prints_over_usb_after_taking_the_interface_from_usblp(tmp_path: Path) -> None:
    sim = VirtualPrinter()
    with usb_service(tmp_path, sim) as (service, dev):
        assert service.status(refresh=True).ready
        assert not dev.kernel_driver_attached  # the daemon took it (escpos would not here)
        job = service.submit(sample_receipt())
        assert service.wait_job(job.id, 5).state is JobState.PRINTED
    assert len(sim.completed) == 1
    assert "康师傅红烧牛肉面（桶装）" in "\n".join(sim.completed[0].texts())
    assert sim.completed[0].errors == []


def test_usb_unplugged_mid_receipt_is_uncertain_and_found_again_after_replug(
    tmp_path: Path,
) -> None:
    sim = VirtualPrinter(paper_lines=12)
    with usb_service(tmp_path, sim) as (service, dev):
        job = service.submit(sample_receipt())
        assert sim.wait_for(lambda p: p.paper_end and p.buffered > 0)
        dev.unplug()
        done = service.wait_job(job.id, 5)
        assert done.state is JobState.UNCERTAIN
        assert "before confirmation" in done.detail
        assert service.status(refresh=True).problem == "UNREACHABLE"
        sim.set_paper(None)
        dev.replug()  # a new address: the old handle stays dead, the printer is found again
        assert service.status(refresh=True).ready
        again = service.submit(simple_receipt("R-2"))
        assert service.wait_job(again.id, 5).state is JobState.PRINTED


def test_absent_usb_printer_is_offline_naming_vid_pid() -> None:
    backend = UsbBackend(CFG, usb_backend=SimUsbPrinterBackend())
    with pytest.raises(PrinterOffline, match="usb 0416:5011"):
        backend.open()
    backend.close()
    assert not backend.is_open


def test_sub_millisecond_read_timeout_is_not_libusbs_wait_forever() -> None:
    """libusb takes 0 ms as "no timeout": a status wait with 0.4 ms left must not hang."""
    with SimUsbPrinter(VirtualPrinter(), CFG.usb_vendor, CFG.usb_product) as dev:
        backend = UsbBackend(CFG, usb_backend=SimUsbPrinterBackend(dev))
        with backend:
            assert backend.read(16, 0.0004) == b""
        assert dev.read_timeouts_ms == [1]
