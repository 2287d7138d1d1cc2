"""Shared set-up for the member card tests and benches: terminals over the in-process sim.

A *terminal* is one store PC: its own journal (SQLite file) and service, a simulated reader,
and the chain-wide keystore. Test keys are generated per test (never fixed master keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daemon.journal import Journal
from daemon.keystore import Keystore
from daemon.membercard.issuing import IssueSpec, Personaliser
from daemon.membercard.rules import BonusStep, Programme
from daemon.membercard.service import MemberCardService
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.reader import SimReader

TODAY = dt.date(2026, 11, 23)
PROGRAMME = Programme(
    bonus_steps=(BonusStep(100000, 5000), BonusStep(1000000, 120000)), balance_cap=50_000_000
)


def uid_for(n: int) -> bytes:
    """A distinct, valid 4-byte NUID (byte 0 never 0x88)."""
    return bytes((0x04, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


@dataclass
class Terminal:
    """One store PC (journal + services) with one simulated reader."""

    keystore: Keystore
    journal: Journal
    reader: SimReader
    programme: Programme = PROGRAMME
    service: MemberCardService = field(init=False)
    issuer: Personaliser = field(init=False)

    def __post_init__(self) -> None:
        self.service = MemberCardService(
            self.keystore, self.journal, self.programme, today=lambda: TODAY
        )
        self.issuer = Personaliser(self.keystore, self.journal, self.programme, today=lambda: TODAY)

    def storage(self) -> StorageCard:
        return StorageCard(self.reader.connect())

    def close(self) -> None:
        self.journal.close()
        self.reader.close()


@contextmanager
def terminal(
    keystore: Keystore, path: Path, *, model: str = "acr1252u", latency: str | None = "none"
) -> Iterator[Terminal]:
    reader = SimReader(model=model, latency=latency)  # type: ignore[arg-type]
    term = Terminal(keystore, Journal(path), reader)
    try:
        yield term
    finally:
        term.close()


def issue(
    term: Terminal,
    uid: bytes,
    *,
    member_id: str = "8800001234",
    balance: int = 100_000,
    points: int = 50,
    tier: int = 2,
    valid_until: dt.date | None = dt.date(2028, 12, 31),
    request_id: str | None = None,
) -> SimCard:
    """A freshly issued member card, left in ``term``'s reader."""
    card = SimCard.blank(uid=uid)
    term.reader.insert(card)
    spec = IssueSpec(member_id, tier, valid_until, balance, points)
    with term.storage() as sc:
        term.issuer.issue(sc, spec, request_id=request_id or f"issue-{uid.hex()}")
    return card
