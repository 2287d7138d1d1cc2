"""What the APDU layer costs per APDU on top of the transport (in-process simulator).

Sends the same READ BINARY N times raw through ``SimConnection.transmit`` and N times through
``StorageCard.read_block`` (command building, trace ring, status and length checks), in one
run, and prints p50/p99 of both and the difference per APDU. The simulated reader charges its
latency to a virtual clock, so only host CPU time is measured.

    .venv/bin/python bench/readers_apdu_overhead.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time

from daemon.diagnostics.report import percentile
from daemon.readers.apdu import KeyType, read_binary
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.reader import SimReader


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with SimReader(model="acr1252u", latency="none") as reader:
        reader.insert(SimCard.blank())
        conn = reader.connect()
        with StorageCard(conn) as card:
            card.load_key(b"\xff" * 6, 0)
            card.authenticate(4, KeyType.A, 0)
            apdu = read_binary(4).apdu
            raw: list[float] = []
            layer: list[float] = []
            for _ in range(n):  # interleaved, so drift hits both equally
                t0 = time.perf_counter()
                conn.transmit(apdu)
                t1 = time.perf_counter()
                card.read_block(4)
                t2 = time.perf_counter()
                raw.append((t1 - t0) * 1e3)
                layer.append((t2 - t1) * 1e3)
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
