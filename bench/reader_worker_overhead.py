"""What handing a card job to a reader's worker thread costs, on top of the job itself.

The simulated store is built from its config file (``demo/store.toml``) as a
:class:`~daemon.station.Station`; its simulated ACR1252U gets a card and no simulated latency.
A job of one GET DATA UID is run N times directly on the caller's thread (a connection from the
station's reader backend, ``station.backend.connect``) and N times through the station's reader
worker (``station.run``: reader lookup by id, thread hand-off, PC/SC transaction, future,
wake-up). The difference is the worker's overhead per job; a card operation is tens of APDUs at
5-25 ms each, so anything under ~0.2 ms is noise.

    .venv/bin/python bench/reader_worker_overhead.py [JOBS]

Last line: ``reader_worker_overhead: jobs=… direct_p50_ms=… worker_p50_ms=… overhead_per_job_ms=…``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon.readers.workers import JobContext
from daemon.station import Station
from demo.folder import make_store_folder
from sim.backend import SimBackend
from sim.card import SimCard
from sim.latency import get_profile

GET_UID = bytes.fromhex("FFCA000000")
READER = "front"


def uid_job(ctx: JobContext) -> bytes:
    return ctx.connection.transmit(GET_UID).data


def measure(station: Station, jobs: int) -> tuple[list[float], list[float]]:
    backend = station.backend
    assert isinstance(backend, SimBackend), "demo/store.toml runs on the simulated readers"
    reader = backend.reader(station.reader(READER).name)  # the lane's simulated reader
    reader.profile = get_profile("none")  # host time only
    with station.hub.subscribe(sources=f"readers/{READER}", kinds="card_present") as seen:
        reader.insert(SimCard.blank(uid=bytes.fromhex("11223344")))
        seen.wait_for(lambda e: not e.snapshot, timeout_s=10)
    direct: list[float] = []
    with backend.connect(reader.name) as conn:
        for _ in range(jobs):
            started = time.perf_counter()
            conn.transmit(GET_UID)
            direct.append((time.perf_counter() - started) * 1000)
    via_worker: list[float] = []
    station.run(READER, uid_job, timeout_s=5.0)  # open the worker's connection first
    for _ in range(jobs):
        started = time.perf_counter()
        station.run(READER, uid_job, timeout_s=5.0)
        via_worker.append((time.perf_counter() - started) * 1000)
    return direct, via_worker


def main(jobs: int) -> None:
    logging.disable(logging.WARNING)  # the simulator's backends are not carddaemon's own: known
    with (
        tempfile.TemporaryDirectory(prefix="carddaemon-bench-") as tmp,
        Station.from_config(make_store_folder(Path(tmp))) as station,
    ):
        station.start()
        station.wait_for_reader(READER)
        direct, via_worker = measure(station, jobs)
    d50, w50 = statistics.median(direct), statistics.median(via_worker)
    d99 = statistics.quantiles(direct, n=100)[98]
    w99 = statistics.quantiles(via_worker, n=100)[98]
    print(f"{'path':<12}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'direct':<12}{d50:>10.4f}{d99:>10.4f}")
    print(f"{'worker':<12}{w50:>10.4f}{w99:>10.4f}")
    print(
        f"reader_worker_overhead: jobs={jobs} direct_p50_ms={d50:.4f} worker_p50_ms={w50:.4f}"
        f" overhead_per_job_ms={w50 - d50:.4f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
