"""GetOperation and ListPendingOperations of tier changes and renewals (MembershipService):
what kind of operation it was and what it decided, the way a back office settles or audits it.

Real gRPC clients on the issuer and POS sockets of a running station on the simulated store;
the card is a simulated MIFARE Classic card on the front reader.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from daemon.api.v1 import diagnostics_service_pb2 as d
from daemon.api.v1 import diagnostics_service_pb2_grpc as dg
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import membership_service_pb2 as ms
from daemon.api.v1 import membership_service_pb2_grpc as msg
from sim.backend import SimBackend
from tests.api.conftest import Api
from tests.api.test_cards import cny, reason
from tests.api.test_membership import SPEC, UID, _issue, _renew, _tier

S = m.GetOperationResponse


@pytest.fixture
def issuer(api: Api) -> msg.MembershipServiceStub:
    _issue(api)  # 金卡 (tier 2), 500.00, 40 points, valid to 2030-12-31
    return msg.MembershipServiceStub(api.channel("issuer"))


@pytest.fixture
def pos(api: Api) -> mg.MemberCardServiceStub:
    return mg.MemberCardServiceStub(api.channel("pos"))


def _get(pos: mg.MemberCardServiceStub, rid: str) -> m.GetOperationResponse:
    return pos.GetOperation(m.GetOperationRequest(request_id=rid), timeout=5)


def test_a_tier_change_says_what_it_was_and_decided_also_after_a_replay(
    issuer: msg.MembershipServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    up = issuer.ChangeTier(_tier("tier-1", 3), timeout=10).change
    for _ in range(2):  # committed, then again after the call was replayed
        op = _get(pos, "tier-1")
        assert (op.state, op.type, op.uid) == (S.STATE_COMMITTED, m.OPERATION_TYPE_CHANGE_TIER, UID)
        got = op.membership
        assert (got.decision, got.rule) == (
            ms.MembershipDecision.Name(up.decision), ms.MembershipRule.Name(up.rule),
        )  # fmt: skip
        assert got.decision == "MEMBERSHIP_DECISION_UPGRADE"
        assert (got.tier_before, got.tier_name_before, got.tier_after, got.tier_name_after) == (
            2, "金卡", 3, "白金卡",
        )  # fmt: skip
        assert (got.valid_until_before, got.valid_until_after) == (
            up.valid_until_before, up.card.valid_until,
        )  # fmt: skip
        assert (got.balance, got.points, got.counter) == (cny(50_000), 40, up.card.counter)
        assert (got.format_version, got.migrated) == (2, True)
        result = op.result  # the card's figures, nothing moved
        assert (result.type, result.member_id, result.counter) == (
            m.OPERATION_TYPE_CHANGE_TIER, SPEC.member_id, up.card.counter,
        )  # fmt: skip
        assert (result.balance_before, result.balance_after) == (cny(50_000), cny(50_000))
        assert (result.points_before, result.points_after, result.amount) == (40, 40, cny(0))
        assert op.update_time.seconds >= op.create_time.seconds > 0
        assert issuer.ChangeTier(_tier("tier-1", 3), timeout=10).change.replayed
    issuer.ChangeTier(_tier("tier-2", 0), timeout=10)
    op = _get(pos, "tier-2")
    assert op.membership.decision == "MEMBERSHIP_DECISION_DOWNGRADE"
    assert (op.membership.tier_before, op.membership.tier_name_after) == (3, "普通会员")
    assert not op.membership.migrated


def test_a_renewal_says_what_it_was_and_the_validity_before_and_after(
    issuer: msg.MembershipServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    later = issuer.RenewCard(_renew("renew-1", dt.date(2032, 6, 30)), timeout=10).change
    assert issuer.RenewCard(_renew("renew-1", dt.date(2032, 6, 30)), timeout=10).change.replayed
    op = _get(pos, "renew-1")
    assert (op.state, op.type) == (S.STATE_COMMITTED, m.OPERATION_TYPE_RENEW_CARD)
    got = op.membership
    assert (got.decision, got.rule) == ("MEMBERSHIP_DECISION_RENEW", "MEMBERSHIP_RULE_REQUESTED")
    before, after = got.valid_until_before, got.valid_until_after
    assert (before.year, before.month, before.day) == (2030, 12, 31)
    assert (after.year, after.month, after.day) == (2032, 6, 30)
    assert (got.tier_before, got.tier_after, got.counter) == (2, 2, later.card.counter)
    never = issuer.RenewCard(_renew("renew-2", no_expiry=True), timeout=10).change
    op = _get(pos, "renew-2")
    assert op.type == m.OPERATION_TYPE_RENEW_CARD
    assert not op.membership.HasField("valid_until_after")  # never expires now
    assert op.membership.counter == never.card.counter


def test_a_refused_tier_change_is_not_applied_with_its_type_and_reason(
    issuer: msg.MembershipServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        issuer.ChangeTier(_tier("tier-x", 3, uid="04B1C2D3"), timeout=10)  # another card
    assert reason(err.value) == "CARD_MISMATCH"
    op = _get(pos, "tier-x")
    assert (op.state, op.type, op.error_reason) == (
        S.STATE_NOT_APPLIED, m.OPERATION_TYPE_CHANGE_TIER, "CARD_MISMATCH",
    )  # fmt: skip
    assert not op.HasField("membership")
    assert not op.HasField("result")


def test_a_renewal_cut_mid_write_is_pending_listed_then_settled(
    api: Api, issuer: msg.MembershipServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    issuer.ChangeTier(_tier("tier-0", 2), timeout=10)  # the card is v2: one record write
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    reader = backend.reader(api.station.reader("front").name)
    card = reader.card
    reader.faults.arm()
    reader.faults.remove_after(9)  # after the intent, before the record is confirmed
    with pytest.raises(grpc.RpcError) as err:
        issuer.RenewCard(_renew("renew-9", dt.date(2031, 3, 31)), timeout=10)
    reader.faults.clear()
    assert reason(err.value) == "WRITE_UNCONFIRMED"
    op = _get(pos, "renew-9")
    assert (op.state, op.type, op.uid) == (S.STATE_PENDING, m.OPERATION_TYPE_RENEW_CARD, UID)
    assert not op.HasField("membership")
    listed = pos.ListPendingOperations(m.ListPendingOperationsRequest(uid=UID), timeout=5)
    [pending] = listed.operations
    assert (pending.request_id, pending.type, pending.member_id) == (
        "renew-9", m.OPERATION_TYPE_RENEW_CARD, SPEC.member_id,
    )  # fmt: skip
    assert pending.balance_before == pending.balance_if_applied == cny(50_000)
    assert pending.points_before == pending.points_if_applied == 40
    assert pending.create_time.seconds > 0
    with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
        reader.insert(card)  # type: ignore[arg-type]
        seen.wait_for(lambda e: not e.snapshot, 10)
    read = pos.ReadCard(m.ReadCardRequest(reader="readers/front"), timeout=10)
    assert "renew-9" in read.resolved_request_ids
    settled = _get(pos, "renew-9")
    if settled.state == S.STATE_COMMITTED:
        assert (read.card.valid_until.year, read.card.valid_until.month) == (2031, 3)
        assert settled.membership.decision == "MEMBERSHIP_DECISION_RENEW"
        assert settled.membership.counter == read.card.counter
    else:
        assert settled.state == S.STATE_NOT_APPLIED
        assert read.card.valid_until.year == 2030
        assert not settled.HasField("membership")
    assert not pos.ListPendingOperations(m.ListPendingOperationsRequest(), timeout=5).operations


def test_the_card_history_names_tier_changes_and_renewals(
    api: Api, issuer: msg.MembershipServiceStub
) -> None:
    issuer.ChangeTier(_tier("hist-tier", 3), timeout=10)
    issuer.RenewCard(_renew("hist-renew", dt.date(2032, 6, 30)), timeout=10)
    tech = dg.DiagnosticsServiceStub(api.channel("technician"))
    entries = tech.GetCardHistory(d.GetCardHistoryRequest(uid=UID), timeout=5).entries
    types = {e.request_id: e.type for e in entries if e.request_id.startswith("hist-")}
    assert types == {
        "hist-tier": m.OPERATION_TYPE_CHANGE_TIER,
        "hist-renew": m.OPERATION_TYPE_RENEW_CARD,
    }
