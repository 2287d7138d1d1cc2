"""Two histories of one card at one PC are fraud (issue 14, item 2).

*Hidden commit*: a top-up is pulled right after its commit point (the MAC write); with the
cracked key A (which may write the record sectors) the new record is zeroed before the card
comes back, so the journal closes the top-up as not applied and the cashier refunds the cash;
then the record is written back. This PC burned that write tag when it closed the intent: the
card is refused ``HISTORY_FORKED``, audited, hotlisted, left as it is.

*Forked counter*: a dump restored and used at another PC reaches this PC's last counter again
with another record; this PC has seen the committed record at that counter with another tag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import CardHotlisted, HistoryForked, WriteUnconfirmed
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard.layout import SLOT_MAC_BLOCKS, SLOT_STATE_BLOCKS, slot_for_counter
from daemon.membercard.requests import Credit, Debit, EraseCard
from daemon.readers.storage import StorageCard
from daemon.readers.trace import ApduTrace
from sim.card import SimCard
from tests.membercard.fraud_cards import Attacker
from tests.membercard.terminal import Terminal, issue, terminal, uid_for
from tests.membercard.till import is_write

UID = uid_for(5301)
ZERO = bytes(16)


def _commit_point(t: Terminal, card: SimCard, run: Credit) -> int:
    """APDU number of the record's MAC write (the commit point) in an undisturbed run on a copy,
    at a terminal that knows the card as ``t`` does."""
    copy = SimCard(card.uid, memory=card.memory)
    seen = t.journal.last_seen(card.uid.hex().upper())
    assert seen is not None
    assert seen.member_id is not None
    with terminal(t.keystore, Path(":memory:")) as twin:
        twin.journal.observe(seen.uid, seen.member_id, seen.last_counter, seen.state)
        twin.journal.bind_member(seen.member_id, seen.uid)
        twin.reader.insert(copy)
        trace = ApduTrace("twin", capacity=64)
        with StorageCard(twin.reader.connect(), trace=trace) as sc:
            twin.service.credit(sc, run)
        record_writes = [
            k
            for k, e in enumerate(trace.entries(), start=1)
            if is_write(e) and "VALUE" not in e.command
        ]
    return record_writes[1]  # state block, then MAC block


def test_a_hidden_commit_put_back_after_the_refund_is_refused(tmp_path: Path) -> None:
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "a.db") as t:
        card = issue(t, UID, balance=100_000)
        with t.storage() as sc:
            before = t.service.read(sc)
        topup = Credit("top-1", 50_000)
        k = _commit_point(t, card, topup)
        t.reader.faults.arm()
        t.reader.faults.remove_after(k)  # pulled right after the record is committed
        with pytest.raises(WriteUnconfirmed), t.storage() as sc:
            t.service.credit(sc, topup)
        t.reader.insert(card)
        slot = slot_for_counter(before.counter + 1)
        attacker = Attacker(ks, t)  # key A only: it may write the record sectors
        hidden = [attacker.read(b) for b in (SLOT_STATE_BLOCKS[slot], SLOT_MAC_BLOCKS[slot])]
        attacker.write(SLOT_STATE_BLOCKS[slot], ZERO, "A")
        attacker.write(SLOT_MAC_BLOCKS[slot], ZERO, "A")
        with t.storage() as sc:
            shown = t.service.read(sc)
        assert shown.balance == 100_000
        assert shown.resolved == ("top-1",)
        rec = t.journal.get("top-1")
        assert rec is not None
        assert rec.state is RequestState.ABORTED  # the cashier refunds the cash
        attacker.write(SLOT_STATE_BLOCKS[slot], hidden[0], "A")
        attacker.write(SLOT_MAC_BLOCKS[slot], hidden[1], "A")
        memory = card.memory
        with pytest.raises(HistoryForked, match="closed as not applied"), t.storage() as sc:
            t.service.debit(sc, Debit("after", 1_000))
        assert card.memory == memory  # refused, not repaired
        uid = UID.hex().upper()
        fraud = t.journal.audit_events("fraud", uid=uid)
        assert [e["detail"]["reason"] for e in fraud] == ["HISTORY_FORKED"]
        assert t.journal.hotlist_reason(uid) == "HISTORY_FORKED"
        with pytest.raises(CardHotlisted), t.storage() as sc:
            t.service.read(sc)


def test_a_dump_used_elsewhere_that_reaches_a_known_counter_is_refused(tmp_path: Path) -> None:
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "a.db") as here, terminal(ks, tmp_path / "b.db") as there:
        card = issue(here, UID, balance=100_000)
        dump = card.memory
        with here.storage() as sc:
            here.service.debit(sc, Debit("here-1", 10_000))  # counter 2 (tag T) seen here
        restored = SimCard(UID, memory=dump)  # the old image back on the card (or a clone)
        here.reader.remove()
        there.reader.insert(restored)
        with there.storage() as sc:
            other = there.service.debit(sc, Debit("there-1", 1_000))  # counter 2, tag T'
        assert other.counter == 2
        there.reader.remove()
        here.reader.insert(restored)
        with pytest.raises(HistoryForked, match="two histories"), here.storage() as sc:
            here.service.read(sc)
        assert here.journal.hotlist_reason(UID.hex().upper()) == "HISTORY_FORKED"


def test_an_erased_card_starts_a_new_history(tmp_path: Path) -> None:
    """Erase forgets the card's records: the re-issued card's counter 1 is not a fork."""
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "a.db") as t:
        issue(t, UID, balance=0, points=0)
        with t.storage() as sc:
            t.service.read(sc)
            t.issuer.erase(sc, EraseCard("wipe"))
        t.reader.remove()
        issue(t, UID, balance=5_000, points=0, request_id="again")
        with t.storage() as sc:
            assert t.service.read(sc).balance == 5_000
