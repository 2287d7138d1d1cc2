"""A tier change's or renewal's journalled outcome as ``MemberCardService.GetOperation`` shows it.

Why not MembershipService's own ``MembershipChange``: ``membership_service.proto`` imports the
member card contract, so GetOperation's answer carries a ``MembershipOutcome`` of its own, with
the decision and rule as the names of MembershipService's enum values
(:func:`daemon.api.membership.membership_change` is the call's answer, this is the journal's).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from daemon.api import convert
from daemon.api.v1 import member_card_service_pb2 as pb
from daemon.membercard.service import MembershipResult
from daemon.station import Station

__all__ = ["MEMBERSHIP_TYPES", "membership_outcome", "membership_result"]

#: the journal's op "membership" is two calls; their outcomes say which ("tier" / "renew")
MEMBERSHIP_TYPES: Final = {
    "tier": pb.OPERATION_TYPE_CHANGE_TIER,
    "renew": pb.OPERATION_TYPE_RENEW_CARD,
}
#: the card application's words -> the names of MembershipService's enum values (GetOperation
#: carries them as strings: membership_service.proto imports this contract, not the reverse)
_DECISIONS: Final = {
    "upgrade": "MEMBERSHIP_DECISION_UPGRADE",
    "downgrade": "MEMBERSHIP_DECISION_DOWNGRADE",
    "renew": "MEMBERSHIP_DECISION_RENEW",
    "shorten": "MEMBERSHIP_DECISION_SHORTEN",
    "unchanged": "MEMBERSHIP_DECISION_UNCHANGED",
}
_RULES: Final = {
    "requested": "MEMBERSHIP_RULE_REQUESTED",
    "upgrade_points": "MEMBERSHIP_RULE_UPGRADE_POINTS",
    "renew_months": "MEMBERSHIP_RULE_RENEW_MONTHS",
}


def _tier_name(station: Station, index: int) -> str:
    tiers = station.programme.tiers
    return tiers[index].name if 0 <= index < len(tiers) else f"tier {index}"


def _iso_date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def membership_outcome(result: MembershipResult, station: Station) -> pb.MembershipOutcome:
    return pb.MembershipOutcome(
        decision=_DECISIONS.get(result.decision, "MEMBERSHIP_DECISION_UNSPECIFIED"),
        rule=_RULES.get(result.rule, "MEMBERSHIP_RULE_UNSPECIFIED"),
        tier_before=result.tier_before,
        tier_name_before=_tier_name(station, result.tier_before),
        tier_after=result.tier,
        tier_name_after=_tier_name(station, result.tier),
        valid_until_before=convert.date(_iso_date(result.valid_until_before)),
        valid_until_after=convert.date(_iso_date(result.valid_until)),
        balance=convert.money(result.balance),
        points=result.points,
        counter=result.counter,
        format_version=result.format_version,
        migrated=result.migrated,
    )


def membership_result(result: MembershipResult) -> pb.OperationResult:
    """A tier change or renewal as an OperationResult: nothing moved (before = after)."""
    return pb.OperationResult(
        request_id=result.request_id,
        type=MEMBERSHIP_TYPES.get(result.op, pb.OPERATION_TYPE_UNSPECIFIED),
        uid=result.uid,
        member_id=result.member_id,
        amount=convert.money(0),
        bonus=convert.money(0),
        balance_before=convert.money(result.balance),
        balance_after=convert.money(result.balance),
        points_before=result.points,
        points_after=result.points,
        counter=result.counter,
        replayed=result.replayed,
    )
