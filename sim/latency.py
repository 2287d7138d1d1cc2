"""Per-APDU latency model: NXP air time per chip command plus a fixed reader overhead.

Air times are the MF1S50yyX typical values at 106 kbit/s (docs reference perf_reliability §1.1):
select 2.5 ms, authenticate 2 ms, read 2.5 ms, write 5.5 ms, increment/decrement/restore
2.5 ms, transfer 4.5 ms. Reader overhead per APDU (USB + firmware): ``acr1252u`` 5 ms,
``acr122u`` 25 ms. ``none`` charges nothing (pure logic tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from daemon.errors import InvalidArgument

__all__ = ["PROFILES", "ChipOp", "LatencyProfile", "get_profile"]

logger = logging.getLogger(__name__)

ChipOp = Literal[
    "select", "authenticate", "read", "write", "increment", "decrement", "restore", "transfer"
]


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """How long one APDU and each chip command it triggers take, in milliseconds."""

    name: str
    reader_overhead_ms: float
    select_ms: float = 2.5
    authenticate_ms: float = 2.0
    read_ms: float = 2.5
    write_ms: float = 5.5
    value_ms: float = 2.5
    transfer_ms: float = 4.5

    def air_ms(self, op: ChipOp) -> float:
        """Air time of one chip command."""
        if op == "select":
            return self.select_ms
        if op == "authenticate":
            return self.authenticate_ms
        if op == "read":
            return self.read_ms
        if op == "write":
            return self.write_ms
        if op == "transfer":
            return self.transfer_ms
        return self.value_ms  # increment, decrement, restore


PROFILES: dict[str, LatencyProfile] = {
    "acr1252u": LatencyProfile("acr1252u", reader_overhead_ms=5.0),
    "acr122u": LatencyProfile("acr122u", reader_overhead_ms=25.0),
    "none": LatencyProfile(
        "none",
        reader_overhead_ms=0.0,
        select_ms=0.0,
        authenticate_ms=0.0,
        read_ms=0.0,
        write_ms=0.0,
        value_ms=0.0,
        transfer_ms=0.0,
    ),
}


def get_profile(name: str) -> LatencyProfile:
    """Look a profile up by name; unknown names are refused with the known ones listed."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InvalidArgument("latency", f"unknown profile {name!r} (known: {known})") from None
