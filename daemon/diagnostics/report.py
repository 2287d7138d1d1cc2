"""What a technician probe found, as plain data plus a text rendering for the CLI.

Kept apart from the probe logic so the API layer can map these dataclasses to protobuf without
importing anything that talks to a reader. Nothing here ever holds key material: the probe
records which key *kind* it used ("transport key" / "given key"), never key bytes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.mifare.block0 import Finding, Severity

__all__ = ["Gen2Check", "Gen2Verdict", "LatencyStats", "ProbeResult", "percentile"]


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every value reported was really measured)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile {pct} is not in (0, 100]")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class LatencyStats:
    """Round trips of GET DATA UID through the whole stack (reader, driver, pcscd)."""

    rounds: int
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        return cls(
            rounds=len(samples_ms),
            p50_ms=percentile(samples_ms, 50),
            p99_ms=percentile(samples_ms, 99),
            min_ms=min(samples_ms),
            max_ms=max(samples_ms),
        )


class Gen2Verdict(enum.Enum):
    """Outcome of the block-0 write test (the only way to see Gen2/CUID through PC/SC)."""

    GEN2 = "gen2"  # block 0 accepted an authenticated WRITE and read back identical
    NOT_WRITABLE = "not_writable"  # write refused; block 0 verified unchanged
    NOT_RUN = "not_run"  # preconditions missing (block 0 not readable with the key)


@dataclass(frozen=True)
class Gen2Check:
    verdict: Gen2Verdict
    detail: str


@dataclass
class ProbeResult:
    """Everything the probe learned about one reader and the card on it."""

    reader: str
    dialect: str
    dialect_title: str
    firmware: str | None
    firmware_note: str | None
    atr: bytes
    atr_standard: str | None
    atr_card_name: str
    atr_problem: str | None
    uid: bytes
    card_type: str
    key_used: str
    block0: bytes | None = None
    block0_error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    gen2: Gen2Check | None = None
    latency: LatencyStats | None = None

    @property
    def errors(self) -> list[Finding]:
        """Findings a genuine card in a working reader cannot produce."""
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def block0_ok(self) -> bool | None:
        """None when block 0 could not be read; else whether it passed every ERROR rule."""
        if self.block0 is None:
            return None
        return not self.errors

    def finding_codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def format_text(self) -> str:
        """Aligned, human-readable report for ``carddaemon probe``."""
        rows: list[tuple[str, str]] = [
            ("Reader", self.reader),
            ("Dialect", f"{self.dialect_title} ({self.dialect})"),
            ("Firmware", self.firmware or f"- ({self.firmware_note or 'not available'})"),
            ("ATR", _hex(self.atr)),
            ("  standard", self.atr_standard or "-"),
            ("  card name", self.atr_card_name),
        ]
        if self.atr_problem:
            rows.append(("  problem", self.atr_problem))
        rows += [
            ("UID", f"{_hex(self.uid)} ({len(self.uid)} bytes)"),
            ("Card type", self.card_type),
        ]
        if self.block0 is not None:
            verdict = "ok" if self.block0_ok else f"{len(self.errors)} error(s)"
            rows.append(("Block 0", f"{_hex(self.block0)} [{verdict}, {self.key_used}]"))
        else:
            rows.append(("Block 0", f"not read: {self.block0_error or 'unknown reason'}"))
        if self.gen2 is None:
            rows.append(("Gen2/CUID", "not tested (issuing station with block-0 writes only)"))
        else:
            rows.append(("Gen2/CUID", f"{self.gen2.verdict.value}: {self.gen2.detail}"))
        if self.latency is None:
            rows.append(("Latency", "not measured"))
        else:
            lat = self.latency
            rows.append(
                (
                    "Latency",
                    f"{lat.rounds} x GET DATA UID: p50 {lat.p50_ms:.2f} ms,"
                    f" p99 {lat.p99_ms:.2f} ms (min {lat.min_ms:.2f}, max {lat.max_ms:.2f})",
                )
            )
        width = max(len(label) for label, _ in rows)
        lines = [f"{label:<{width}}  {value}" for label, value in rows]
        if self.findings:
            lines.append("Findings")
            for f in self.findings:
                lines.append(f"  {f.severity.value.upper():<7}  {f.code}: {f.message}")
        else:
            lines.append("Findings  none")
        return "\n".join(lines)
