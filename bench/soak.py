"""The lunch rush for ten minutes against the real daemon process: no errors, no growth.

The store PC of ``bench/crash_campaign.py`` (:class:`StorePc`: a private pcscd, two vpcd readers
with an issued member card each, ``carddaemon serve`` as a process of its own over backend
``pcsc``) under the load of ``bench/api_latency.py``'s lunch rush, run by that bench's own POS
process (``api_latency.py --pos-client``, imported here, not copied): 8 tills at 25 calls/s each
(reads, GetOperation, health checks, one debit in ten with a fresh request_id) and 4
``WatchReaders`` streams, for ``--seconds`` (600). Meanwhile this process samples the daemon's
resident memory (``VmRSS``) and open descriptors (``/proc/<pid>/fd``) every ``--every`` seconds.

Growth is measured from the end of the warm-up (the first tenth of the run, at most 60 s:
caches, gRPC's pools and SQLite's page cache fill there) to the end: the median of the last
three samples less the median of the first three after the warm-up. At the end every card is
read back and compared with the journal (each card's balance and counter are its issued values
less the journal's committed debits).

    .venv/bin/python bench/soak.py [--seconds 600] [--every 5]

Measured on the 2-core development VM shared with other test runs: 120,000 calls, 0 errors,
RSS 67-68 MB throughout (+0.3 MB), 22 descriptors throughout; the calls ran seconds behind the
rush's schedule there (the simulated cards' CRYPTO1, the POS process and the daemon share the
two cores with the rest), so latency is bench/api_latency.py's to measure on a quiet machine.

Root needed (pcscd in a mount namespace). Last line: ``soak: calls=… errors=… rss_growth_mb=…
fds_growth=…``; targets 0 errors, RSS growth <= 20 MB, no descriptor growth.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency  # the rush and its POS process
from crash_campaign import LANES, Ledger, StorePc, check

RSS_MAX_MB = 20.0


def sample(pid: int) -> tuple[float, int]:
    """The process's resident memory (MB) and number of open descriptors."""
    rss_kb = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


class Sampler(threading.Thread):
    """(seconds since start, RSS MB, descriptors) every ``every`` s until stopped."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, float, int]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while True:
            rss, fds = sample(self.pid)
            self.samples.append((time.monotonic() - self.t0, rss, fds))
            if self.stop.wait(self.every):
                return


def growth(samples: list[tuple[float, float, int]], warmup_s: float) -> tuple[float, int]:
    after = [s for s in samples if s[0] >= warmup_s] or samples
    first, last = after[:3], after[-3:]
    rss = statistics.median(s[1] for s in last) - statistics.median(s[1] for s in first)
    fds = int(statistics.median(s[2] for s in last) - statistics.median(s[2] for s in first))
    return rss, fds


def soak(seconds: float, every: float, folder: Path) -> dict[str, Any]:
    with StorePc(folder) as store:
        store.start(wait_cards=False)
        uids = store.issue_cards()
        base = {}
        for lane in LANES:
            card = store.read(lane).card
            base[lane] = (card.balance.amount_fen, card.counter)
        sampler = Sampler(store.pid, every)
        pos = api_latency.Pos(store.socket("pos"))
        sampler.start()
        try:
            lanes = [[f"readers/{lane}", uids[lane]] for lane in LANES]
            load = pos.call(op="rush", lanes=lanes, seconds=seconds)
        finally:
            pos.close()
            sampler.stop.set()
            sampler.join()
        tally = check(store, Ledger(), uids, base)
        code = store.stop()
    return {"load": load, "samples": sampler.samples, "tally": tally, "exit": code}


def report(run: dict[str, Any], seconds: float) -> int:
    load, samples = run["load"], run["samples"]
    warmup = min(60.0, seconds / 10)
    rss_growth, fds_growth = growth(samples, warmup)
    calls = sum(len(v) for v in load["ms"].values())
    errors: list[str] = list(load["errors"])
    tally = run["tally"]
    errors += [f"card/journal: {line}" for line in tally.lost + tally.doubled]
    if run["exit"] != 0:
        errors.append(f"carddaemon serve exited {run['exit']} on SIGTERM")
    print(f"{'t s':>8} {'RSS MB':>8} {'fds':>6}")
    step = max(1, len(samples) // 20)
    shown = sorted({*range(0, len(samples), step), len(samples) - 1})
    for t, rss, fds in (samples[i] for i in shown):
        print(f"{t:8.1f} {rss:8.1f} {fds:6d}")
    print(f"{'call':12} {'n':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in sorted(load["ms"].items()):
        print(
            f"{kind:12} {len(values):8d} {statistics.median(values):8.2f} "
            f"{api_latency.pct(values, 0.99):8.2f} {max(values):8.2f}"
        )
    print(
        f"rush: {calls} calls in {load['seconds']:.0f} s, {load['late']} started late; growth "
        f"measured after {warmup:.0f} s of warm-up; RSS max "
        f"{max(s[1] for s in samples):.1f} MB; streams: "
        + ", ".join(f"{s['messages']} msgs" for s in load["streams"])
    )
    for line in errors[:10]:
        print(f"  error: {line}")
    ok = not errors and rss_growth <= RSS_MAX_MB and fds_growth <= 0
    print(
        f"targets: errors=0, rss_growth_mb <= {RSS_MAX_MB:.0f}, fds_growth <= 0: "
        f"{'met' if ok else 'MISSED'}"
    )
    print(
        f"soak: calls={calls} errors={len(errors)} rss_growth_mb={rss_growth:.1f} "
        f"fds_growth={fds_growth}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="rush length (600)")
    parser.add_argument("--every", type=float, default=5.0, help="sampling period, s (5)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.every <= 0:
        parser.error("--seconds and --every: more than 0")
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(prefix="carddaemon-soak-") as tmp:
            run = soak(args.seconds, args.every, Path(tmp) / "store")
    finally:  # made by api_latency at import (its own pcscd's socket dir), unused here
        shutil.rmtree(api_latency.RUN_DIR, ignore_errors=True)
    return report(run, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
