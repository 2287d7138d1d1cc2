"""Member card operations as reader-worker jobs: on the simulator and through real pcscd.

Every test runs twice (``stack`` fixture): in-process ``SimBackend``, then a private pcscd +
vpcd + pyscard. Jobs go through a :class:`ReaderPool`, as the API will send them. Fault points
are never hard-coded: they come from the APDU trace of an identical undisturbed run (a copy of
the card at a terminal whose journal knows the card as this one does).

Where vpcd cannot report what the simulator knows, the expectation is written per path: a card
pulled before an APDU reaches pyscard as a lost response (``ResponseLost``), never as "not
executed"; the member card rules must hold all the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.errors import (
    CardDaemonError,
    CardHotlisted,
    CardRemoved,
    InsufficientBalance,
    InvalidAmount,
    InvalidArgument,
    OperationTimeout,
    RequestIdReused,
    ResponseLost,
    UnknownCardFormat,
    WriteUnconfirmed,
)
from daemon.journal import Journal, RequestState
from daemon.membercard import MemberCardService, OpResult
from daemon.membercard.jobs import (
    ReaderProfile,
    card_job,
)
from daemon.membercard.layout import SLOT_MAC_BLOCKS
from daemon.membercard.requests import AdjustPoints, Credit, Debit, EraseCard, ReadCard, ReplaceCard
from daemon.readers.workers import Job, JobContext, ReaderWorker
from sim.card import SimCard
from sim.faults import FaultPlan
from tests.membercard.terminal import PROGRAMME, uid_for
from tests.membercard.till import WAIT, MakeJob, Till, View, purse, writes

UID = uid_for(4711)
OTHER_UID = uid_for(4712)
EARNED = PROGRAMME.points_for(2, 8_800)  # 金卡: 3 points per 100 yuan
# A card pulled before a READ: what the reader layer saw underneath CardRemoved.
PULLED_BEFORE = {"sim": CardRemoved, "pcsc": ResponseLost}


# --- the operations, end to end --------------------------------------------------------------


@pytest.mark.parametrize("i", [0, 1], ids=["acr1252u", "omnikey"])
def test_issue_read_pay_top_up_and_redeem_through_the_reader_worker(till: Till, i: int) -> None:
    card = till.issue(UID, i)
    svc, reader = till.service, till.profiles[i]
    info = till.run(card_job(svc, reader, ReadCard(expected_uid=UID.hex())), i)
    assert (info.member_id, info.tier_name, info.balance, info.points) == (
        "8800004711", "金卡", 100_000, 50,
    )  # fmt: skip
    paid = till.run(card_job(svc, reader, Debit(request_id="sale-1", amount=45_678)), i)
    assert (paid.balance, paid.points_delta, paid.points) == (54_322, 12, 62)  # 3 per 100 yuan
    topped = till.run(card_job(svc, reader, Credit(request_id="top-1", amount=100_000)), i)
    assert (topped.bonus, topped.balance) == (5_000, 159_322)  # 存1000送50
    redeemed = till.run(card_job(svc, reader, AdjustPoints(request_id="gift-1", delta=-20)), i)
    assert redeemed.points == 42
    assert till.view(i=i) == (159_322, 42)
    assert till.fresh_view(i) == (159_322, 42)  # from the card alone
    assert purse(card) == (159_322, 159_322)  # what any MIFARE tool sees
    last = reader.trace.last()
    assert last is not None
    assert last.reader == till.name(i)  # the reader's own trace ring got every exchange


def test_bad_input_is_refused_before_anything_is_written(till: Till) -> None:
    card = till.issue(UID)
    svc, reader = till.service, till.profiles[0]
    sent = till.stack.readers[0].apdu_count
    with pytest.raises(InvalidAmount, match="amount"):
        till.run(card_job(svc, reader, Debit(request_id="zero", amount=0)))
    assert till.stack.readers[0].apdu_count == sent  # refused before the card was spoken to
    before = card.memory
    with pytest.raises(InsufficientBalance, match="balance 100000 fen < amount 100001 fen"):
        till.run(card_job(svc, reader, Debit(request_id="too-much", amount=100_001)))
    assert card.memory == before
    record = till.journal.get("too-much")
    assert record is not None
    assert record.state is RequestState.ABORTED
    with pytest.raises(InvalidArgument, match=r"job for 'HID Global OMNIKEY.*submitted to reader"):
        till.run(
            card_job(svc, till.profiles[1], ReadCard()), 0
        )  # another reader's dialect and trace


def test_a_lost_card_is_replaced_and_the_new_one_erased_as_jobs(till: Till) -> None:
    lost = till.issue(UID)
    till.run(
        card_job(till.service, till.profiles[0], Debit(request_id="before-loss", amount=5_000))
    )
    balance, points = till.view()
    new = SimCard.blank(uid=OTHER_UID)
    till.present(new)
    job = card_job(
        till.issuer, till.profiles[0], ReplaceCard(old_uid=UID.hex(), request_id="replace-1")
    )
    moved = till.run(job)
    assert (moved.uid, moved.balance, moved.points) == (OTHER_UID.hex().upper(), balance, points)
    assert till.run(job).replayed
    assert till.view() == (balance, points)
    till.present(lost)
    with pytest.raises(CardHotlisted, match=UID.hex().upper()):
        till.view()
    till.present(new)
    erase = card_job(till.issuer, till.profiles[0], EraseCard(request_id="erase-1", force=True))
    assert till.run(erase) == OTHER_UID.hex().upper()
    with pytest.raises(UnknownCardFormat):
        till.view()


# --- idempotency ---------------------------------------------------------------------------------


def test_a_retried_request_id_returns_the_recorded_outcome(till: Till) -> None:
    card = till.issue(UID)
    svc, reader = till.service, till.profiles[0]
    first = till.run(card_job(svc, reader, Debit(request_id="sale-7", amount=10_000)))
    memory, traced = card.memory, reader.trace.count
    again = till.run(card_job(svc, reader, Debit(request_id="sale-7", amount=10_000)))
    assert again.replayed
    assert again.to_outcome() == first.to_outcome()
    # replayed from the journal: the card is read (a request is bound to its card), not written
    assert card.memory == memory
    replay = [e for e in reader.trace.entries() if e.seq > traced]
    assert replay  # the ring (32) holds the whole replay: a read is 8 APDUs
    assert not writes(replay)
    with pytest.raises(RequestIdReused, match="sale-7"):
        till.run(card_job(svc, reader, Debit(request_id="sale-7", amount=20_000)))
    assert till.view() == (90_000, 50 + PROGRAMME.points_for(2, 10_000))


def _hold(started: threading.Event, release: threading.Event) -> Job[None]:
    def job(ctx: JobContext) -> None:
        started.set()
        assert release.wait(WAIT), "test forgot to release the worker"

    return job


def test_two_pos_clients_with_one_request_id_on_one_reader_pay_once(till: Till) -> None:
    till.issue(UID)
    started, release = threading.Event(), threading.Event()
    held = till.pool.submit(till.name(0), _hold(started, release), time.monotonic() + WAIT)
    assert started.wait(WAIT)
    barrier = threading.Barrier(2)
    submitted = [threading.Event(), threading.Event()]
    results: list[OpResult] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        job = card_job(till.service, till.profiles[0], Debit(request_id="pos-dup", amount=3_000))
        barrier.wait(WAIT)
        future = till.pool.submit(till.name(0), job, time.monotonic() + WAIT)
        submitted[n].set()
        with lock:
            results.append(future.result(WAIT))

    clients = [threading.Thread(target=client, args=(n,), name=f"pos-{n}") for n in range(2)]
    for thread in clients:
        thread.start()
    assert all(event.wait(WAIT) for event in submitted)  # both queued behind the held job
    release.set()
    held.result(WAIT)
    for thread in clients:
        thread.join(WAIT)
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].to_outcome() == results[1].to_outcome()
    assert till.view() == (97_000, 50 + PROGRAMME.points_for(2, 3_000))
    changes = [e for e in till.journal.audit_events("value_change") if e["request_id"] == "pos-dup"]
    assert len(changes) == 1


def test_one_request_id_at_two_readers_at_once_executes_once(till: Till) -> None:
    """Two workers run the duplicates truly in parallel; the journal lets exactly one through,
    and the other card is refused: a request is bound to the card it ran on."""
    cards = [till.issue(UID, 0), till.issue(OTHER_UID, 1, member="8800004712")]
    gates = [(threading.Event(), threading.Event()) for _ in range(2)]
    for i, (started, release) in enumerate(gates):
        till.pool.submit(till.name(i), _hold(started, release), time.monotonic() + WAIT)
        assert started.wait(WAIT)
    futures = [
        till.pool.submit(
            till.name(i),
            card_job(till.service, till.profiles[i], Debit(request_id="pos-twice", amount=2_500)),
            time.monotonic() + WAIT,
        )
        for i in range(2)
    ]
    for _, release in gates:
        release.set()
    outcomes: list[object] = []
    for f in futures:
        try:
            outcomes.append(f.result(WAIT))
        except RequestIdReused as exc:  # the duplicate met the other card: not a replay
            outcomes.append(exc)
    assert sorted(type(o).__name__ for o in outcomes) == ["OpResult", "RequestIdReused"]
    assert sorted(purse(c)[0] for c in cards) == [97_500, 100_000]  # one card, once


# --- cards pulled, responses lost, writes torn ---------------------------------------------------


def _debit(amount: int, request_id: str) -> MakeJob:
    def make(service: MemberCardService, reader: ReaderProfile) -> Job[object]:
        return card_job(service, reader, Debit(request_id=request_id, amount=amount))

    return make


def _tear_garbage(k: int) -> Callable[[FaultPlan], None]:
    def arm(plan: FaultPlan) -> None:
        plan.tear(k, "garbage")

    return arm


def test_card_pulled_before_the_first_write_changes_nothing(till: Till) -> None:
    card = till.issue(UID)
    entries = till.dry_run(card, _debit(8_800, "twin"))
    first_write = writes(entries)[0]
    last_read = max(k for k in range(1, first_write) if entries[k - 1].command.startswith("READ"))
    before = card.memory
    job = card_job(till.service, till.profiles[0], Debit(request_id="pulled", amount=8_800))
    error = till.faulted(job, lambda plan: plan.remove_before(last_read))
    assert isinstance(error, CardRemoved)  # "nothing changed, present the card again"
    assert isinstance(error.__cause__, PULLED_BEFORE[till.stack.kind])
    assert card.memory == before
    record = till.journal.get("pulled")
    assert record is not None
    assert record.state is RequestState.ABORTED  # provably not applied: the id may be retried
    till.present(card)
    assert till.view() == (100_000, 50)
    assert not till.run(job).replayed
    assert till.view() == (91_200, 50 + EARNED)


def test_card_pulled_before_the_first_write_command_is_resolved_not_guessed(till: Till) -> None:
    """Through vpcd "pulled before the write" looks like "write sent, answer lost": the daemon
    must say outcome unknown, and reading the card must then show it was not applied."""
    card = till.issue(UID)
    first_write = writes(till.dry_run(card, _debit(8_800, "twin")))[0]
    before = card.memory
    job = card_job(till.service, till.profiles[0], Debit(request_id="pulled-w", amount=8_800))
    error = till.faulted(job, lambda plan: plan.remove_before(first_write))
    assert isinstance(error, WriteUnconfirmed)
    assert card.memory == before
    till.present(card)
    info = till.run(card_job(till.service, till.profiles[0], ReadCard()))
    assert (info.balance, info.resolved) == (100_000, ("pulled-w",))
    record = till.journal.get("pulled-w")
    assert record is not None
    assert record.state is RequestState.ABORTED
    assert not till.run(job).replayed
    assert till.view() == (91_200, 50 + EARNED)


def test_lost_response_on_the_commit_write_resolves_to_exactly_one_debit(till: Till) -> None:
    card = till.issue(UID)
    entries = till.dry_run(card, _debit(8_800, "twin"))
    commit = writes(entries)[1]  # state block, then the MAC block: the commit point
    assert entries[commit - 1].command in {f"UPDATE BINARY block {b}" for b in SLOT_MAC_BLOCKS}
    job = card_job(till.service, till.profiles[0], Debit(request_id="lost", amount=8_800))
    error = till.faulted(job, lambda plan: plan.lose_response(commit))
    assert isinstance(error, WriteUnconfirmed)
    record = till.journal.get("lost")
    assert record is not None
    assert record.state is RequestState.PENDING
    till.present(card)  # the customer taps again
    info = till.run(card_job(till.service, till.profiles[0], ReadCard()))
    assert (info.balance, info.resolved) == (91_200, ("lost",))  # the write had landed
    record = till.journal.get("lost")
    assert record is not None
    assert record.state is RequestState.COMMITTED
    retry = till.run(job)
    assert (retry.replayed, retry.balance) == (True, 91_200)
    assert till.view() == (91_200, 50 + EARNED)  # charged once
    assert purse(card) == (91_200, 91_200)


def test_torn_write_at_every_write_of_a_debit_leaves_old_or_new(till: Till, tmp_path: Path) -> None:
    card = till.issue(UID)
    till.run(card_job(till.service, till.profiles[0], Debit(request_id="earlier", amount=1_000)))
    image = card.memory  # both record slots hold records: the steady state
    points = writes(till.dry_run(card, _debit(20_000, "twin")))
    assert len(points) >= 4  # state, MAC, then the two purse blocks
    old, new = (99_000, 50), (79_000, 50 + PROGRAMME.points_for(2, 20_000))
    seen: set[View] = set()
    for k in points:
        torn = SimCard(UID, memory=image)
        with Journal(tmp_path / f"tear-{k}.db") as journal:
            service = till.twin(journal, UID)
            till.present(torn)
            job = card_job(service, till.profiles[0], Debit(request_id=f"tear-{k}", amount=20_000))
            outcome = till.faulted(job, _tear_garbage(k))
            if isinstance(outcome, CardDaemonError):
                assert isinstance(outcome, WriteUnconfirmed), f"write {k}: {outcome!r}"
            till.present(torn)  # the card left the field with the tear
            fresh = till.fresh_view()
            same = till.view(service)
            assert same in (old, new), f"write {k}: the terminal reads {same}"
            assert fresh == same, f"write {k}: a fresh terminal reads {fresh}, this one {same}"
            record = journal.get(f"tear-{k}")
            assert record is not None
            assert record.state is (RequestState.COMMITTED if same == new else RequestState.ABORTED)
            till.run(job)  # the POS retries with the same request_id
            assert till.view(service) == new, f"write {k}: after the retry"
            seen.add(same)
    assert seen == {old, new}  # both sides of the commit point were exercised


# --- deadlines ---------------------------------------------------------------------------------


def test_a_debit_out_of_time_after_reading_stops_before_the_first_write(till: Till) -> None:
    """The worker's clock here advances one second per APDU: the card read (8 APDUs) eats a
    3-second budget, so the debit stops at the last point where nothing was written."""
    card = till.issue(UID)
    name, reader = till.name(0), till.profiles[0]

    def clock() -> float:
        return float(reader.trace.count)

    job = card_job(till.service, reader, Debit(request_id="late", amount=500))
    with ReaderWorker(name, lambda: till.stack.backend.connect(name), clock=clock) as worker:
        before = card.memory
        future = worker.submit(job, clock() + 3)
        with pytest.raises(OperationTimeout, match=r"debit late \(card read, nothing written"):
            future.result(WAIT)
        assert card.memory == before
        record = till.journal.get("late")
        assert record is not None
        assert record.state is RequestState.ABORTED
        assert worker.submit(job, clock() + 1000).result(WAIT).balance == 99_500
