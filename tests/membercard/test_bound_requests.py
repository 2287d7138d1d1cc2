"""A request is bound to its card (issue 14, item 3).

The first card a ``request_id`` meets (past its ``expected_uid``) is recorded with it. The same
id and amount on another card is ``REQUEST_ID_REUSED`` whether or not ``expected_uid`` was
given: the other card is read (a replay needs the card too), never charged, and the reuse is
audited. On the card it ran on, a retry still replays the outcome.
"""

from __future__ import annotations

import pytest

from daemon.errors import CardMismatch, InsufficientBalance, RequestIdReused
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import Debit
from tests.membercard.terminal import uid_for
from tests.membercard.till import Till

UID = uid_for(5201)
OTHER = uid_for(5202)


def test_a_debit_request_id_moved_to_another_card_is_refused(till: Till) -> None:
    first = till.issue(UID, 0, member="8800005201")
    second = till.issue(OTHER, 0, member="8800005202")
    till.present(first)
    paid = till.run(card_job(till.service, till.profiles[0], Debit("sale-9", 12_000)))
    assert paid.balance == 88_000
    till.present(second)
    for request in (Debit("sale-9", 12_000), Debit("sale-9", 12_000, expected_uid=None)):
        with pytest.raises(RequestIdReused, match=f"belongs to card {UID.hex().upper()}"):
            till.run(card_job(till.service, till.profiles[0], request))
    assert till.view() == (100_000, 50)  # the second card: never charged
    reused = till.journal.audit_events("request_id_reused", uid=OTHER.hex().upper())
    assert [e["request_id"] for e in reused] == ["sale-9", "sale-9"]
    till.present(first)  # on its own card the retry still replays
    again = till.run(card_job(till.service, till.profiles[0], Debit("sale-9", 12_000)))
    assert again.replayed
    assert again.balance == 88_000
    assert till.view() == (88_000, paid.points)


def test_an_aborted_request_is_bound_to_the_card_it_met(till: Till) -> None:
    """Refused for funds on one card, the same id on another card is a reuse too; a card
    refused by ``expected_uid`` does not take the request."""
    first = till.issue(UID, 0, member="8800005201")
    second = till.issue(OTHER, 0, member="8800005202")
    svc, reader = till.service, till.profiles[0]
    with pytest.raises(InsufficientBalance):
        till.run(card_job(svc, reader, Debit("big", 500_000)))  # on ``second``
    till.present(first)
    with pytest.raises(RequestIdReused):
        till.run(card_job(svc, reader, Debit("big", 500_000)))
    till.present(second)
    with pytest.raises(CardMismatch):
        till.run(card_job(svc, reader, Debit("pay", 1_000, expected_uid=UID.hex())))
    till.present(first)
    paid = till.run(card_job(svc, reader, Debit("pay", 1_000, expected_uid=UID.hex())))
    assert paid.uid == UID.hex().upper()
