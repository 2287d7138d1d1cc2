"""Demo-store hook: print a member receipt through the daemon's printing layer to a simulated
printer over TCP, and save what came out as PNG."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from daemon.api.printers import PrinterServicer
from daemon.api.v1 import printer_service_pb2 as pb
from daemon.printers.backend import PrinterConfig
from daemon.printers.receipt import Receipt
from daemon.printers.service import PrinterService
from daemon.printers.spool import JobState
from demo.sample import DemoMember, sample_receipt
from sim.printer.backend import SimPrinterBackend
from sim.printer.device import VirtualPrinter
from sim.printer.render import render_png, render_text
from sim.printer.transports import TcpPrinterServer

if TYPE_CHECKING:
    from daemon.station import Station

__all__ = ["print_demo_receipt", "print_on_station", "print_sale", "print_via_daemon"]

logger = logging.getLogger(__name__)


def print_via_daemon(
    receipt: Receipt, png: Path, profile: str = "zh-80", timeout: float = 10.0
) -> Path:
    """Start a simulated TCP printer, print ``receipt`` via spool + worker, render the PNG."""
    printer = VirtualPrinter(chars_per_line=48 if profile.endswith("80") else 32)
    with (
        TcpPrinterServer(printer) as server,
        tempfile.TemporaryDirectory(prefix="carddaemon-print-") as tmp,
    ):
        config = PrinterConfig(id="demo", port=server.port, profile=profile, poll_interval_s=0.2)
        with PrinterService(config, Path(tmp) / "spool.db") as service:
            job = service.submit(receipt)
            done = service.wait_job(job.id, timeout)
            if done.state is not JobState.PRINTED:
                raise TimeoutError(f"print job {job.id} ended {done.state}: {done.detail}")
    out = printer.completed[0] if printer.completed else printer.current
    logger.debug("demo receipt:\n%s", render_text(out, printer.chars_per_line))
    return render_png(out, png, printer.chars_per_line)


def _member(member: DemoMember | Mapping[str, Any] | Any) -> DemoMember:
    if isinstance(member, DemoMember):
        return member
    fields = DemoMember.__dataclass_fields__
    if isinstance(member, Mapping):
        return DemoMember(**{k: member[k] for k in fields if k in member})
    return DemoMember(**{k: getattr(member, k) for k in fields if hasattr(member, k)})


def print_demo_receipt(out_dir: Path, member: DemoMember | Mapping[str, Any] | Any) -> Path:
    """Print the sample sale for ``member`` (masked id, tier, balance before/after, points;
    a mapping, a dataclass or any object with those attributes) and return the PNG's path."""
    out_dir = Path(out_dir)
    return print_via_daemon(sample_receipt(_member(member)), out_dir / "receipt.png")


def print_on_station(
    service: PrinterService,
    member: DemoMember | Mapping[str, Any] | Any,
    png: Path,
    timeout: float = 10.0,
) -> Path:
    """Print the sample sale for ``member`` on a station's printer (spool + printer thread, as
    a POS's PrintReceipt will) and render what came out of the simulated printer as PNG."""
    backend = service.printer.backend
    if not isinstance(backend, SimPrinterBackend):
        raise TypeError(f"printer {service.config.id} is not the simulated printer")
    job = service.submit(sample_receipt(_member(member)))
    done = service.wait_job(job.id, timeout)
    if done.state is not JobState.PRINTED:
        raise TimeoutError(f"print job {job.id} ended {done.state}: {done.detail}")
    printer = backend.printer
    out = printer.completed[-1] if printer.completed else printer.current
    return render_png(out, png, printer.chars_per_line)


def print_sale(
    station: Station,
    receipt: pb.Receipt,
    request_id: str,
    png: Path,
    printer: str = "receipt",
    timeout: float = 10.0,
) -> tuple[pb.PrintJob, Path]:
    """Print ``receipt`` on the station's simulated printer exactly as a POS's
    ``PrinterService.PrintReceipt`` does (the same servicer: a ``card_request_id`` has the
    member block filled from the journal's committed outcome, ``request_id`` makes a retry print
    once), wait until it is PRINTED and render what came out of the printer as PNG."""
    servicer = PrinterServicer(station)
    request = pb.PrintReceiptRequest(
        printer=f"printers/{printer}", request_id=request_id, receipt=receipt
    )
    job = asyncio.run(servicer.PrintReceipt(request, cast(Any, None))).job
    service = station.printer(printer)
    backend = service.printer.backend
    if not isinstance(backend, SimPrinterBackend):
        raise TypeError(f"printer {printer} is not the simulated printer")
    done = service.wait_job(int(job.name.rsplit("/", 1)[1]), timeout)
    if done.state is not JobState.PRINTED:
        raise TimeoutError(f"print job {job.name} ended {done.state}: {done.detail}")
    out = backend.printer.completed[-1] if backend.printer.completed else backend.printer.current
    return job, render_png(out, png, backend.printer.chars_per_line)
