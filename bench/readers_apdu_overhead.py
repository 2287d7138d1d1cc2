"""What the APDU layer costs per APDU on top of the transport (in-process simulator).

The simulated store is built from its config file (``demo/store.toml``) as a
:class:`~daemon.station.Station`. On one connection (both paths) from the station's reader backend
(``station.backend.connect``, what the reader worker opens), the same READ BINARY is sent N
times raw through ``transmit`` and N times through ``StorageCard.read_block`` in the reader's
configured dialect (command building, trace ring, status and length checks), interleaved in one
run; prints p50/p99 of both and the difference per APDU. The simulated reader charges no
latency (profile ``none``), so only host CPU time is measured.

    .venv/bin/python bench/readers_apdu_overhead.py [N]

Last line: ``readers_apdu_overhead: n=… raw_p50_ms=… layer_p50_ms=… overhead_per_apdu_ms=…``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon.diagnostics.report import percentile
from daemon.readers.apdu import KeyType, read_binary
from daemon.readers.storage import StorageCard
from daemon.station import Station
from demo.folder import make_store_folder
from sim.backend import SimBackend
from sim.card import SimCard
from sim.latency import get_profile

READER = "front"


def measure(station: Station, n: int) -> tuple[list[float], list[float]]:
    backend = station.backend
    assert isinstance(backend, SimBackend), "demo/store.toml runs on the simulated readers"
    reader = backend.reader(station.reader(READER).name)  # the lane's simulated reader
    reader.profile = get_profile("none")  # host time only
    reader.insert(SimCard.blank())
    profile = station.profile(READER)
    raw: list[float] = []
    layer: list[float] = []
    conn = backend.connect(reader.name)
    with StorageCard(conn, profile.dialect, trace=profile.trace) as card:  # closes conn
        card.load_key(b"\xff" * 6, 0)
        card.authenticate(4, KeyType.A, 0)
        apdu = read_binary(4).apdu
        for _ in range(n):  # interleaved, so drift hits both equally
            t0 = time.perf_counter()
            conn.transmit(apdu)
            t1 = time.perf_counter()
            card.read_block(4)
            t2 = time.perf_counter()
            raw.append((t1 - t0) * 1e3)
            layer.append((t2 - t1) * 1e3)
    return raw, layer


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    logging.disable(logging.WARNING)  # the simulator's backends are not carddaemon's own: known
    with (
        tempfile.TemporaryDirectory(prefix="carddaemon-bench-") as tmp,
        Station.from_config(make_store_folder(Path(tmp))) as station,
    ):
        station.start()
        station.wait_for_reader(READER)
        raw, layer = measure(station, n)
    raw_p50, layer_p50 = statistics.median(raw), statistics.median(layer)
    print(f"{'path':<8}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'raw':<8}{raw_p50:>10.4f}{percentile(raw, 99):>10.4f}")
    print(f"{'layer':<8}{layer_p50:>10.4f}{percentile(layer, 99):>10.4f}")
    print(
        f"readers_apdu_overhead: n={n} raw_p50_ms={raw_p50:.4f} layer_p50_ms={layer_p50:.4f}"
        f" overhead_per_apdu_ms={layer_p50 - raw_p50:.4f}"
    )


if __name__ == "__main__":
    main()
