"""Shared helpers for the printer tests: receipts, a simulated printer on TCP or a pty, and a
printing service wired to it. Everything is a context manager so the leak guard stays green."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daemon.events import EventHub
from daemon.printers import (
    Header,
    Item,
    MemberSection,
    Payment,
    PrinterBackend,
    PrinterConfig,
    PrinterService,
    Receipt,
    Totals,
    create_backend,
)
from daemon.printers.commands import DLE_EOT_ALL, dle_eot
from demo.sample import sample_receipt
from sim.printer import PtyPrinterServer, TcpPrinterServer, VirtualPrinter

__all__ = [
    "RecordingBackend",
    "job_writes",
    "link_service",
    "pty_service",
    "sample_receipt",
    "simple_receipt",
    "tcp_service",
    "with_changes",
]


def simple_receipt(receipt_no: str = "A-1", **changes: Any) -> Receipt:
    """A small valid receipt; keyword arguments replace top-level fields."""
    base = Receipt(
        header=Header("TEST SHOP"),
        items=(Item("Apple", 2, 300, 600), Item("苹果汁", 1, 450, 450)),
        totals=Totals(subtotal_fen=1050, total_fen=1050),
        payments=(Payment("Cash", 1050),),
        receipt_no=receipt_no,
        member=MemberSection("8860********3721", "金卡", 0, 5000, 3950, 10, 110),
    )
    return dataclasses.replace(base, **changes)


def with_changes(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)


class RecordingBackend(PrinterBackend):
    """The configured real backend, keeping every write in a list.

    Tests read what was sent from here, not from the printer's diagnostic ring (32 entries: the
    worker's status polls push a job out of it within about a second) nor from two counters the
    worker updates one after the other (a read in between is off by one).
    """

    def __init__(self, config: PrinterConfig) -> None:
        super().__init__()
        self.inner = create_backend(config)
        self.sent: list[bytes] = []  # list.append is atomic: safe to read while the worker runs

    def open(self) -> None:
        self.inner.open()

    def _write(self, data: bytes) -> None:
        self.inner.write(data)
        self.sent.append(data)

    def read(self, size: int, timeout: float) -> bytes:
        return self.inner.read(size, timeout)

    def close(self) -> None:
        self.inner.close()

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    @property
    def seconds_per_byte(self) -> float:
        return self.inner.seconds_per_byte


_STATUS_REQUESTS = (DLE_EOT_ALL, dle_eot(1))


def job_writes(service: PrinterService) -> list[bytes]:
    """Every write of ``service`` except its status requests (jobs, drawer kicks)."""
    backend = service.printer.backend
    assert isinstance(backend, RecordingBackend), "build the service with a RecordingBackend"
    return [w for w in list(backend.sent) if w not in _STATUS_REQUESTS]


def _service(
    tmp_path: Path, printer_id: str, hub: EventHub | None = None, **config: Any
) -> PrinterService:
    """A service on a recording backend, polling fast so tests see changes quickly."""
    config.setdefault("poll_interval_s", 0.05)
    config.setdefault("confirm_timeout_s", 5.0)
    cfg = PrinterConfig(id=printer_id, **config)
    return PrinterService(cfg, tmp_path / "spool.db", RecordingBackend(cfg), hub=hub)


@contextlib.contextmanager
def tcp_service(
    tmp_path: Path,
    printer: VirtualPrinter | None = None,
    hub: EventHub | None = None,
    **config: Any,
) -> Iterator[tuple[PrinterService, VirtualPrinter, TcpPrinterServer]]:
    sim = printer if printer is not None else VirtualPrinter()
    with (
        TcpPrinterServer(sim) as server,
        _service(tmp_path, "front", hub, port=server.port, **config) as service,
    ):
        yield service, sim, server


@contextlib.contextmanager
def pty_service(
    tmp_path: Path, baudrate: int = 115200, printer: VirtualPrinter | None = None, **config: Any
) -> Iterator[tuple[PrinterService, VirtualPrinter, PtyPrinterServer]]:
    sim = printer if printer is not None else VirtualPrinter()
    with (
        PtyPrinterServer(sim, baudrate=baudrate) as server,
        _service(
            tmp_path, "serial", backend="serial", device=server.path, baudrate=baudrate, **config
        ) as service,
    ):
        yield service, sim, server


def link_service(
    link: str, tmp_path: Path, printer: VirtualPrinter | None = None, **config: Any
) -> contextlib.AbstractContextManager[tuple[PrinterService, VirtualPrinter, Any]]:
    """The same service over either simulated link, for tests that must hold on both."""
    if link == "tcp":
        return tcp_service(tmp_path, printer=printer, **config)
    return pty_service(tmp_path, printer=printer, **config)


def _child_main(argv: list[str]) -> None:
    """``python -m tests.printers.helpers SPOOL PORT``: a printing daemon stand-in that submits
    the sample receipt and then runs until killed (the crash tests SIGKILL it)."""
    import signal

    spool, port = Path(argv[0]), int(argv[1])
    cfg = PrinterConfig(id="front", port=port, poll_interval_s=0.05, confirm_timeout_s=60)
    with PrinterService(cfg, spool) as service:
        service.submit(sample_receipt())
        while True:
            signal.pause()


if __name__ == "__main__":
    import sys

    _child_main(sys.argv[1:])
