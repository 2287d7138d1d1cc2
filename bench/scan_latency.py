"""Scan latency: simulated scanner → scanner layer → a subscriber of the scan stream.

Two paths, each through the daemon's real code and each a store PC of its own, a
:class:`~daemon.station.Station` built from a config file that names one scanner: a serial
scanner on the simulated scanner's pty, read by pyserial, and a HID-POS scanner read through
pyusb (``Station.from_config(path, usb_backend=SimUsbBackend(dev))``: the simulated USB bus
stands in for libusb). The subscriber is the POS role's ``station.scans.subscribe``. Each sample is
the time from the first byte leaving the simulated scanner to the event in the subscriber's hand,
one scan at a time. Target: p99 <= 10 ms. Prints a table, then ``scan_latency: p50_ms=.. p99_ms=..``
over all samples. ``--scans N`` per path (default 300; the run takes a few seconds).

API mode (``--api N`` scans, default 300; 0 skips it): the serial pty store PC with the
daemon's gRPC listeners served in this process (``daemon.api.run.serve`` on its own thread, as
``carddaemon serve`` runs it); the subscriber is a POS client's ``ScannerService.WatchScans``
stream over the POS unix socket, and each sample is the time from the first byte leaving the
simulated scanner to the scan message in that client's hand. Target: p99 <= 10 ms too. The
summary is the last line: ``scan_latency: p50_ms=.. p99_ms=.. api_p50_ms=.. api_p99_ms=..``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from daemon.api.run import serve
from daemon.api.services import build_services
from daemon.api.v1 import scanner_service_pb2 as spb
from daemon.api.v1 import scanner_service_pb2_grpc as spb_grpc
from daemon.errors import OperationTimeout
from daemon.events import Subscription
from daemon.scanners import Role, ScanEvent, ScannerState, StatusEvent
from daemon.station import Station
from demo.folder import make_store_folder
from sim.scanners import SimHidPosDevice, SimSerialScanner, SimUsbBackend

TARGET_P99_MS = 10.0


def _wait_connected(sub: Subscription, scanner_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            e = sub.get(0.5).payload
        except OperationTimeout:
            continue
        if (
            isinstance(e, StatusEvent)
            and e.scanner_id == scanner_id
            and e.state is ScannerState.CONNECTED
        ):
            return
    raise SystemExit(f"scanner {scanner_id} never connected")


def _measure(sub: Subscription, scan: Callable[[str], None], n: int) -> list[float]:
    samples = []
    for i in range(n):
        code = f"69{i:010d}"
        t0 = time.perf_counter_ns()
        scan(code)
        while True:
            try:
                e = sub.get(5).payload
            except OperationTimeout:
                raise SystemExit(f"scan {code} never arrived") from None
            if isinstance(e, ScanEvent):
                break
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if e.text != code:
            raise SystemExit(f"expected {code}, got another scan: order broken")
    return samples


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


#: a store PC that has only this scanner (no readers, no printers)
STORE = """\
[daemon]
state_dir = "state"
journal_path = "journal.sqlite3"
keystore_file = "keys.toml"

[readers]
backend = "sim"

[scanners.{id}]
{scanner}
"""
#: the API mode's store PC also has the daemon's listeners, in its own folder
API = """
[api]
runtime_dir = "run"
"""


def _station(
    tmp: Path, scanner_id: str, scanner: str, usb_backend: object = None, extra: str = ""
) -> Station:
    """A started station from a config file whose one scanner table holds ``scanner``."""
    source = tmp / f"{scanner_id}.toml"
    source.write_text(STORE.format(id=scanner_id, scanner=scanner) + extra, encoding="utf-8")
    store = make_store_folder(tmp / scanner_id, source)
    return Station.from_config(store, usb_backend=usb_backend).start()


def _path(station: Station, scanner_id: str, scan: Callable[[str], None], n: int) -> list[float]:
    assert station.scans is not None
    with station.scans.subscribe(Role.POS, maxsize=4096) as sub:
        _wait_connected(sub, scanner_id)
        return _measure(sub, scan, n)


def run(n: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "ttyScanner"
        with SimSerialScanner(link) as sim:
            table = f'backend = "serial"\nurl = "{link}"\nsuffix = "CR"'
            with _station(Path(tmp), "pty", table) as station:
                serial = _path(station, "pty", lambda c: sim.scan(c, aim="]C0"), n)
                results["serial pty (CR)"] = serial
        dev = SimHidPosDevice()
        table = f'backend = "hidpos"\nvid = {dev.vid}\npid = {dev.pid}'
        with _station(Path(tmp), "usb", table, SimUsbBackend(dev)) as station:
            results["HID-POS (pyusb)"] = _path(station, "usb", lambda c: dev.scan(c, aim="]C0"), n)
    return results


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


def run_api(n: int) -> list[float]:
    """Scan at the simulated serial scanner → the scan in a WatchScans client's hand."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "ttyScanner"
        with SimSerialScanner(link) as sim:
            table = f'backend = "serial"\nurl = "{link}"\nsuffix = "CR"'
            with (
                _station(Path(tmp), "api", table, extra=API) as station,
                api_server(station) as socket,
                grpc.insecure_channel(f"unix:{socket}") as channel,
            ):
                stub = spb_grpc.ScannerServiceStub(channel)
                stream = stub.WatchScans(spb.WatchScansRequest(), timeout=600)
                deadline = time.monotonic() + 10
                for message in stream:  # the snapshot: wait until the scanner is connected
                    if message.status.state == spb.Scanner.STATE_CONNECTED:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit("scanner api never connected")
                for i in range(-3, n):  # three unmeasured: the stream and caches warm up
                    code = f"69{i + 3:010d}"
                    t0 = time.perf_counter_ns()
                    sim.scan(code, aim="]C0")
                    for message in stream:
                        if message.WhichOneof("event") == "scan":
                            break
                    else:
                        raise SystemExit(f"scan {code}: the stream ended")
                    took = (time.perf_counter_ns() - t0) / 1e6
                    if message.scan.text != code:
                        raise SystemExit(f"expected {code}, got another scan: order broken")
                    if i >= 0:
                        samples.append(took)
                stream.cancel()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=300, help="scans per path")
    parser.add_argument("--api", type=int, default=300, help="scans through WatchScans (gRPC)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    results = run(args.scans)
    api = run_api(args.api) if args.api > 0 else []
    print(f"{'path':<18} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    everything: list[float] = []
    for name, samples in results.items():
        everything += samples
        print(
            f"{name:<18} {len(samples):>5} {statistics.median(samples):>8.3f} "
            f"{_pct(samples, 90):>8.3f} {_pct(samples, 99):>8.3f} {max(samples):>8.3f}"
        )
    if api:
        print(
            f"{'API WatchScans':<18} {len(api):>5} {statistics.median(api):>8.3f} "
            f"{_pct(api, 90):>8.3f} {_pct(api, 99):>8.3f} {max(api):>8.3f}"
        )
    p50, p99 = statistics.median(everything), _pct(everything, 99)
    ok = p99 <= TARGET_P99_MS and (not api or _pct(api, 99) <= TARGET_P99_MS)
    verdict = "ok" if ok else f"over target {TARGET_P99_MS} ms"
    print(f"target p99 <= {TARGET_P99_MS} ms (API too): {verdict}")
    tail = f" api_p50_ms={statistics.median(api):.3f} api_p99_ms={_pct(api, 99):.3f}" if api else ""
    print(f"scan_latency: p50_ms={p50:.3f} p99_ms={p99:.3f}" + tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
