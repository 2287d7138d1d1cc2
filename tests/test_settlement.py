"""The daily settlement (日结): a day of random till operations, settled from the journal, must
reconcile exactly with what the cards and the cashier saw; a closed day never changes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.errors import CardDaemonError, DayAlreadyClosed, InvalidArgument, WriteUnconfirmed
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard.requests import (
    AdjustPoints,
    CancelTopUp,
    Credit,
    Debit,
    ReadCard,
    Refund,
    ValueRequest,
)
from daemon.membercard.rules import Programme
from daemon.membercard.service import OpResult
from daemon.printers.encoder import ReceiptEncoder
from daemon.printers.profiles import PROFILES
from daemon.printers.receipt import validate_receipt
from daemon.settlement import DaySettlement, Settlement, settlement_slip
from sim.card import SimCard
from sim.reader import SimReader
from tests.membercard.terminal import PROGRAMME, Terminal, issue, uid_for

DAY = dt.date(2026, 11, 23)


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute)).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Expected:
    """What the cashier saw committed, summed by hand."""

    figures: dict[str, int] = field(default_factory=dict)

    def add(self, **values: int) -> None:
        for name, value in values.items():
            self.figures[name] = self.figures.get(name, 0) + value

    def count(self, r: OpResult) -> None:
        if r.op == "debit":
            self.add(payments=1, payment_amount=r.amount, points_earned=r.points_delta)
        elif r.op == "credit":
            self.add(top_ups=1, top_up_cash=r.amount, top_up_bonus=r.bonus)
        elif r.op == "refund":
            self.add(refunds=1, refund_amount=r.amount, refund_points=-r.points_delta)
        elif r.op == "cancel_topup":
            self.add(cancelled_top_ups=1, cancelled_cash=r.amount, cancelled_bonus=r.bonus)
        elif r.op == "points":
            self.add(points_earned=max(r.points_delta, 0), points_redeemed=max(-r.points_delta, 0))


@pytest.fixture
def clock() -> Clock:
    return Clock(at(DAY, 8))


@pytest.fixture
def term(tmp_path: Path, clock: Clock) -> Iterator[Terminal]:
    programme = Programme(bonus_steps=PROGRAMME.bonus_steps, balance_cap=PROGRAMME.balance_cap)
    journal = Journal(tmp_path / "journal.db", clock=clock)
    t = Terminal(Keystore.generate(), journal, SimReader(), programme)
    try:
        yield t
    finally:
        t.close()


def run(t: Terminal, request: ValueRequest) -> OpResult:
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


def show(t: Terminal, card: SimCard) -> None:
    if t.reader.card is not card:
        if t.reader.card is not None:
            t.reader.remove()
        t.reader.insert(card)


def read(t: Terminal) -> tuple[int, int]:
    with t.storage() as sc:
        info = t.service.read(sc, ReadCard())
    return info.balance, info.points


def test_a_day_of_random_operations_reconciles_exactly(term: Terminal, clock: Clock) -> None:
    rng = random.Random(16)
    want = Expected()
    cards = []
    for i in range(4):
        if term.reader.card is not None:
            term.reader.remove()
        cards.append(issue(term, uid_for(300 + i), member_id=f"8800{i:06d}", balance=50_000 * i))
    want.add(cards_issued=4, issued_balance=sum(50_000 * i for i in range(4)))
    opening = {}
    for card in cards:
        show(term, card)
        opening[card.uid] = read(term)
    paid: dict[bytes, list[str]] = {c.uid: [] for c in cards}
    topped: dict[bytes, list[str]] = {c.uid: [] for c in cards}
    clock.now = at(DAY, 9)
    for n in range(140):
        clock.now += rng.randint(1, 300)
        card = rng.choice(cards)
        show(term, card)
        rid = f"op{n}"
        kind = rng.choice(("debit", "debit", "credit", "points", "refund", "refund", "cancel"))
        request: ValueRequest
        if kind == "debit":
            request = Debit(rid, rng.randint(1, 60_000))
        elif kind == "credit":
            request = Credit(rid, rng.choice((1_000, 20_000, 100_000, 150_000)))
        elif kind == "points":
            request = AdjustPoints(rid, rng.choice((-5, -1, 3, 20)))
        elif kind == "refund":
            # any payment, this card's or another's: the refused ones must count nowhere
            original = rng.choice([r for rids in paid.values() for r in rids] or ["none"])
            request = Refund(rid, original, rng.randint(1, 40_000))
        else:
            request = CancelTopUp(
                rid, rng.choice([r for ids in topped.values() for r in ids] or ["x"])
            )
        torn = rng.random() < 0.15
        if torn:  # the card leaves mid-operation; reading it again settles the outcome
            term.reader.faults.arm(rng.randrange(2**32))
            term.reader.faults.tear(rng.randint(9, 14), rng.choice(("old", "new", "garbage")))
        try:
            result = run(term, request)
        except WriteUnconfirmed:
            result = None
        except CardDaemonError:
            result = None
        term.reader.faults.clear()
        if term.reader.card is None:
            term.reader.insert(card)
        if torn:
            read(term)
            record = term.journal.get(rid)
            assert record is not None
            assert record.state is not RequestState.PENDING
            if record.state is RequestState.COMMITTED:
                assert record.outcome is not None
                result = OpResult.from_outcome(record.outcome)
        if result is None:
            continue
        want.count(result)
        if result.op == "debit":
            paid[card.uid].append(rid)
        elif result.op == "credit":
            topped[card.uid].append(rid)
    # one operation whose card never came back: outcome unknown, counted apart
    with term.journal.claim("lost", "debit", {"amount": 100}):
        term.journal.record_intent("lost", "04AABBCC", {"state": {}}, {"state": {}})
    got = Settlement(term.journal, term.programme, pc="till-1").day(DAY)
    unconfirmed = {e["request_id"] for e in term.journal.audit_events("pending_resolved")}
    assert unconfirmed, "the random day tore no operation after its intent"
    expected = DaySettlement(
        DAY, "till-1", 4, **want.figures, unconfirmed=len(unconfirmed), pending=1
    )
    assert got == expected
    assert got.refunds > 0
    assert got.cancelled_top_ups > 0
    change = 0
    for card in cards:
        show(term, card)
        change += read(term)[0] - opening[card.uid][0]
    assert got.stored_value_change == change


def test_a_closed_day_never_changes_and_later_operations_count_in_the_next_day(
    term: Terminal, clock: Clock
) -> None:
    card = issue(term, uid_for(400), balance=100_000, tier=2)
    clock.now = at(DAY, 10)
    run(term, Credit("top", 20_000))
    run(term, Debit("sale", 30_000))
    days = Settlement(term.journal, term.programme, pc="till-1")
    clock.now = at(DAY, 22)
    closed = days.close(DAY)
    assert (closed.top_up_cash, closed.payment_amount, closed.cards_issued) == (20_000, 30_000, 1)
    assert closed.closed_at == at(DAY, 22)
    clock.now = at(DAY, 23)  # still business day 2026-11-23, but it is closed
    run(term, Refund("late-refund", "sale", 10_000))
    clock.now = at(DAY + dt.timedelta(days=1), 2)  # 02:00: before the 04:00 cut-off
    run(term, CancelTopUp("late-cancel", "top"))
    assert days.day(DAY) == closed
    nxt = days.day(DAY + dt.timedelta(days=1))
    assert (nxt.refund_amount, nxt.cancelled_cash, nxt.payments, nxt.top_ups) == (
        10_000,
        20_000,
        0,
        0,
    )
    with pytest.raises(DayAlreadyClosed, match="2026-11-23 was closed"):
        days.close(DAY)
    with pytest.raises(InvalidArgument, match="business_day"):
        days.close(DAY + dt.timedelta(days=2))
    assert days.today() == DAY + dt.timedelta(days=1)  # where operations count now
    second = days.close()
    assert second.business_day == DAY + dt.timedelta(days=1)
    assert second.refund_amount == 10_000
    assert [e["detail"]["business_day"] for e in term.journal.audit_events("day_closed")] == [
        "2026-11-23", "2026-11-24",
    ]  # fmt: skip
    del card


def test_the_settlement_exports_as_csv_and_prints_as_a_slip(term: Terminal, clock: Clock) -> None:
    issue(term, uid_for(401), balance=500_000, tier=2)
    clock.now = at(DAY, 11)
    run(term, Credit("top", 100_000))
    run(term, Debit("sale", 12_345))
    run(term, CancelTopUp("oops", "top"))
    day = Settlement(term.journal, term.programme, pc="till-1").close(DAY)
    (row,) = list(csv.DictReader(io.StringIO(day.csv())))
    assert row["business_day"] == "2026-11-23"
    assert row["pc"] == "till-1"
    assert int(row["top_up_cash"]) == 100_000
    assert int(row["cancelled_bonus"]) == 5_000
    assert int(row["net_cash"]) == 0
    assert row["closed_at"] == "2026-11-23T11:00:00"
    slip = settlement_slip(day)
    for name in ("zh-58", "western-80"):
        validate_receipt(slip, PROFILES[name])
    data = ReceiptEncoder(PROFILES["zh-58"]).encode(slip)
    assert b"Payments x1 123.45" in data
    assert b"Z-20261123" in data


def test_a_cut_off_hour_out_of_range_is_a_config_error_naming_the_key() -> None:
    from daemon.errors import ConfigError

    for bad in (24, -1, "4", True):
        with pytest.raises(ConfigError, match=r"membercard\.day_cutoff_hour"):
            Programme.from_config({"day_cutoff_hour": bad})
    with pytest.raises(ConfigError, match=r"membercard\.cancel_window"):
        Programme.from_config({"cancel_window": "same_day"})
    with pytest.raises(ConfigError, match=r"membercard\.refund_days"):
        Programme.from_config({"refund_days": -1})
    rules = Programme.from_config({"day_cutoff_hour": 0, "cancel_window": 30, "refund_days": 0})
    assert (rules.day_cutoff_hour, rules.cancel_window_minutes, rules.refund_days) == (0, 30, 0)
    assert rules.business_day(at(DAY, 0, 5)) == DAY
    assert Programme().business_day(at(DAY, 3, 59)) == DAY - dt.timedelta(days=1)
