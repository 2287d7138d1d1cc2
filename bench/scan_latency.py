"""Scan latency: simulated scanner → scanner layer → a subscriber of the scan stream.

Two paths, each through the daemon's real code and each a store PC of its own, a
:class:`~daemon.station.Station` built from a config file that names one scanner: a serial
scanner on the simulated scanner's pty, read by pyserial, and a HID-POS scanner read through
pyusb (``Station.from_config(path, usb_backend=SimUsbBackend(dev))``: the simulated USB bus
stands in for libusb). The subscriber is the POS role's ``station.scans.subscribe``. Each sample is
the time from the first byte leaving the simulated scanner to the event in the subscriber's hand,
one scan at a time. Target: p99 <= 10 ms. Prints a table, then ``scan_latency: p50_ms=.. p99_ms=..``
over all samples. ``--scans N`` per path (default 300; the run takes a few seconds).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def _station(tmp: Path, scanner_id: str, scanner: str, usb_backend: object = None) -> Station:
    """A started station from a config file whose one scanner table holds ``scanner``."""
    source = tmp / f"{scanner_id}.toml"
    source.write_text(STORE.format(id=scanner_id, scanner=scanner), encoding="utf-8")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=300, help="scans per path")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    results = run(args.scans)
    print(f"{'path':<18} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    everything: list[float] = []
    for name, samples in results.items():
        everything += samples
        print(
            f"{name:<18} {len(samples):>5} {statistics.median(samples):>8.3f} "
            f"{_pct(samples, 90):>8.3f} {_pct(samples, 99):>8.3f} {max(samples):>8.3f}"
        )
    p50, p99 = statistics.median(everything), _pct(everything, 99)
    verdict = "ok" if p99 <= TARGET_P99_MS else f"over target {TARGET_P99_MS} ms"
    print(f"target p99 <= {TARGET_P99_MS} ms: {verdict}")
    print(f"scan_latency: p50_ms={p50:.3f} p99_ms={p99:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
