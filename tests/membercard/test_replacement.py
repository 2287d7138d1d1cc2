"""A replacement card proves itself offline (issue 14, item 4).

A lost card is replaced at one PC; the new card is then presented at another PC that had seen
the old card (its journal binds the member to the old UID). The new card's header carries the
replacement generation under the MAC, so that PC accepts it, hotlists the old UID locally,
binds the member to the new card and audits that it learnt this from a card; the old card is
refused there from then on. A card that is not a later generation is still ``CARD_CLONED``.
On the simulator and through real pcscd + vpcd.
"""

from __future__ import annotations

import pytest

from daemon.errors import CardCloned, CardHotlisted
from daemon.journal import Journal
from daemon.membercard import Personaliser
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import Debit, ReadCard, ReplaceCard
from sim.card import SimCard
from tests.membercard.terminal import PROGRAMME, TODAY, uid_for
from tests.membercard.till import Till

OLD = uid_for(5501)
NEW = uid_for(5502)
MEMBER = "8800005501"


def test_a_replacement_is_accepted_where_the_old_card_was_seen(till: Till) -> None:
    old = till.issue(OLD, 0, member=MEMBER)  # this PC (the till) sees the old card
    till.run(card_job(till.service, till.profiles[0], Debit("before-loss", 5_000)))
    new = SimCard.blank(uid=NEW)
    with Journal(":memory:") as other_journal:  # the PC where the member reports the loss
        till.twin(other_journal, OLD)
        other = Personaliser(till.keystore, other_journal, PROGRAMME, today=lambda: TODAY)
        till.present(new)
        made = till.run(card_job(other, till.profiles[0], ReplaceCard(OLD.hex(), "lost-1")))
        assert (made.uid, made.balance) == (NEW.hex().upper(), 95_000)
    info = till.run(card_job(till.service, till.profiles[0], ReadCard()))  # back at the till
    assert (info.uid, info.member_id, info.balance) == (NEW.hex().upper(), MEMBER, 95_000)
    old_hex, new_hex = OLD.hex().upper(), NEW.hex().upper()
    assert till.journal.hotlist_reason(old_hex) is not None
    assert till.journal.hotlist_reason(new_hex) is None
    assert till.journal.bound_uid(MEMBER) == new_hex
    [learnt] = till.journal.audit_events("replacement_learnt", uid=new_hex)
    assert learnt["detail"] == {
        "old_uid": old_hex, "generation": 1, "old_generation": 0, "source": "card",
    }  # fmt: skip
    assert not till.journal.audit_events("fraud")
    paid = till.run(card_job(till.service, till.profiles[0], Debit("after-1", 1_000)))
    assert paid.balance == 94_000
    till.present(old)  # the lost card, found (or kept) by someone
    with pytest.raises(CardHotlisted):
        till.run(card_job(till.service, till.profiles[0], Debit("old-1", 1_000)))


def test_a_card_of_the_same_generation_on_another_uid_is_still_a_clone(till: Till) -> None:
    till.issue(OLD, 0, member=MEMBER)
    with Journal(":memory:") as elsewhere:  # a second original issue of the member elsewhere
        issuer = Personaliser(till.keystore, elsewhere, PROGRAMME, today=lambda: TODAY)
        from daemon.membercard.requests import IssueCard, IssueSpec

        till.present(SimCard.blank(uid=NEW))
        till.run(card_job(issuer, till.profiles[0], IssueCard(IssueSpec(MEMBER, 2), "dup")))
    with pytest.raises(CardCloned):
        till.run(card_job(till.service, till.profiles[0], ReadCard()))
    assert till.journal.bound_uid(MEMBER) == OLD.hex().upper()
