"""What leaves a store: a torn payment settled at the next tap reaches the ledger once, as
what it turned out to be (applied: an event; not applied: a report, never money)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import HistoryForked, WriteUnconfirmed
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard.layout import SLOT_MAC_BLOCKS, SLOT_STATE_BLOCKS, slot_for_counter
from daemon.membercard.requests import Credit, Debit
from tests.ledger.chain import admin_rows, chain_hotlisted, reviews, store_pc
from tests.ledger.conftest import Ledger
from tests.membercard.fraud_cards import Attacker
from tests.membercard.terminal import issue, uid_for
from tests.membercard.test_history import _commit_point


@pytest.mark.parametrize("applied", [True, False])
def test_a_torn_topup_settled_later_is_shipped_as_what_it_was(
    ledger: Ledger, tmp_path: Path, fresh_uid: int, applied: bool
) -> None:
    ks = Keystore.generate()
    with store_pc(ledger, ks, tmp_path / "a.db", "a", mode="offline") as (t, part):
        card = issue(t, uid_for(fresh_uid), balance=10_000)
        with t.storage() as sc:
            t.service.read(sc)
        topup = Credit("torn-1", 5_000)
        k = _commit_point(t, card, topup)
        t.reader.faults.arm()
        if applied:
            t.reader.faults.remove_after(k)  # the record's MAC is on the card, unconfirmed
        else:
            t.reader.faults.remove_before(k)  # its MAC never written: not applied
        with pytest.raises(WriteUnconfirmed), t.storage() as sc:
            t.service.credit(sc, topup)
        part.shipper.flush()  # the pending intent is not shipped: nothing is known yet
        t.reader.insert(card)
        with t.storage() as sc:
            assert t.service.read(sc).resolved == ("torn-1",)
        part.shipper.flush()
        part.shipper.flush()  # again: nothing doubles
        rec = t.journal.get("torn-1")
        assert rec is not None
        uid = card.uid.hex().upper()
        events = admin_rows(
            ledger, "SELECT op, amount, counter FROM ledger.card_events WHERE uid=%s"
            " AND request_id=%s", uid, "torn-1",
        )  # fmt: skip
        reports = admin_rows(
            ledger, "SELECT kind FROM ledger.store_reports WHERE uid=%s AND detail->>"
            "'request_id' = %s", uid, "torn-1",
        )  # fmt: skip
        if applied:
            assert rec.state is RequestState.COMMITTED
            assert events == [("credit", 5_000, 2)]
            assert reports == []
        else:
            assert rec.state is RequestState.ABORTED
            assert events == []
            assert reports == [("not_applied",)]


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_hidden_commit_refunded_at_one_store_and_put_back_is_caught_at_another(
    ledger: Ledger, tmp_path: Path, fresh_uid: int, mode: str
) -> None:
    """Key A alone: a committed top-up is hidden from store A, which closes it as not applied
    (the cashier gives the cash back); the record is put back and spent at store B."""
    ks = Keystore.generate()
    with (
        store_pc(ledger, ks, tmp_path / "a.db", "a") as (a, la),
        store_pc(ledger, ks, tmp_path / "b.db", "b", mode=mode) as (b, lb),
    ):
        card = issue(a, uid_for(fresh_uid), balance=10_000)
        with a.storage() as sc:
            before = a.service.read(sc)
        topup = Credit("hide-1", 8_000)
        k = _commit_point(a, card, topup)
        a.reader.faults.arm()
        a.reader.faults.remove_after(k)
        with pytest.raises(WriteUnconfirmed), a.storage() as sc:
            a.service.credit(sc, topup)
        a.reader.insert(card)
        slot = slot_for_counter(before.counter + 1)
        attacker = Attacker(ks, a)
        hidden = [attacker.read(x) for x in (SLOT_STATE_BLOCKS[slot], SLOT_MAC_BLOCKS[slot])]
        attacker.write(SLOT_STATE_BLOCKS[slot], bytes(16), "A")
        attacker.write(SLOT_MAC_BLOCKS[slot], bytes(16), "A")
        with a.storage() as sc:
            assert a.service.read(sc).balance == 10_000  # closed as not applied: refunded
        la.shipper.flush()
        attacker.write(SLOT_STATE_BLOCKS[slot], hidden[0], "A")  # put back: 18 000 fen
        attacker.write(SLOT_MAC_BLOCKS[slot], hidden[1], "A")
        a.reader.remove()
        b.reader.insert(card)
        uid = card.uid.hex().upper()
        if mode == "online":
            with pytest.raises(HistoryForked, match="closed as not applied"), b.storage() as sc:
                b.service.debit(sc, Debit("b-1", 15_000))
        else:
            with b.storage() as sc:  # offline, within the floor limit: accepted here
                b.service.debit(sc, Debit("b-1", 15_000))
            lb.shipper.flush()
            assert "HISTORY_FORKED" in reviews(ledger, uid)
            assert chain_hotlisted(ledger, uid)
