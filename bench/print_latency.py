"""Print latency: receipt accepted by the spool -> first byte at the simulated printer.

Runs the real printing layer (encoder, SQLite spool with fsync, worker, python-escpos
connectors) against the simulated printer over TCP and over pseudo-terminals paced at 9600 and
115200 baud. Each link is a store PC of its own: a config file naming the printer
(``backend = "network"`` to the simulated printer's TCP port on 127.0.0.1, ``backend = "serial"``
to its pty), loaded into a :class:`~daemon.station.Station` and printed on through
``station.printer(id)``. Prints a table and ends with one summary line:

    print_latency: first_byte_p99_ms=... writes_per_receipt=... bytes_per_receipt=...
        api_first_byte_p50_ms=... api_first_byte_p99_ms=... api_writes_per_receipt=...
        api_bytes_per_receipt=...

API mode (``--api N`` receipts, default 50; 0 skips it): the same TCP store PC with the
daemon's gRPC listeners served in this process (``daemon.api.run.serve`` on its own thread, as
``carddaemon serve`` runs it); a POS client calls ``PrinterService.PrintReceipt`` over the POS
unix socket (a fresh ``request_id`` each) and the time is taken from the call to the first byte
at the simulated printer (the whole request: gRPC, the receipt check, the spool's fsync, the
printer thread). Targets: first byte <= 20 ms p99 (TCP and API); one write per receipt. The
summary is the last line. Default run takes ~20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc

from daemon.api.run import serve
from daemon.api.services import build_services
from daemon.api.v1 import printer_service_pb2 as ppb
from daemon.api.v1 import printer_service_pb2_grpc as ppb_grpc
from daemon.printers import JobState, PrinterService
from daemon.station import Station
from demo.folder import make_store_folder
from demo.sample import sale_message, sample_receipt
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
#: the API mode's store PC also has the daemon's listeners, in its own folder
API = """
[api]
runtime_dir = "run"
"""


def _station(tmp: Path, kind: str, printer: str, extra: str = "") -> Station:
    """A station from a config file whose ``[printers.bench]`` table holds ``printer``."""
    source = tmp / f"{kind}.toml"
    source.write_text(STORE.format(printer=printer) + extra, encoding="utf-8")
    return Station.from_config(make_store_folder(tmp / kind, source)).start()


@contextlib.contextmanager
def api_server(station: Station) -> Iterator[Path]:
    """The daemon's gRPC listeners over ``station`` on a thread of their own (an asyncio loop
    running ``daemon.api.run.serve``, as ``carddaemon serve`` does); yields the POS socket."""
    ready = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        with open(os.devnull, "w", encoding="utf-8") as out:
            task = asyncio.create_task(serve(station, build_services(station), stop=stop, out=out))
            while not all(item.socket.exists() for item in station.config.api.listeners):
                if task.done():
                    break
                await asyncio.sleep(0.01)
            ready.set()
            await task

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the caller
            state["failed"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="bench-api-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "failed" in state:
        raise SystemExit(f"API server did not start: {state['failed']!r}")
    pos = station.config.api.listener("pos")
    assert pos is not None
    try:
        yield pos.socket
    finally:
        loop, stop = state.get("loop"), state.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(30)


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


def run_api(count: int, tmp: Path) -> Result:
    """PrintReceipt over the POS socket → first byte at the simulated printer (TCP)."""
    sim = VirtualPrinter()
    accept, first, whole = [], [], []
    with TcpPrinterServer(sim) as srv:
        table = f'backend = "network"\nhost = "127.0.0.1"\nport = {srv.port}'
        with (
            _station(tmp, "api", table, API) as station,
            api_server(station) as socket,
            grpc.insecure_channel(f"unix:{socket}") as channel,
        ):
            service = station.printer(PRINTER)
            service.status(refresh=True)
            stub = ppb_grpc.PrinterServiceStub(channel)
            run_id = uuid.uuid4().hex[:8]
            for i in range(-3, count):  # three unmeasured: the channel connects, caches warm
                request = ppb.PrintReceiptRequest(
                    printer=f"printers/{PRINTER}",
                    request_id=f"bench-{run_id}-{i + 3}",
                    receipt=sale_message(8500, "", receipt_no=f"A{i + 3:05d}"),
                )
                seen, cuts = len(sim.rx_log), len(sim.cut_log)
                t_call = time.monotonic()
                job = stub.PrintReceipt(request, timeout=30).job
                t_answer = time.monotonic()
                job_id = int(job.name.rsplit("/", 1)[1])
                done = service.wait_job(job_id, 30)
                if done.state is not JobState.PRINTED:
                    raise SystemExit(f"api: job {job.name} ended {done.state}: {done.detail}")
                if not sim.wait_for(partial(_cut_count_above, n=cuts), 30):
                    raise SystemExit(f"api: receipt {job.name} never cut")
                if i < 0:
                    continue
                first_rx = next(t for t, n in sim.rx_log[seen:] if n)
                accept.append((t_answer - t_call) * 1000)
                first.append((first_rx - t_call) * 1000)
                whole.append((sim.cut_log[cuts] - t_call) * 1000)
    writes = service.printer.backend.writes - service.printer.status_writes
    rx_bytes = sum(n for _, n in sim.rx_log)
    return Result("api (tcp)", accept, first, whole, writes / (count + 3), rx_bytes / (count + 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp", type=int, default=100, help="receipts over TCP")
    parser.add_argument("--fast", type=int, default=20, help="receipts over 115200 baud pty")
    parser.add_argument("--slow", type=int, default=3, help="receipts over 9600 baud pty")
    parser.add_argument("--api", type=int, default=50, help="receipts by PrintReceipt (gRPC)")
    parser.add_argument("--dir", type=Path, default=None, help="where the spool file lives")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the simulator's backends are not carddaemon's own: known
    results = []
    api: Result | None = None
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="print-bench-") as tmp:
        for kind, n in (("tcp", args.tcp), ("pty-115200", args.fast), ("pty-9600", args.slow)):
            if n > 0:
                results.append(run(kind, n, Path(tmp)))
        if args.api > 0:
            api = run_api(args.api, Path(tmp))
    head = (
        f"{'link':<11} {'n':>4} {'accept p50':>10} {'first p50':>10} {'first p99':>10}"
        f" {'whole p50':>10} {'whole p99':>10} {'writes/r':>8} {'bytes/r':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in [*results, *([api] if api is not None else [])]:
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
    tail = ""
    if api is not None:
        ok = ok and pct(api.first_byte_ms, 99) <= 20 and api.writes_per_receipt <= 1.0
        tail = (
            f" api_first_byte_p50_ms={statistics.median(api.first_byte_ms):.2f}"
            f" api_first_byte_p99_ms={pct(api.first_byte_ms, 99):.2f}"
            f" api_writes_per_receipt={api.writes_per_receipt:.2f}"
            f" api_bytes_per_receipt={api.bytes_per_receipt:.0f}"
        )
    verdict = "met" if ok else "MISSED"
    print(f"targets (first byte <= 20 ms p99, API too; one write per receipt): {verdict}")
    print(
        f"print_latency: first_byte_p99_ms={pct(every, 99):.2f}"
        f" writes_per_receipt={writes:.2f} bytes_per_receipt={size:.0f}" + tail
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
