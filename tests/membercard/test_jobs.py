"""``card_job``: the one dispatcher from a request to the service or personaliser, run on the
reader's worker thread (``ReaderPool``), once per operation; on both stacks (``till`` fixture:
in-process simulator, then real pcscd + vpcd)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest

from daemon.errors import InvalidArgument
from daemon.membercard import CardInfo, IssueResult, IssueSpec, OpResult
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import (
    AdjustPoints,
    CardRequest,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    ReadCard,
    ReplaceCard,
)
from daemon.readers.workers import Job, JobContext
from sim.card import SimCard
from tests.membercard.terminal import uid_for
from tests.membercard.till import Till

UID = uid_for(4811)
NEW_UID = uid_for(4812)

#: op -> (the request, whether it goes to the personaliser, what the job returns)
OPS: dict[str, tuple[CardRequest, bool, type]] = {
    "read": (ReadCard(expected_uid=UID.hex()), False, CardInfo),
    "debit": (Debit("j-debit", 1_000), False, OpResult),
    "credit": (Credit("j-credit", 1_000), False, OpResult),
    "points": (AdjustPoints("j-points", -5), False, OpResult),
    "issue": (IssueCard(IssueSpec("8800004899", tier=1), "j-issue"), True, IssueResult),
    "erase": (EraseCard("j-erase", force=True), True, str),
    "replace": (ReplaceCard(UID.hex(), "j-replace"), True, IssueResult),
}


def _on_thread(job: Job[object], seen: list[str]) -> Job[object]:
    def wrapped(ctx: JobContext) -> object:
        seen.append(threading.current_thread().name)
        return job(ctx)

    return wrapped


@pytest.mark.parametrize("op", list(OPS))
def test_card_job_runs_each_operation_on_the_reader_worker(till: Till, op: str) -> None:
    request, issuing, result_type = OPS[op]
    if op != "issue":
        till.issue(UID)
    if op == "replace":
        till.present(SimCard.blank(uid=NEW_UID))
    elif op == "issue":
        till.present(SimCard.blank(uid=UID))
    seen: list[str] = []
    target = till.issuer if issuing else till.service
    result = till.run(_on_thread(card_job(target, till.profiles[0], request), seen))
    assert seen == [f"reader-worker[{till.name(0)}]"]
    assert isinstance(result, result_type)
    if isinstance(result, OpResult):
        assert (result.request_id, result.op) == (getattr(request, "request_id", None), op)
    if op in ("erase", "replace", "issue"):
        assert till.journal.get(getattr(request, "request_id", "")) is not None


def test_a_request_for_the_other_object_is_refused_before_it_is_queued(till: Till) -> None:
    """The types allow any pairing (the station dispatches a ``CardRequest``); the check is
    at run time, before the job reaches a worker."""
    with pytest.raises(InvalidArgument, match="Debit is run by a MemberCardService"):
        card_job(till.issuer, till.profiles[0], Debit("x", 1))
    with pytest.raises(InvalidArgument, match="EraseCard is run by a Personaliser"):
        card_job(till.service, till.profiles[0], EraseCard("x"))


#: READ BINARY of one block of each member sector: record slot 0, record slot 1, purse primary
FOREIGN_READS = [bytes.fromhex(f"FFB000{b:02X}10") for b in (4, 8, 12)]
JOBS: dict[str, Callable[[int], CardRequest]] = {
    "read": lambda n: ReadCard(),
    "debit": lambda n: Debit(f"door-debit-{n}", 1_000),
    "credit": lambda n: Credit(f"door-credit-{n}", 1_000),
    "points": lambda n: AdjustPoints(f"door-points-{n}", -1),
}


@pytest.mark.parametrize("op", list(JOBS))
def test_no_member_sector_is_left_open_after_a_job(till: Till, op: str) -> None:
    """A job ends with the card authenticated to no member sector (the public MAD sector at
    most), after the POS has its answer: another PC/SC client's READ of a record or the purse
    right after the job is refused, on the simulator and through pcscd + vpcd. (One READ per
    job: a refused READ halts the card, so each sector is tried after a job of its own, the
    card presented afresh.)"""
    card = till.issue(UID)
    answers = []
    for n, apdu in enumerate(FOREIGN_READS):
        till.run(card_job(till.service, till.profiles[0], JOBS[op](n)))
        with contextlib.closing(till.stack.backend.connect(till.name(0))) as foreign:
            answers.append(foreign.transmit(apdu).sw)
        till.present(card)  # taken off and back: the refused READ left the card halted
    assert all(sw != 0x9000 for sw in answers), [hex(sw) for sw in answers]
