"""A card left lying on the reader: ``ReadCard`` answers from the last full read (one APDU, no
key), and never once that could be stale - on the simulator and through pcscd + vpcd."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import pytest

from daemon.errors import CardDaemonError, CardHotlisted, ConfigError, CounterRollback
from daemon.journal import Journal
from daemon.membercard import CardInfo, MemberCardService
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import Debit, ReadCard
from daemon.membercard.rules import Programme
from daemon.readers.workers import JobContext
from sim.card import SimCard
from tests.membercard.terminal import PROGRAMME, TODAY, uid_for
from tests.membercard.till import WAIT, Till

UID = uid_for(5120)
GET_UID = bytes.fromhex("FFCA000000")
FOREIGN_READS = [bytes.fromhex(f"FFB000{b:02X}10") for b in (4, 8, 12)]


def _read(till: Till, service: MemberCardService | None = None, i: int = 0) -> CardInfo:
    return till.run(card_job(service or till.service, till.profiles[i], ReadCard()), i)


def _sent(till: Till, i: int = 0) -> int:
    return till.profiles[i].trace.count


def _key_uses(till: Till) -> int:
    return len(till.journal.audit_events("key_use"))


def test_a_card_left_on_the_reader_is_answered_with_one_apdu_and_no_key(till: Till) -> None:
    till.issue(UID)
    first = _read(till)
    sent, uses = _sent(till), _key_uses(till)
    again = [_read(till) for _ in range(3)]
    assert again == [first] * 3
    assert _sent(till) - sent == 3  # one GET UID each: no sector read, no clean-up
    assert [e.apdu.replace(" ", "").upper() for e in till.profiles[0].trace.entries()[-3:]] == [
        GET_UID.hex().upper()
    ] * 3
    assert _key_uses(till) == uses  # no key used, so none audited


def test_no_member_sector_is_open_after_an_answer_from_the_notes(till: Till) -> None:
    """As after a full read: a foreign PC/SC client cannot read a member sector."""
    card = till.issue(UID)
    answers = []
    for apdu in FOREIGN_READS:
        _read(till)
        _read(till)  # from the notes
        with contextlib.closing(till.stack.backend.connect(till.name(0))) as foreign:
            answers.append(foreign.transmit(apdu).sw)
        till.present(card)  # the refused READ halted the card: taken off and back
    assert all(sw != 0x9000 for sw in answers), [hex(sw) for sw in answers]


def test_after_a_payment_the_next_read_reads_the_card(till: Till) -> None:
    till.issue(UID)
    before = _read(till)
    till.run(card_job(till.service, till.profiles[0], Debit("notes-debit", 700)))
    sent = _sent(till)
    after = _read(till)
    assert after.balance == before.balance - 700
    assert after.counter == before.counter + 1
    assert _sent(till) - sent > 1  # the sectors were read again


def test_any_other_job_on_the_card_makes_the_next_read_read_the_card(till: Till) -> None:
    """A job that took the card (a probe, a dump, a write of any kind) may have changed it."""
    till.issue(UID)
    _read(till)

    def foreign_job(ctx: JobContext) -> bytes:
        return ctx.connection.transmit(GET_UID).data

    till.run(foreign_job)
    sent = _sent(till)
    _read(till)
    assert _sent(till) - sent > 1


def test_a_card_swapped_for_an_older_copy_is_never_answered_from_the_notes(till: Till) -> None:
    """The customer's card is swapped for a copy of it made before a payment (same UID),
    faster than the monitor reports it: the read that follows either fails (the reader saw
    the swap) or reads the copy and finds the rollback; it never shows the noted balance."""
    card = till.issue(UID)
    older = SimCard(card.uid, memory=bytes(card.memory))
    till.run(card_job(till.service, till.profiles[0], Debit("swap-debit", 900)))
    noted = _read(till)
    till.stack.remove(0)  # the pool is not told (Till.present would tell it)
    till.stack.insert(0, older)
    outcomes: list[object] = []
    for _ in range(3):
        try:
            outcomes.append(_read(till))
        except CardDaemonError as exc:
            outcomes.append(type(exc))
            if isinstance(exc, CounterRollback):
                break
    assert noted not in outcomes
    assert outcomes[-1] is CounterRollback, outcomes


def test_a_copy_used_at_another_reader_turns_the_lying_card_into_a_rollback(till: Till) -> None:
    """Two copies of one card at one PC: the one still lying on reader 0 was read before its
    twin paid on reader 1; reading it again must see that this PC is past its counter."""
    card = till.issue(UID)
    _read(till)
    twin = SimCard(card.uid, memory=bytes(card.memory))
    till.present(twin, 1)
    till.run(card_job(till.service, till.profiles[1], Debit("twin-debit", 300)), 1)
    with pytest.raises(CounterRollback):
        _read(till)


def test_a_card_hotlisted_while_it_lies_there_is_refused(till: Till) -> None:
    till.issue(UID)
    _read(till)
    till.journal.hotlist(UID.hex().upper(), "reported lost")
    with pytest.raises(CardHotlisted):
        _read(till)


def test_reread_after_s_bounds_how_old_an_answer_may_be(till: Till) -> None:
    till.issue(UID)
    never = MemberCardService(
        till.keystore, till.journal, dataclasses.replace(PROGRAMME, reread_after_s=0.0),
        today=lambda: TODAY,
    )  # fmt: skip
    _read(till, never)
    sent = _sent(till)
    _read(till, never)
    assert _sent(till) - sent > 1  # 0: every ReadCard reads the sectors

    brief = MemberCardService(
        till.keystore, till.journal, dataclasses.replace(PROGRAMME, reread_after_s=0.2),
        today=lambda: TODAY,
    )  # fmt: skip
    _read(till, brief)
    time.sleep(0.3)
    sent = _sent(till)
    _read(till, brief)
    assert _sent(till) - sent > 1
    assert WAIT > 0.3


def test_a_fresh_journal_never_trusts_notes_it_did_not_write(till: Till) -> None:
    """Notes are checked against this PC's journal: a service over another journal (which
    never saw the card) reads the card itself."""
    till.issue(UID)
    _read(till)
    with Journal(":memory:") as journal:
        other = MemberCardService(till.keystore, journal, PROGRAMME, today=lambda: TODAY)
        sent = _sent(till)
        _read(till, other)
    assert _sent(till) - sent > 1


@pytest.mark.parametrize(
    ("value", "why"),
    [(-1, "0..60"), (61, "0..60"), ("5", "0..60"), (True, "0..60")],
)
def test_reread_after_s_is_checked_in_the_config(value: object, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Programme.from_config({"reread_after_s": value})
    assert "membercard.reread_after_s" in str(caught.value)
    assert why in str(caught.value)


def test_reread_after_s_takes_seconds() -> None:
    assert Programme.from_config({}).reread_after_s == 5.0
    assert Programme.from_config({"reread_after_s": 0}).reread_after_s == 0.0
    assert Programme.from_config({"reread_after_s": 1.5}).reread_after_s == 1.5
