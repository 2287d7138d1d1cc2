"""No open door after a FAILED job either: whatever a member card job ended with, with the card
still on the reader, another PC/SC client's READ of a record or the purse right after it is
refused, on the simulator and through pcscd + vpcd (``till`` fixture).

Three ways a job fails with the card still there:

* refused by the rules after the card was read (a debit above the balance): the card was
  authenticated to the purse sector when the refusal came;
* the answer to the record's MAC write lost while the card stays (on the simulator only:
  through vpcd a lost answer is a dropped socket, so the clean-up's first APDU meets the same
  outage and is skipped, and the bridge's reconnect keeps the card's session - a real reader
  that loses one answer keeps its link, which the third case is);
* a failure the worker must treat as "card in doubt" (a lost answer, as a real reader reports
  it with the card still in the field) at the end of a job that authenticated to the purse: no
  reset is sent for those (a reset right after a pull wedged pcscd's vpcd slot), so only the
  job's clean-up closes the door. Before the clean-up ran after failures too, this READ was
  answered 90 00 on both paths.

The foreign READ asks for a block of the member sector the failed job authenticated to last
(from the reader's APDU trace): the one a client riding on the job's session would get. One
READ per failed job: a refused READ halts the card, so each round presents the card afresh.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable

import pytest

from daemon.errors import (
    CardDaemonError,
    CardRemoved,
    InsufficientBalance,
    ResponseLost,
    WriteUnconfirmed,
)
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import Debit, ReadCard
from daemon.readers.workers import Job, JobContext
from sim.card import SimCard
from tests.membercard.terminal import uid_for
from tests.membercard.till import Till, writes

UID = uid_for(4821)
ROUNDS = 3  # slot parity changes with each committed write: both record sectors get their turn
_AUTH = re.compile(r"GENERAL AUTHENTICATE block (\d+)")


def _refused(till: Till, card: SimCard, n: int) -> CardDaemonError:
    out = till.faulted(card_job(till.service, till.profiles[0], Debit(f"big-{n}", 9_000_000)),
                       lambda plan: None)  # fmt: skip
    assert isinstance(out, InsufficientBalance), out
    return out


def _lost_mac_answer(till: Till, card: SimCard, n: int) -> CardDaemonError:
    till.view()  # settles the last round's unconfirmed write: the dry run's APDUs are the job's
    entries = till.dry_run(card, lambda s, p: card_job(s, p, Debit("dry", 100)))
    mac_write = writes(entries)[1]  # the record's state, then its MAC (the commit point)
    out = till.faulted(card_job(till.service, till.profiles[0], Debit(f"lost-{n}", 100)),
                       lambda plan: plan.lose_response(mac_write))  # fmt: skip
    assert isinstance(out, WriteUnconfirmed), out
    return out


def _in_doubt(till: Till, card: SimCard, n: int) -> CardDaemonError:
    debit = card_job(till.service, till.profiles[0], Debit(f"doubt-{n}", 100))

    def job(ctx: JobContext) -> object:
        debit(ctx)  # committed; the card is left authenticated to the purse sector
        raise ResponseLost("the reader lost the answer to the job's last command")

    out = till.faulted(job, lambda plan: None)
    assert isinstance(out, ResponseLost), out
    return out


FAILURES: dict[str, Callable[[Till, SimCard, int], CardDaemonError]] = {
    "refused": _refused,
    "in_doubt": _in_doubt,
}


def _last_member_block(till: Till) -> int:
    """The first block of the member sector the last job authenticated to last (the clean-up's
    AUTHENTICATE of sector 0 comes after it and is skipped)."""
    for entry in reversed(till.profiles[0].trace.entries()):
        found = _AUTH.match(entry.command)
        if found and int(found[1]) >= 4:
            return int(found[1]) // 4 * 4
    raise AssertionError("the job authenticated to no member sector")


def _foreign_read(till: Till, apdu: bytes) -> int | str:
    """What another program on the PC gets for ``apdu``: a status word, or the error its
    connection met while pcscd was seeing a re-inserted card (bounded retry)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with contextlib.closing(till.stack.backend.connect(till.name(0))) as foreign:
                return foreign.transmit(apdu).sw
        except (CardRemoved, ResponseLost) as exc:
            if time.monotonic() > deadline:
                return exc.reason
            time.sleep(0.05)


def _rounds(till: Till, fail: Callable[[Till, SimCard, int], CardDaemonError]) -> None:
    card = till.issue(UID)
    answers: list[tuple[int, int | str]] = []
    for n in range(ROUNDS):
        fail(till, card, n)
        block = _last_member_block(till)
        answers.append((block, _foreign_read(till, bytes.fromhex(f"FFB000{block:02X}10"))))
        till.present(card)  # taken off and back: the refused READ left the card halted
    assert all(sw != 0x9000 for _, sw in answers), answers
    # the reader still works for the next customer, and the card reads as it should
    info = till.run(card_job(till.service, till.profiles[0], ReadCard()))
    assert info.uid == UID.hex().upper()


@pytest.mark.parametrize("failure", list(FAILURES))
def test_no_member_sector_is_left_open_after_a_failed_job(till: Till, failure: str) -> None:
    _rounds(till, FAILURES[failure])


@pytest.mark.parametrize("stack", ["sim"], indirect=True)
def test_no_member_sector_is_left_open_after_a_lost_write_answer(till: Till) -> None:
    _rounds(till, _lost_mac_answer)


def test_the_clean_up_after_a_failure_does_not_delay_the_answer(till: Till) -> None:
    """The caller has the error before the worker sends the clean-up's APDUs."""
    till.issue(UID)
    reader = till.stack.readers[0]
    seen_at_answer: list[int] = []
    debit: Job[object] = card_job(till.service, till.profiles[0], Debit("late", 9_000_000))
    future = till.pool.submit(till.name(0), debit, time.monotonic() + 30)
    future.add_done_callback(lambda _f: seen_at_answer.append(reader.apdu_count))
    with pytest.raises(InsufficientBalance):
        future.result(30)
    assert till.pool.worker(till.name(0)).wait_idle(30)
    assert seen_at_answer
    assert reader.apdu_count >= seen_at_answer[0] + 2  # LOAD KEY + AUTHENTICATE sector 0 after
