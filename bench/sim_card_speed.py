"""Simulator cost per APDU, and the virtual-clock duration of a debit in each latency profile.

Runs N ACS debit flows (LOAD KEY, GENERAL AUTHENTICATE, VALUE READ, VALUE decrement, READ
BINARY) straight through ``SimReader.process`` and prints the host CPU time per APDU (p50/p99)
and the simulated duration of one flow on the ``acr1252u`` and ``acr122u`` profiles.

No :class:`~daemon.station.Station` here, unlike the other benchmarks: this measures the
simulator's chip and reader models alone, below every daemon layer (no connection, no worker,
no config), so there is nothing of the daemon to build.

    .venv/bin/python bench/sim_card_speed.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time

from sim.reader import SimReader
from sim.store import set_sector, transport_card, value_block

FLOW = [
    bytes.fromhex("FF820000 06 A0A1A2A3A4A5"),  # LOAD KEY slot 0
    bytes.fromhex("FF860000 05 0100086000"),  # GENERAL AUTHENTICATE block 8 key A
    bytes.fromhex("FFB10008 04"),  # VALUE READ block 8
    bytes.fromhex("FFD70008 05 0200000001"),  # VALUE decrement 1
    bytes.fromhex("FFB00008 10"),  # READ BINARY block 8
]


def _reader(profile: str) -> SimReader:
    card = transport_card()
    set_sector(
        card,
        2,
        key_a=bytes.fromhex("A0A1A2A3A4A5"),
        key_b=bytes.fromhex("B0B1B2B3B4B5"),
        access=bytes.fromhex("08778F"),
    )
    card.program(8, value_block(1_000_000, 8))
    reader = SimReader(latency=profile)
    reader.insert(card)
    return reader


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    reader = _reader("none")
    per_apdu: list[float] = []
    for _ in range(n):
        for apdu in FLOW:
            t0 = time.perf_counter()
            reader.process(apdu)
            per_apdu.append((time.perf_counter() - t0) * 1e6)
    ordered = sorted(per_apdu)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    print(f"sim_apdu: n={len(per_apdu)} p50_us={statistics.median(per_apdu):.1f} p99_us={p99:.1f}")
    for profile in ("acr1252u", "acr122u"):
        timed = _reader(profile)
        for apdu in FLOW:
            timed.process(apdu)
        print(f"sim_debit_flow[{profile}]: virtual_ms={timed.clock.now_ms:.1f}")


if __name__ == "__main__":
    main()
