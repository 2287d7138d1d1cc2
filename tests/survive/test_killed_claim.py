"""A debit the daemon was killed in before it journalled an intent: after the restart
``GetOperation`` says NOT_APPLIED (reason ``ABANDONED``), not IN_PROGRESS, and a retry with the
same request_id executes it once.

It said IN_PROGRESS ("ask again shortly") until ``abandoned_claim_age_s`` (an hour by default)
closed the claim: a till following the contract waited an hour (``bench/crash_campaign.py``
counted these as unresolved). The journal is left exactly as such a kill leaves it: the daemon
is killed, the claim is made in its journal file, then the daemon starts again.
"""

from __future__ import annotations

import pytest

from bench.crash_campaign import StorePc, cny
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.journal import Journal
from daemon.membercard.requests import Debit, value_params

STATE = m.GetOperationResponse


@pytest.mark.pcscd
def test_a_claim_left_by_a_killed_daemon_is_not_applied_and_retried_once(
    issued_store: tuple[StorePc, dict[str, str]],
) -> None:
    store, uids = issued_store
    before = store.read("front").card
    store.kill()
    params = value_params(Debit("sale-killed", 250, expected_uid=uids["front"]))
    with Journal(store.journal_path) as journal, journal.claim("sale-killed", "debit", params):
        pass  # what the killed process left: a claim, no intent
    store.start()
    with store.channel() as channel:
        cards = mg.MemberCardServiceStub(channel)
        op = cards.GetOperation(m.GetOperationRequest(request_id="sale-killed"), timeout=10)
        assert (op.state, op.error_reason) == (STATE.STATE_NOT_APPLIED, "ABANDONED")
        debit = m.DebitRequest(
            reader="readers/front", request_id="sale-killed", expected_uid=uids["front"],
            amount=cny(250),
        )  # fmt: skip
        first = cards.Debit(debit, timeout=10).result
        again = cards.Debit(debit, timeout=10).result
        assert first.balance_after.amount_fen == before.balance.amount_fen - 250
        assert (again.replayed, again.counter) == (True, first.counter)
        op = cards.GetOperation(m.GetOperationRequest(request_id="sale-killed"), timeout=10)
        assert op.state == STATE.STATE_COMMITTED
    after = store.read("front").card
    assert (after.balance.amount_fen, after.counter) == (
        before.balance.amount_fen - 250,
        before.counter + 1,
    )
