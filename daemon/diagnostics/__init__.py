"""Technician diagnostics: the one layer that combines ``daemon.readers`` and ``daemon.mifare``.

Library level (the gRPC technician service calls it later): probe a card, decode what a
reader and a card say about themselves, measure reader latency.
"""

from daemon.diagnostics.probe import STATIONS, probe_card, probe_job
from daemon.diagnostics.report import Gen2Check, Gen2Verdict, LatencyStats, ProbeResult

__all__ = [
    "STATIONS",
    "Gen2Check",
    "Gen2Verdict",
    "LatencyStats",
    "ProbeResult",
    "probe_card",
    "probe_job",
]
