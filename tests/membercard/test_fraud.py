"""Fraud: each attack has its own card (a dump under tests/membercard/data/cards/) and its own
reason.

Every refusal is audited, hotlists the UID when the programme says so, and leaves the card
exactly as presented (a suspicious card is never "repaired").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from daemon.errors import CardHotlisted, FraudDetected
from daemon.membercard.requests import Debit
from daemon.membercard.rules import Programme
from sim.card import SimCard
from tests.membercard.fraud_cards import CONTEXT, MEMBER, build, fixed_test_keystore, load
from tests.membercard.terminal import PROGRAMME, Terminal, terminal


def _prepare(t: Terminal, name: str, card: SimCard) -> None:
    ctx = CONTEXT[name]
    uid = card.uid.hex().upper()
    if ctx.get("last_counter"):
        t.journal.observe(uid, MEMBER, ctx["last_counter"], {"member_id": MEMBER})
    if ctx.get("bound_to"):
        t.journal.bind_member(MEMBER, ctx["bound_to"])
    t.reader.insert(card)


@pytest.mark.parametrize("name", sorted(CONTEXT))
def test_fraud_card_is_refused_with_its_reason(tmp_path: Path, name: str) -> None:
    card = load(name)
    before = card.memory
    with terminal(fixed_test_keystore(), tmp_path / "j.db") as t:
        _prepare(t, name, card)
        with pytest.raises(FraudDetected) as info, t.storage() as sc:
            t.service.debit(sc, Debit(request_id="pay-1", amount=100))
        assert info.value.reason == CONTEXT[name]["reason"]
        uid = card.uid.hex().upper()
        fraud = t.journal.audit_events("fraud", uid=uid)
        assert [e["detail"]["reason"] for e in fraud] == [CONTEXT[name]["reason"]]
        assert t.journal.hotlist_reason(uid) == CONTEXT[name]["reason"]
        assert card.memory == before  # refused, not repaired
        rec = t.journal.get("pay-1")
        assert rec is not None
        assert rec.state.value == "ABORTED"
        with pytest.raises(CardHotlisted), t.storage() as sc:  # next tap: refused at the UID
            t.service.read(sc)


def test_hotlisting_on_fraud_follows_config(tmp_path: Path) -> None:
    programme = replace(PROGRAMME, hotlist_on_fraud=False)
    card = load("fraud_value_mismatch")
    with terminal(fixed_test_keystore(), tmp_path / "j.db") as t:
        t.service.programme = programme
        t.service.guard.programme = programme
        t.reader.insert(card)
        with pytest.raises(FraudDetected, match="VALUE_BLOCK_MISMATCH"), t.storage() as sc:
            t.service.read(sc)
        assert t.journal.hotlist_reason(card.uid.hex().upper()) is None
        assert len(t.journal.audit_events("fraud")) == 1
    assert Programme().hotlist_on_fraud is True


def test_rollback_dump_is_only_caught_where_the_newer_state_was_seen(tmp_path: Path) -> None:
    """The card alone cannot tell an old dump from the card: only the journal can."""
    with terminal(fixed_test_keystore(), tmp_path / "fresh.db") as fresh:
        fresh.reader.insert(load("fraud_rollback"))
        with fresh.storage() as sc:
            assert fresh.service.read(sc).counter == 2


def test_restore_trick_without_dropping_the_record_gains_nothing(tmp_path: Path) -> None:
    """Key-A RESTORE of the older backup over primary, record left alone: the MAC'd record
    still says the new balance; the purse is put back to it and the repair is audited."""
    ks = fixed_test_keystore()
    with terminal(ks, tmp_path / "a.db") as t:
        from tests.membercard.fraud_cards import Attacker, _genuine

        card = _genuine(t)
        t.reader.faults.arm()
        t.reader.faults.remove_after(13)
        with t.storage() as sc:
            paid = t.service.debit(sc, Debit(request_id="torn", amount=50_000))
        t.reader.insert(card)
        Attacker(ks, t).restore_transfer(13, 12)
        with t.storage() as sc:
            info = t.service.read(sc)
        assert info.balance == paid.balance == 44_000
        assert info.repaired
        assert t.journal.audit_events("mirror_repair")


def test_rebuilt_attacks_get_the_same_verdicts(tmp_path: Path) -> None:
    """The dumps are reproducible evidence: replaying the attacks now gives cards with the same
    verdicts (their bytes differ only by random write tags and MACs)."""
    rebuilt = build(fixed_test_keystore(), tmp_path)
    assert set(rebuilt) == set(CONTEXT)
    for name, card in rebuilt.items():
        assert card.uid == load(name).uid
        with terminal(fixed_test_keystore(), tmp_path / f"{name}.db") as t:
            _prepare(t, name, card)
            with pytest.raises(FraudDetected) as info, t.storage() as sc:
                t.service.read(sc)
            assert info.value.reason == CONTEXT[name]["reason"]


@pytest.mark.parametrize(("block", "by", "shown"), [(12, 12_345, "81655"), (13, 100_000, "-6000")])
def test_key_a_decrement_of_the_purse_is_a_value_block_mismatch(
    tmp_path: Path, block: int, by: int, shown: str
) -> None:
    """Key A may DECREMENT the purse (a POS debit needs it). Doing so outside a debit leaves a
    purse value no torn write of ours can produce - below the balance, or below zero (still a
    well-formed value block, not a torn one): refused, audited, hotlisted, not repaired."""
    ks = fixed_test_keystore()
    with terminal(ks, tmp_path / "a.db") as t:
        from tests.membercard.fraud_cards import Attacker, _genuine

        card = _genuine(t)  # balance 94 000 after debits of 1 000, 2 000, 3 000
        attacker = Attacker(ks, t)
        with t.storage() as sc:
            attacker._open(sc, block, "A")
            sc.value_decrement(block, by)
        before = card.memory
        with pytest.raises(FraudDetected) as info, t.storage() as sc:
            t.service.read(sc)
        assert info.value.reason == "VALUE_BLOCK_MISMATCH"
        assert shown in info.value.message  # names the purse value it found
        uid = card.uid.hex().upper()
        assert [e["detail"]["reason"] for e in t.journal.audit_events("fraud", uid=uid)] == [
            "VALUE_BLOCK_MISMATCH"
        ]
        assert t.journal.hotlist_reason(uid) == "VALUE_BLOCK_MISMATCH"
        assert card.memory == before


def test_a_copy_to_another_uid_is_not_a_member_card(tmp_path: Path) -> None:
    """A magic card with another UID and the whole image copied: the sector keys and the MAC
    are derived from the UID, so the copy does not even open with this card's keys."""
    from daemon.errors import UnknownCardFormat
    from tests.membercard.fraud_cards import _genuine
    from tests.membercard.terminal import uid_for

    with terminal(fixed_test_keystore(), tmp_path / "a.db") as t:
        card = _genuine(t)
        t.reader.remove()
        block0 = SimCard.blank(uid=uid_for(999_001)).memory[:16]  # a magic card's block 0
        t.reader.insert(SimCard(uid_for(999_001), memory=block0 + card.memory[16:]))
        with pytest.raises(UnknownCardFormat), t.storage() as sc:
            t.service.read(sc)
