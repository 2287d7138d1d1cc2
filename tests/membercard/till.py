"""A store PC over the reader contract stack, for the member card job tests.

A :class:`Till` has its own journal and services and a :class:`ReaderPool` over both readers of
the ``stack`` fixture (in-process simulator or real pcscd + vpcd + pyscard). The ``till`` fixture
(``tests/membercard/conftest.py``) builds one on the ``stack`` fixture.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from daemon.errors import CardDaemonError
from daemon.journal import Journal
from daemon.keystore import Keystore
from daemon.membercard import IssueSpec, MemberCardService, Personaliser
from daemon.membercard.jobs import ReaderProfile, card_job
from daemon.membercard.layout import PURSE_BACKUP, PURSE_PRIMARY
from daemon.membercard.requests import IssueCard, ReadCard
from daemon.mifare.value import decode_value_block
from daemon.readers.trace import ApduTrace, TraceEntry
from daemon.readers.workers import Job, ReaderPool
from sim.card import SimCard
from sim.faults import FaultPlan
from tests.membercard.terminal import PROGRAMME, TODAY
from tests.pcscd_stack import Stack

__all__ = ["WAIT", "MakeJob", "Till", "View", "is_write", "purse", "writes"]

T = TypeVar("T")
WAIT = 30.0  # bound for "does not hang"; never a timing assertion
View = tuple[int, int]  # (balance, points)
MakeJob = Callable[[MemberCardService, ReaderProfile], Job[object]]


@dataclass
class Till:
    """One store PC: journal, services, and a reader pool over both readers of the stack."""

    stack: Stack
    keystore: Keystore
    journal: Journal
    pool: ReaderPool
    profiles: list[ReaderProfile]
    service: MemberCardService
    issuer: Personaliser

    def name(self, i: int = 0) -> str:
        return self.stack.name(i)

    def run(self, job: Job[T], i: int = 0) -> T:
        """Run ``job`` on reader ``i``; returns once the worker is idle again (the job's
        clean-up after its result included), so faults armed next hit the next job only."""
        try:
            return self.pool.submit(self.name(i), job, time.monotonic() + WAIT).result(WAIT)
        finally:
            assert self.pool.worker(self.name(i)).wait_idle(WAIT)

    def present(self, card: SimCard, i: int = 0) -> None:
        """Take whatever is on reader ``i`` away, then present ``card`` (as a customer does)."""
        if self.stack.readers[i].card is not None:
            self.stack.remove(i)
        else:
            self.stack.wait_until(i, False)
        self.stack.insert(i, card)
        self.pool.card_removed(self.name(i))  # what the monitor reports between the two

    def issue(self, uid: bytes, i: int = 0, *, member: str = "8800004711") -> SimCard:
        card = SimCard.blank(uid=uid)
        self.present(card, i)
        spec = IssueSpec(member, 2, dt.date(2028, 12, 31), 100_000, 50)  # tier 2: 金卡
        self.run(
            card_job(
                self.issuer, self.profiles[i], IssueCard(spec, request_id=f"issue-{uid.hex()}")
            ),
            i,
        )
        return card

    def view(self, service: MemberCardService | None = None, i: int = 0) -> View:
        info = self.run(card_job(service or self.service, self.profiles[i], ReadCard()), i)
        return info.balance, info.points

    def fresh_view(self, i: int = 0) -> View:
        """What a PC that never saw the card reads from it: the card alone."""
        with Journal(":memory:") as journal:
            return self.view(MemberCardService(self.keystore, journal, PROGRAMME), i)

    def twin(self, journal: Journal, uid: bytes) -> MemberCardService:
        """A service over ``journal`` knowing ``uid`` as this till does (last counter, member)."""
        seen = self.journal.last_seen(uid.hex().upper())
        assert seen is not None
        assert seen.member_id is not None
        journal.observe(seen.uid, seen.member_id, seen.last_counter, seen.state)
        journal.bind_member(seen.member_id, seen.uid)
        return MemberCardService(self.keystore, journal, PROGRAMME, today=lambda: TODAY)

    def dry_run(self, card: SimCard, make: MakeJob) -> list[TraceEntry]:
        """The APDUs an operation sends to ``card`` when nothing goes wrong, numbered as the
        reader's fault plan numbers them (run on a copy, at a twin terminal)."""
        name = self.name(0)
        profile = ReaderProfile(name, self.profiles[0].dialect, ApduTrace(name, capacity=256))
        with Journal(":memory:") as journal:
            self.present(SimCard(card.uid, memory=card.memory))
            plan = self.stack.readers[0].faults
            plan.arm()
            self.run(make(self.twin(journal, card.uid), profile))
            entries = profile.trace.entries()
            assert plan.count == len(entries)  # the card saw exactly the APDUs the job sent
        self.present(card)
        return entries

    def faulted(self, job: Job[T], arm: Callable[[FaultPlan], None]) -> T | CardDaemonError:
        plan = self.stack.readers[0].faults
        plan.clear()
        plan.arm()
        arm(plan)
        try:
            return self.run(job)
        except CardDaemonError as exc:
            return exc
        finally:
            plan.clear()


def is_write(entry: TraceEntry) -> bool:
    return entry.command.startswith("UPDATE BINARY") or (
        "VALUE" in entry.command and not entry.command.startswith("READ VALUE")
    )


def writes(entries: list[TraceEntry]) -> list[int]:
    """1-based APDU numbers of every command that may change the card."""
    return [k for k, e in enumerate(entries, start=1) if is_write(e)]


def purse(card: SimCard) -> tuple[int, int]:
    blocks = (card.memory[b * 16 : b * 16 + 16] for b in (PURSE_PRIMARY, PURSE_BACKUP))
    primary, backup = (decode_value_block(raw).value for raw in blocks)
    return primary, backup
