"""Refunds of a payment and cancelled top-ups, as a cashier and a customer would notice them."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import (
    AlreadyReversed,
    CardDaemonError,
    CardMismatch,
    InsufficientBalance,
    InvalidArgument,
    OriginalNotCommitted,
    OriginalNotFound,
    OriginalNotReversible,
    RefundExceedsPayment,
    ReversalCardMismatch,
    ReversalWindowClosed,
    TopUpSpent,
)
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard.requests import AdjustPoints, CancelTopUp, Credit, Debit, Refund
from daemon.membercard.reversals import points_back
from daemon.membercard.rules import Programme
from daemon.membercard.service import OpResult
from sim.card import SimCard
from sim.reader import SimReader
from tests.membercard.terminal import FAULTS, PROGRAMME, TearLab, Terminal, issue, uid_for

UID, OTHER = uid_for(71), uid_for(72)
HEX = UID.hex().upper()
#: 2026-11-23 10:00 local time: business day 2026-11-23 (cut-off 04:00)
MORNING = dt.datetime(2026, 11, 23, 10, 0).timestamp()


class Clock:
    def __init__(self, at: float = MORNING) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def term(tmp_path: Path, clock: Clock) -> Iterator[Terminal]:
    programme = Programme(
        bonus_steps=PROGRAMME.bonus_steps, balance_cap=PROGRAMME.balance_cap, refund_days=7
    )
    t = Terminal(
        Keystore.generate(), Journal(tmp_path / "j.db", clock=clock), SimReader(), programme
    )
    try:
        yield t
    finally:
        t.close()


def run(t: Terminal, request: Debit | Credit | Refund | CancelTopUp | AdjustPoints) -> OpResult:
    with t.storage() as sc:
        match request:
            case Debit():
                return t.service.debit(sc, request)
            case Credit():
                return t.service.credit(sc, request)
            case Refund():
                return t.service.refund(sc, request)
            case CancelTopUp():
                return t.service.cancel_topup(sc, request)
            case AdjustPoints():
                return t.service.adjust_points(sc, request)


def refused(
    t: Terminal, card: SimCard, request: Refund | CancelTopUp, kind: type[CardDaemonError]
) -> str:
    """The request is refused with ``kind``, the card is unchanged and the journal says why."""
    before = card.memory
    with pytest.raises(kind) as caught:
        run(t, request)
    assert card.memory == before, "a refused reversal wrote to the card"
    record = t.journal.get(request.request_id)
    assert record is not None
    assert record.state is RequestState.ABORTED
    assert record.outcome == {"error": kind.reason}
    return caught.value.message


def test_a_payment_refunded_in_two_parts_gives_back_its_money_and_exactly_its_points(
    term: Terminal,
) -> None:
    card = issue(term, UID, balance=100_000, points=50, tier=2)  # 金卡: 3 points per 100 yuan
    paid = run(term, Debit("sale-1", 35_000))  # 350 yuan: 9 points
    assert (paid.balance, paid.points, paid.points_delta) == (65_000, 59, 9)
    first = run(term, Refund("ret-1", "sale-1", 10_000, expected_uid=HEX))
    # 9 * 10000 / 35000 = 2.57: rounded down on the running total
    assert (first.balance, first.points, first.points_delta, first.bonus) == (75_000, 57, -2, 0)
    assert first.original_request_id == "sale-1"
    assert first.op == "refund"
    rest = run(term, Refund("ret-2", "sale-1", 25_000))
    assert (rest.balance, rest.points, rest.points_delta) == (100_000, 50, -7)
    msg = refused(term, card, Refund("ret-3", "sale-1", 1), AlreadyReversed)
    assert "sale-1" in msg
    assert "0 fen left" in msg


def test_a_refund_never_carries_a_top_up_bonus(term: Terminal) -> None:
    issue(term, UID, balance=500_000, points=0, tier=0)
    run(term, Debit("big", 200_000))  # above the 存1000送50 step
    back = run(term, Refund("back", "big", 200_000))
    assert (back.balance, back.bonus) == (500_000, 0)


def test_points_back_adds_up_to_what_the_payment_earned() -> None:
    for earned, paid, parts in ((9, 35_000, (1, 9_999, 25_000)), (7, 3, (1, 1, 1)), (0, 5, (5,))):
        done = taken = 0
        for part in parts:
            taken += points_back(earned, paid, done, part)
            done += part
        assert taken == earned


def test_refunds_never_exceed_the_payment(term: Terminal) -> None:
    card = issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 20_000))
    run(term, Refund("r1", "sale", 15_000))
    msg = refused(term, card, Refund("r2", "sale", 5_001), RefundExceedsPayment)
    assert "sale" in msg
    assert "5000 fen left" in msg
    assert run(term, Refund("r3", "sale", 5_000)).balance == 100_000


def test_a_refund_retried_with_its_request_id_is_applied_once(term: Terminal) -> None:
    issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 20_000))
    first = run(term, Refund("r", "sale", 20_000))
    again = run(term, Refund("r", "sale", 20_000))
    assert again.replayed
    assert again.balance == first.balance == 100_000
    assert run(term, Debit("next", 1)).balance == 99_999


def test_bad_originals_are_refused_naming_the_operation(term: Terminal) -> None:
    card = issue(term, UID, balance=100_000, tier=2)
    run(term, Credit("top", 10_000))
    msg = refused(term, card, Refund("x1", "nope", 100), OriginalNotFound)
    assert "nope" in msg
    assert "0 fen left" in msg
    assert "CancelTopUp" in refused(term, card, Refund("x2", "top", 100), OriginalNotReversible)
    run(term, Debit("sale", 1000))
    assert "Refund" in refused(term, card, CancelTopUp("x3", "sale"), OriginalNotReversible)
    with pytest.raises(InsufficientBalance):
        run(term, Debit("failed", 10**7))
    assert "not applied" in refused(term, card, Refund("x4", "failed", 100), OriginalNotCommitted)
    # an intent whose card never came back: outcome unknown
    with term.journal.claim("lost", "debit", {"amount": 100}):
        term.journal.record_intent("lost", "04000099", {"state": {}}, {"state": {}})
    msg = refused(term, card, Refund("x5", "lost", 100), OriginalNotCommitted)
    assert "PENDING" in msg
    assert "lost" in msg
    with pytest.raises(InvalidArgument, match="original_request_id"):
        Refund("same", "same", 100)
    with pytest.raises(InvalidArgument, match="original_request_id"):
        CancelTopUp("c", "")


def test_a_refund_only_goes_onto_the_card_that_paid(term: Terminal) -> None:
    issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 20_000))
    term.reader.remove()
    other = issue(term, OTHER, member_id="8800009999", balance=5_000)
    msg = refused(term, other, Refund("wrong", "sale", 20_000), ReversalCardMismatch)
    assert HEX in msg
    assert OTHER.hex().upper() in msg
    with pytest.raises(CardMismatch):  # the card the POS named is not the one on the reader
        run(term, Refund("named", "sale", 1, expected_uid=HEX))


def test_a_refund_is_refused_after_refund_days(term: Terminal, clock: Clock) -> None:
    card = issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 20_000))
    clock.at += 7 * 86400  # refund_days = 7: the seventh business day after is still fine
    run(term, Refund("late-ok", "sale", 1_000))
    clock.at += 86400
    msg = refused(term, card, Refund("too-late", "sale", 1_000), ReversalWindowClosed)
    assert "refund_days" in msg
    assert "19000 fen left" in msg


def test_a_refund_cannot_take_back_points_the_card_no_longer_has(term: Terminal) -> None:
    card = issue(term, UID, balance=100_000, points=0, tier=2)
    run(term, Debit("sale", 50_000))  # 15 points
    run(term, AdjustPoints("gift", -10))
    msg = refused(term, card, Refund("r", "sale", 50_000), InsufficientBalance)
    assert "15 points" in msg
    assert "50000 fen left" in msg
    assert run(term, Refund("part", "sale", 10_000)).points_delta == -3


def test_a_top_up_cancelled_the_same_business_day_takes_its_bonus_back(
    term: Terminal, clock: Clock
) -> None:
    card = issue(term, UID, balance=10_000, points=5, tier=2)
    top = run(term, Credit("top", 100_000))  # 存1000送50
    assert (top.balance, top.bonus) == (115_000, 5000)
    clock.at = dt.datetime(2026, 11, 24, 3, 30).timestamp()  # before the 04:00 cut-off
    back = run(term, CancelTopUp("undo", "top", expected_uid=HEX))
    assert (back.balance, back.amount, back.bonus, back.points) == (10_000, 100_000, 5000, 5)
    assert back.original_request_id == "top"
    assert back.op == "cancel_topup"
    assert "cancelled already" in refused(term, card, CancelTopUp("undo2", "top"), AlreadyReversed)


def test_a_top_up_is_not_cancelled_on_another_business_day(term: Terminal, clock: Clock) -> None:
    card = issue(term, UID, balance=10_000, tier=2)
    run(term, Credit("top", 20_000))
    clock.at = dt.datetime(2026, 11, 24, 4, 0).timestamp()
    msg = refused(term, card, CancelTopUp("undo", "top"), ReversalWindowClosed)
    assert "2026-11-23" in msg
    assert "cancel_window" in msg


def test_a_spent_top_up_cannot_be_cancelled(term: Terminal) -> None:
    card = issue(term, UID, balance=0, tier=2)
    run(term, Credit("top", 100_000))
    run(term, Debit("spent", 100_000))
    msg = refused(term, card, CancelTopUp("undo", "top"), TopUpSpent)
    assert "105000" not in msg
    assert "holds 5000 fen" in msg
    assert "100000 fen left" in msg


def test_the_journal_and_the_audit_log_link_each_reversal_to_its_original(
    term: Terminal,
) -> None:
    issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 30_000))
    run(term, Refund("r1", "sale", 10_000))
    run(term, Refund("r2", "sale", 20_000))
    linked = term.journal.reversals_of("sale")
    assert [(r.request_id, r.state) for r in linked] == [
        ("r1", RequestState.COMMITTED),
        ("r2", RequestState.COMMITTED),
    ]
    changes = term.journal.audit_events("value_change", uid=HEX)
    chain = [(e["request_id"], e["detail"]["original_request_id"]) for e in changes]
    assert chain[-3:] == [("sale", ""), ("r1", "sale"), ("r2", "sale")]


def test_a_refund_taps_like_a_credit_and_a_cancel_like_a_debit(term: Terminal) -> None:
    """docs/card-layout.md: 16 and 15 APDUs on an ACR1252U, as a credit and a debit."""
    issue(term, UID, balance=100_000, tier=2)

    def apdus(request: Debit | Credit | Refund | CancelTopUp) -> int:
        before = term.reader.apdu_count
        run(term, request)
        return term.reader.apdu_count - before

    assert (apdus(Debit("sale", 20_000)), apdus(Credit("top", 20_000))) == (15, 16)
    assert (apdus(Refund("back", "sale", 5_000)), apdus(CancelTopUp("undo", "top"))) == (16, 15)


@pytest.mark.parametrize(
    ("op", "history", "model"),
    [
        ("refund", 1, "acr1252u"),  # after an earlier partial refund of the same payment
        ("refund", 2, "generic"),  # no value commands: the purse is written with key B
        ("cancel_topup", 0, "acr1252u"),
        ("cancel_topup", 3, "acr122u"),  # single-block reads
    ],
)
def test_a_reversal_torn_at_every_apdu_is_old_or_new(
    tmp_path: Path, op: str, history: int, model: str
) -> None:
    """Every APDU x every fault, then the same terminal and a fresh one read the card, and a
    retry with the same request_id ends in the new state exactly once (the tear harness)."""
    lab = TearLab(Keystore.generate(), tmp_path, model)
    scenario = lab.scenario(op, 11, amount=123_456, history=history)
    n = lab.apdus(scenario)
    assert n >= 15
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    violations: list[str] = []
    for k in range(1, n + 1):
        for fault in FAULTS:
            bad, same, fresh = lab.trial(scenario, k, fault, seed=k)
            violations += bad
            outcomes[(same, fresh)] += 1
    assert violations == []
    assert set(outcomes) == {("old", "old"), ("new", "new")}


def test_a_refund_whose_outcome_is_unknown_still_counts_against_what_is_left(
    term: Terminal,
) -> None:
    """It may have landed: a second refund cannot use the amount it may have given back."""
    card = issue(term, UID, balance=100_000, tier=2)
    run(term, Debit("sale", 20_000))
    counter = term.journal.last_seen(HEX)
    assert counter is not None
    far = counter.last_counter + 5  # the card cannot tell any more: it stays PENDING
    with term.journal.claim("lost-refund", "refund", {"amount": 15_000}):
        term.journal.link_reversal("lost-refund", "sale")
        term.journal.record_intent(
            "lost-refund", HEX,
            {"state": {"counter": far, "tag": "00000000"}},
            {"state": {"counter": far + 1, "tag": "11111111"}, "result": {"amount": 15_000}},
        )  # fmt: skip
    msg = refused(term, card, Refund("more", "sale", 5_001), RefundExceedsPayment)
    assert "5000 fen left" in msg
    assert "15000 fen refunded" in msg
