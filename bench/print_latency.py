"""Print latency: receipt accepted by the spool -> first byte at the simulated printer.

Runs the real printing layer (encoder, SQLite spool with fsync, worker, python-escpos
connectors) against the simulated printer over TCP and over pseudo-terminals paced at 9600 and
115200 baud. Each link is a store PC of its own: a config file naming the printer
(``backend = "network"`` to the simulated printer's TCP port on 127.0.0.1, ``backend = "serial"``
to its pty), loaded into a :class:`~daemon.station.Station` and printed on through
``station.printer(id)``. Prints a table and ends with one summary line:

    print_latency: first_byte_p99_ms=... writes_per_receipt=... bytes_per_receipt=...

Targets: first byte <= 20 ms p99 (TCP); one write per receipt. Default run takes ~15 s.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from daemon.printers import JobState, PrinterService
from daemon.station import Station
from demo.folder import make_store_folder
from demo.sample import sample_receipt
from sim.printer import PtyPrinterServer, TcpPrinterServer, VirtualPrinter


@dataclass
class Result:
    link: str
    accept_ms: list[float]
    first_byte_ms: list[float]
    whole_ms: list[float]
    writes_per_receipt: float
    bytes_per_receipt: float


def _cut_count_above(printer: VirtualPrinter, n: int) -> bool:
    return len(printer.cut_log) > n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


PRINTER = "bench"
#: a store PC that has only this printer (no readers, no scanners)
STORE = """\
[daemon]
state_dir = "state"
journal_path = "journal.sqlite3"
keystore_file = "keys.toml"

[readers]
backend = "sim"

[printers.bench]
{printer}
poll_interval_s = 1.0
"""


def _station(tmp: Path, kind: str, printer: str) -> Station:
    """A station from a config file whose ``[printers.bench]`` table holds ``printer``."""
    source = tmp / f"{kind}.toml"
    source.write_text(STORE.format(printer=printer), encoding="utf-8")
    return Station.from_config(make_store_folder(tmp / kind, source)).start()


@contextlib.contextmanager
def link(kind: str, sim: VirtualPrinter, tmp: Path) -> Iterator[PrinterService]:
    if kind == "tcp":
        with TcpPrinterServer(sim) as srv:
            table = f'backend = "network"\nhost = "127.0.0.1"\nport = {srv.port}'
            with _station(tmp, kind, table) as station:
                yield station.printer(PRINTER)
        return
    baud = int(kind.split("-")[1])
    with PtyPrinterServer(sim, baudrate=baud) as srv:
        table = f'backend = "serial"\ndevice = "{srv.path}"\nbaudrate = {baud}'
        with _station(tmp, kind, table) as station:
            yield station.printer(PRINTER)


def run(kind: str, count: int, tmp: Path) -> Result:
    sim = VirtualPrinter()
    accept, first, whole = [], [], []
    with link(kind, sim, tmp) as service:
        service.status(refresh=True)
        for i in range(count):
            receipt = sample_receipt(receipt_no=f"B{i:05d}")
            seen = len(sim.rx_log)
            t_call = time.monotonic()
            job = service.submit(receipt)
            t0 = time.monotonic()  # durable in the spool from here on
            done = service.wait_job(job.id, 30)
            if done.state is not JobState.PRINTED:
                raise SystemExit(f"{kind}: job {job.id} ended {done.state}: {done.detail}")
            if not sim.wait_for(partial(_cut_count_above, n=i), 30):
                raise SystemExit(f"{kind}: receipt {i} never cut")
            first_rx = next(t for t, n in sim.rx_log[seen:] if n)
            accept.append((t0 - t_call) * 1000)
            first.append((first_rx - t0) * 1000)
            whole.append((sim.cut_log[i] - t0) * 1000)
    # read once the worker has stopped: it bumps the two counters one after the other
    writes = service.printer.backend.writes - service.printer.status_writes
    rx_bytes = sum(n for _, n in sim.rx_log)
    return Result(kind, accept, first, whole, writes / count, rx_bytes / count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp", type=int, default=100, help="receipts over TCP")
    parser.add_argument("--fast", type=int, default=20, help="receipts over 115200 baud pty")
    parser.add_argument("--slow", type=int, default=3, help="receipts over 9600 baud pty")
    parser.add_argument("--dir", type=Path, default=None, help="where the spool file lives")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the simulator's backends are not carddaemon's own: known
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="print-bench-") as tmp:
        for kind, n in (("tcp", args.tcp), ("pty-115200", args.fast), ("pty-9600", args.slow)):
            if n > 0:
                results.append(run(kind, n, Path(tmp)))
    head = (
        f"{'link':<11} {'n':>4} {'accept p50':>10} {'first p50':>10} {'first p99':>10}"
        f" {'whole p50':>10} {'whole p99':>10} {'writes/r':>8} {'bytes/r':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.link:<11} {len(r.first_byte_ms):>4} {statistics.median(r.accept_ms):>8.2f}ms"
            f" {statistics.median(r.first_byte_ms):>8.2f}ms {pct(r.first_byte_ms, 99):>8.2f}ms"
            f" {statistics.median(r.whole_ms):>8.1f}ms {pct(r.whole_ms, 99):>8.1f}ms"
            f" {r.writes_per_receipt:>8.2f} {r.bytes_per_receipt:>8.0f}"
        )
    every = [ms for r in results for ms in r.first_byte_ms]
    writes = max(r.writes_per_receipt for r in results)
    size = statistics.mean(r.bytes_per_receipt for r in results)
    ok = pct(every, 99) <= 20 and writes <= 1.0
    verdict = "met" if ok else "MISSED"
    print(f"targets (first byte <= 20 ms p99, one write per receipt): {verdict}")
    print(
        f"print_latency: first_byte_p99_ms={pct(every, 99):.2f}"
        f" writes_per_receipt={writes:.2f} bytes_per_receipt={size:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
