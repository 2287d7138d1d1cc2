"""The frauds one store PC alone cannot see, run across two stores on one chain ledger.

Online, each is refused at the second store before anything is written. Offline, the second
store accepts at most the card's floor limit, and the ledger flags the card when the store
ships: it lands in the review queue and on the hotlist, which reaches every store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import (
    CardHotlisted,
    CardReplaced,
    CounterRollback,
    LedgerRequired,
)
from daemon.keystore import Keystore
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import AdjustPoints, Debit, ReplaceCard
from sim.card import SimCard
from tests.ledger.chain import attach, chain_hotlisted, reviews, store_pc
from tests.ledger.conftest import Ledger
from tests.membercard.terminal import issue, uid_for


def test_a_dump_spent_at_one_store_and_restored_at_another_is_refused_online(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b") as (b, lb),
    ):
        card = issue(a, uid_for(fresh_uid), balance=50_000)
        dump = card.memory  # the fraudster's copy
        with a.storage() as sc:
            assert a.service.debit(sc, Debit("a-1", 30_000)).balance == 20_000
        la.shipper.flush()
        a.reader.remove()
        b.reader.insert(SimCard(card.uid, memory=dump))  # restored: 50 000 fen again
        with pytest.raises(CounterRollback, match="chain ledger has 2"), b.storage() as sc:
            b.service.debit(sc, Debit("b-1", 30_000))
        uid = card.uid.hex().upper()
        assert b.journal.hotlist_reason(uid) == "COUNTER_ROLLBACK"  # refused and hotlisted here
        assert b.journal.get("b-1") is not None
        assert b.journal.pending() == []  # nothing was written to the card
        lb.shipper.flush()  # B's fraud report and hotlisting reach the chain
        assert "STORE_FRAUD" in reviews(ledger, uid)
        assert chain_hotlisted(ledger, uid)
        la.shipper.flush()  # ... and store A's hotlist
        assert a.journal.hotlist_reason(uid) is not None
        assert la.check.latencies_ms
        assert lb.check.latencies_ms


def test_points_redeemed_then_restored_are_refused_at_the_next_store(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b") as (b, _lb),
    ):
        card = issue(a, uid_for(fresh_uid), points=800)
        dump = card.memory
        with a.storage() as sc:
            assert a.service.adjust_points(sc, AdjustPoints("a-redeem", -800)).points == 0
        la.shipper.flush()
        b.reader.insert(SimCard(card.uid, memory=dump))  # key A alone restores the sectors
        with pytest.raises(CounterRollback), b.storage() as sc:
            b.service.adjust_points(sc, AdjustPoints("b-redeem", -800))


def test_a_clone_used_at_two_stores_is_refused_where_it_comes_second(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b") as (b, _lb),
    ):
        original = issue(a, uid_for(fresh_uid), balance=40_000)
        clone = SimCard(original.uid, memory=original.memory)  # same UID (a magic card)
        with a.storage() as sc:
            a.service.debit(sc, Debit("a-orig", 5_000))
        la.shipper.flush()
        b.reader.insert(clone)
        with pytest.raises(CounterRollback), b.storage() as sc:
            b.service.debit(sc, Debit("b-clone", 5_000))


def test_an_old_card_after_its_replacement_is_refused_at_another_store(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b") as (b, _lb),
    ):
        old = issue(a, uid_for(fresh_uid), balance=30_000, member_id="8800777001")
        a.reader.remove()
        a.reader.insert(SimCard.blank(uid=uid_for(fresh_uid + 100_000)))
        old_uid = old.uid.hex().upper()
        with a.storage() as sc:
            replace_card(a.issuer, sc, ReplaceCard(old_uid=old_uid, request_id="lost-1"))
        la.shipper.flush()
        assert chain_hotlisted(ledger, old_uid)
        b.reader.insert(old)  # found (or kept) and used at another store
        with pytest.raises((CardHotlisted, CardReplaced)), b.storage() as sc:
            b.service.debit(sc, Debit("b-old", 10_000))
        assert b.journal.hotlist_reason(old_uid) is not None


def test_offline_the_restored_dump_gets_no_more_than_the_floor_limit_and_is_caught_later(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a", mode="offline") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b", mode="offline", reachable=False) as (b, lb),
    ):
        card = issue(a, uid_for(fresh_uid), balance=50_000)
        dump = card.memory
        with a.storage() as sc:
            a.service.debit(sc, Debit("a-1", 30_000))  # above the floor: A asked the ledger
        la.shipper.flush()
        b.reader.insert(SimCard(card.uid, memory=dump))
        with b.storage() as sc:  # B's line is down: 15 000 fen is within the floor limit
            b.service.debit(sc, Debit("b-1", 15_000))
        with pytest.raises(LedgerRequired, match="floor limit of 20000 fen"), b.storage() as sc:
            b.service.debit(sc, Debit("b-2", 15_000))  # 30 000 today: needs the ledger
        assert lb.outbox.backlog() >= 1  # kept, not lost
        uid = card.uid.hex().upper()
        # the line comes back: B ships what it did; the ledger flags the card chain-wide
        lb.close()
        back = attach(ledger, b.journal, "b")
        try:
            back.shipper.flush()
            assert back.outbox.backlog() == 0
        finally:
            back.close()
        # the restored card wrote counter 2 again, with another tag: two histories
        assert "HISTORY_FORKED" in reviews(ledger, uid)
        assert chain_hotlisted(ledger, uid)
        la.shipper.flush()
        assert a.journal.hotlist_reason(uid) is not None  # the hotlist reached store A
        records = {r: b.journal.get(r) for r in ("b-1", "b-2")}
        spent = [
            r for r, rec in records.items() if rec is not None and rec.state.value == "COMMITTED"
        ]
        assert spent == ["b-1"]  # the loss is bounded by the floor limit: 15 000 <= 20 000


def test_a_clone_at_two_offline_stores_is_two_histories_at_reconciliation(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a", mode="offline") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b", mode="offline") as (b, lb),
    ):
        original = issue(a, uid_for(fresh_uid), balance=40_000)
        clone = SimCard(original.uid, memory=original.memory)
        with a.storage() as sc:
            a.service.debit(sc, Debit("a-1", 9_000))
        b.reader.insert(clone)
        with b.storage() as sc:
            b.service.debit(sc, Debit("b-1", 9_000))  # neither store has shipped yet
        la.shipper.flush()
        lb.shipper.flush()
        uid = original.uid.hex().upper()
        assert {"HISTORY_FORKED", "IMPOSSIBLE_TRAVEL"} <= reviews(ledger, uid)
        assert chain_hotlisted(ledger, uid)
        la.shipper.flush()
        assert a.journal.hotlist_reason(uid) is not None
