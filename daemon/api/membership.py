"""``MembershipService``: ChangeTier and RenewCard, a member card's tier and validity.

Why a service of its own and not two more IssuingService methods: these are member card record
writes of any station (the card application's ``MemberCardService.change_tier`` and
``renew``, tear-safe like a debit), not the issuing station's personalisation, and who may
call them is the store's choice (``[api] membership_roles``, the issuer by default): the role
guard admits a whole service per role, so the choice is that service's role set.

Everything a request can get wrong is refused before the job is queued (no card touched):
the reader, the ``request_id``, the ``expected_uid`` (required: the card the member showed),
a tier outside the tier table, a date that does not exist, no choice or two. The card
application then decides (the rule it applied, old and new tier or validity) and the answer
says so; a retry with the same ``request_id`` replays that decision and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, cast

from grpc import aio

from daemon.api import convert
from daemon.api.issuing import run_on_reader
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import member_card_service_pb2 as mc
from daemon.api.v1 import membership_service_pb2 as pb
from daemon.api.v1 import membership_service_pb2_grpc as pb_grpc
from daemon.errors import InvalidArgument, NoTierRules
from daemon.membercard.requests import (
    ChangeTier,
    MembershipRequest,
    RenewCard,
    check_request_id,
    normalise_uid,
)
from daemon.membercard.service import MembershipResult
from daemon.station import Station

__all__ = ["MembershipServicer", "membership_change", "service"]

Context = aio.ServicerContext[Any, Any]

_DECISIONS: Final = {
    "upgrade": pb.MEMBERSHIP_DECISION_UPGRADE,
    "downgrade": pb.MEMBERSHIP_DECISION_DOWNGRADE,
    "renew": pb.MEMBERSHIP_DECISION_RENEW,
    "shorten": pb.MEMBERSHIP_DECISION_SHORTEN,
    "unchanged": pb.MEMBERSHIP_DECISION_UNCHANGED,
}
_RULES: Final = {
    "requested": pb.MEMBERSHIP_RULE_REQUESTED,
    "upgrade_points": pb.MEMBERSHIP_RULE_UPGRADE_POINTS,
    "renew_months": pb.MEMBERSHIP_RULE_RENEW_MONTHS,
}


def _request_id(value: str) -> str:
    return check_request_id(convert.request_id(value))


def _expected_uid(value: str) -> str:
    """Required: a tier or validity change names the card the member showed, so a retry or a
    slip of the hand never changes another member's card."""
    if not value:
        raise InvalidArgument(
            "expected_uid", "required: the UID of the card the member showed (from ReadCard)"
        )
    return normalise_uid("expected_uid", value)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def membership_change(
    result: MembershipResult, station: Station, today: dt.date
) -> pb.MembershipChange:
    """The card application's decision as the contract shows it (``today``: for the status)."""
    programme = station.programme
    known = result.tier < len(programme.tiers)
    tier = programme.tiers[result.tier] if known else None
    until = _date(result.valid_until)
    expired = until is not None and until < today
    card = mc.MemberCard(
        uid=result.uid,
        member_id=result.member_id,
        tier=result.tier,
        tier_name=tier.name if tier else f"tier {result.tier}",
        price_rate_bp=tier.discount if tier else 10000,
        valid_until=convert.date(until),
        balance=convert.money(result.balance),
        points=result.points,
        counter=result.counter,
        status=mc.MEMBER_CARD_STATUS_EXPIRED if expired else mc.MEMBER_CARD_STATUS_ACTIVE,
    )
    return pb.MembershipChange(
        request_id=result.request_id,
        decision=_DECISIONS.get(result.decision, pb.MEMBERSHIP_DECISION_UNSPECIFIED),
        rule=_RULES.get(result.rule, pb.MEMBERSHIP_RULE_UNSPECIFIED),
        tier_before=result.tier_before,
        valid_until_before=convert.date(_date(result.valid_until_before)),
        card=card,
        format_version=result.format_version,
        migrated=result.migrated,
        replayed=result.replayed,
    )


def _chosen_true(field: str, value: bool) -> None:
    if not value:
        raise InvalidArgument(field, "must be true when chosen (or choose another field)")


class MembershipServicer(pb_grpc.MembershipServiceServicer):
    def __init__(self, station: Station, api: ApiConfig) -> None:
        self.station = station
        self.max_call_s = api.max_call_ms / 1000

    def _reader(self, name: str) -> str:
        rid = convert.resource_id(name, "readers", "reader")
        self.station.reader(rid)  # NOT_FOUND before anything else is judged
        return rid

    async def _run(
        self, rid: str, request: MembershipRequest, context: Context
    ) -> pb.MembershipChange:
        left = cast("float | None", context.time_remaining())
        limit = max(self.max_call_s if left is None else min(left, self.max_call_s), 0.0)
        job = self.station.card_job(rid, request)
        result: MembershipResult = await run_on_reader(self.station, rid, job, limit)
        return membership_change(result, self.station, self.station._today())

    def _tier(self, value: int) -> int:
        tiers = self.station.programme.tiers
        if not 0 <= value < len(tiers):
            known = ", ".join(f"{i} {t.name}" for i, t in enumerate(tiers))
            raise InvalidArgument("tier", f"{value} is not in the tier table ({known})")
        return value

    async def ChangeTier(
        self, request: pb.ChangeTierRequest, context: Context
    ) -> pb.ChangeTierResponse:
        rid = self._reader(request.reader)
        request_id = _request_id(request.request_id)
        expected = _expected_uid(request.expected_uid)
        tier: int | None
        match request.WhichOneof("target"):
            case "tier":
                tier = self._tier(request.tier)
            case "apply_tier_rules":
                _chosen_true("apply_tier_rules", request.apply_tier_rules)
                if all(t.upgrade_points is None for t in self.station.programme.tiers):
                    raise NoTierRules(
                        "apply_tier_rules: no tier has upgrade_points in [[membercard.tiers]] "
                        "of this daemon's config; name the tier instead (nothing written)"
                    )
                tier = None
            case _:
                raise InvalidArgument(
                    "tier", "required: tier (an index in the tier table) or apply_tier_rules"
                )
        change = ChangeTier(request_id, tier, expected_uid=expected)
        return pb.ChangeTierResponse(change=await self._run(rid, change, context))

    async def RenewCard(
        self, request: pb.RenewCardRequest, context: Context
    ) -> pb.RenewCardResponse:
        rid = self._reader(request.reader)
        request_id = _request_id(request.request_id)
        expected = _expected_uid(request.expected_uid)
        match request.WhichOneof("validity"):
            case "valid_until":
                until = convert.from_date(request.valid_until, "valid_until")
                renew = RenewCard(request_id, until, expected_uid=expected)
            case "no_expiry":
                _chosen_true("no_expiry", request.no_expiry)
                renew = RenewCard(request_id, expected_uid=expected, no_expiry=True)
            case "apply_renewal_rule":
                _chosen_true("apply_renewal_rule", request.apply_renewal_rule)
                renew = RenewCard(request_id, expected_uid=expected)
            case _:
                raise InvalidArgument(
                    "valid_until", "required: valid_until, no_expiry or apply_renewal_rule"
                )
        return pb.RenewCardResponse(change=await self._run(rid, renew, context))


def service(station: Station, api: ApiConfig) -> Service:
    """For the roles of ``[api] membership_roles`` (issuer by default)."""
    return Service(
        pb.DESCRIPTOR.services_by_name["MembershipService"].full_name,
        frozenset(api.membership_roles),
        MembershipServicer(station, api),
        pb_grpc.add_MembershipServiceServicer_to_server,
    )
