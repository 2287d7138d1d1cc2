"""Replace a lost card (补卡): hotlist the old UID, carry its balance and points to a new card.

One idempotent operation per ``request_id``: the old UID is hotlisted first (so the lost card
cannot be spent while the new one is made), then the new card is issued with the member, tier,
validity, balance and points this PC's journal last verified on the old card, and the member
ID is bound to the new UID. A retry resumes where it stopped.

Limitation: the journal is this store PC's. A card last used at another PC carries a newer
state than this journal knows; until a chain-wide ledger takes the journal's role, replace
only at the PC that saw the card last (or reconcile journals first).
"""

from __future__ import annotations

import datetime as dt
import logging

from daemon.errors import InvalidArgument, MemberNotFound
from daemon.journal import RequestState
from daemon.membercard.guard import VALUE_OPS
from daemon.membercard.issuing import IssueResult, Personaliser
from daemon.membercard.requests import IssueSpec, ReplaceCard
from daemon.readers.storage import StorageCard

__all__ = ["replace_card"]

logger = logging.getLogger(__name__)


def replace_card(
    personaliser: Personaliser, new_card: StorageCard, request: ReplaceCard
) -> IssueResult:
    """Replace lost card ``request.old_uid`` by ``new_card``; idempotent per request_id."""
    journal = personaliser.journal
    old, request_id = request.old_uid, request.request_id
    seen = journal.last_seen(old)
    if seen is None or not seen.member_id:
        raise MemberNotFound(f"card {old} is unknown to this terminal's journal")
    journal.check_space()  # the hotlist entry, both intents and outcomes must fit
    with journal.claim(request_id, "replace", {"old_uid": old}) as claim:
        if claim.action == "replay":
            assert claim.record.outcome is not None
            return IssueResult(**claim.record.outcome, replayed=True)
        unresolved = [r.request_id for r in journal.pending_for_uid(old) if r.op in VALUE_OPS]
        if unresolved:
            raise InvalidArgument(
                "old_uid",
                f"card {old} has unresolved transactions {', '.join(unresolved)}; "
                "settle them before moving its balance",
            )
        if journal.hotlist_reason(old) is None:
            journal.hotlist(old, f"replaced ({request_id})")
        snap = seen.state
        until = snap.get("valid_until")
        spec = IssueSpec(
            member_id=str(snap["member_id"]),
            tier=int(snap["tier"]),
            valid_until=dt.date.fromisoformat(until) if until else None,
            balance=int(snap["balance"]),
            points=int(snap["points"]),
            generation=int(snap.get("generation", 0)) + 1,  # proves offline: supersedes old
        )
        result = personaliser._issue(new_card, spec, f"{request_id}:issue", replacing=old)
        outcome = {
            "request_id": request_id, "uid": result.uid, "member_id": result.member_id,
            "balance": result.balance, "points": result.points,
        }  # fmt: skip
        journal.finish(request_id, RequestState.COMMITTED, outcome)
        journal.audit(
            "replace",
            uid=result.uid,
            member_id=result.member_id,
            request_id=request_id,
            detail={"old_uid": old, "balance": result.balance, "points": result.points},
        )
        return IssueResult(request_id, result.uid, result.member_id, result.balance, result.points)
