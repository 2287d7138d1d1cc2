"""What handing a card job to a reader's worker thread costs, on top of the job itself.

A job of one GET DATA UID on an in-process simulated ACR1252U with no simulated latency, run
N times directly on the caller's thread and N times through ``ReaderWorker.submit().result()``
(thread hand-off, future, wake-up). The difference is the worker's overhead per job; a card
operation is tens of APDUs at 5-25 ms each, so anything under ~0.2 ms is noise.

    .venv/bin/python bench/reader_worker_overhead.py [JOBS]
"""

from __future__ import annotations

import statistics
import sys
import time

from daemon.readers.connection import CardConnection
from daemon.readers.workers import JobContext, ReaderWorker
from sim.card import SimCard
from sim.reader import SimReader

GET_UID = bytes.fromhex("FFCA000000")


def uid_job(ctx: JobContext) -> bytes:
    return ctx.connection.transmit(GET_UID).data


def main(jobs: int) -> None:
    reader = SimReader(model="acr1252u", latency="none")
    reader.insert(SimCard.blank(uid=bytes.fromhex("11223344")))
    direct: list[float] = []
    conn: CardConnection = reader.connect()
    for _ in range(jobs):
        started = time.perf_counter()
        conn.transmit(GET_UID)
        direct.append((time.perf_counter() - started) * 1000)
    conn.close()
    via_worker: list[float] = []
    with ReaderWorker(reader.name, reader.connect) as worker:
        worker.submit_within(uid_job, 5.0).result(5.0)  # open the connection first
        for _ in range(jobs):
            started = time.perf_counter()
            worker.submit_within(uid_job, 5.0).result(5.0)
            via_worker.append((time.perf_counter() - started) * 1000)
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
