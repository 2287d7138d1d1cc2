"""Refunds of a payment and cancelled top-ups: record writes that reverse an earlier one.

Why a module of its own: a reversal is a debit or credit in reverse (same claim, intent, one
record write as commit point, same tear guarantees; :meth:`MemberCardService._mutate`) plus
rules about the operation it reverses, which is looked up in this PC's journal by its
``request_id`` and linked to the reversal (``requests.reverses``) before the card is written:

* only a COMMITTED original of the right kind (a refund reverses a ``debit``, a cancellation a
  ``credit``), only on the card it changed, only within ``[membercard] refund_days`` /
  ``cancel_window`` (business days, ``day_cutoff_hour``);
* the refunds of one payment never add up to more than it: what is left counts every earlier
  refund that committed or whose outcome is still unknown (PENDING: it may have landed);
* a refund never carries a bonus and takes back the points its part of the payment earned,
  **rounded down on the running total**: after refunds totalling ``R`` of a payment ``P`` that
  earned ``E`` points, ``floor(E * R / P)`` points have been taken back. Each refund takes the
  difference, so a payment refunded in parts gives back exactly ``E`` once fully refunded, and
  the member keeps a fractional point until then;
* a cancellation takes the top-up and its bonus back in one write, refused (``TOPUP_SPENT``)
  when the card no longer holds both (the store then refunds what it decides outside the card
  system: docs/operations.md, "Closing the day").

Every refusal is a :class:`~daemon.errors.ReversalRefused` naming the original and the amount
left; nothing is written to the card, and the reversal is journalled ABORTED with its reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from daemon.errors import (
    AlreadyReversed,
    AmountOutOfRange,
    InsufficientBalance,
    OriginalNotCommitted,
    OriginalNotFound,
    OriginalNotReversible,
    RefundExceedsPayment,
    ReversalCardMismatch,
    ReversalWindowClosed,
    TopUpSpent,
)
from daemon.journal import Journal, RequestRecord, RequestState
from daemon.membercard.layout import SlotState
from daemon.membercard.requests import CancelTopUp, Refund
from daemon.membercard.rules import Programme
from daemon.membercard.state import CardState
from daemon.readers.storage import StorageCard

if TYPE_CHECKING:
    from daemon.membercard.service import Check, MemberCardService, OpResult

__all__ = ["REVERSES", "cancel_topup", "points_back", "refund", "reversed_so_far"]

logger = logging.getLogger(__name__)

#: reversal op -> the op it reverses
REVERSES = {"refund": "debit", "cancel_topup": "credit"}
_WHAT = {"refund": "payment", "cancel_topup": "top-up"}
_DAY_S = 86400


def points_back(earned: int, paid: int, before: int, amount: int) -> int:
    """Points a refund of ``amount`` takes back from a payment of ``paid`` fen that earned
    ``earned`` points, ``before`` fen of it refunded already (rounded down on the running
    total: the parts of a full refund add up to ``earned`` exactly)."""
    return earned * (before + amount) // paid - earned * before // paid


def _reversal_amount(record: RequestRecord) -> int:
    """Fen a reversal moved (committed) or may have moved (pending); 0 otherwise."""
    if record.state is RequestState.COMMITTED and record.outcome is not None:
        return int(record.outcome.get("amount", 0))
    if record.state is RequestState.PENDING and record.after is not None:
        return int(record.after["result"]["amount"])
    return 0


def reversed_so_far(journal: Journal, original: str, *, besides: str = "") -> tuple[int, int]:
    """(fen, how many reversals) of ``original`` committed or still pending, ``besides`` not
    counted (the reversal being decided)."""
    found = [r for r in journal.reversals_of(original) if r.request_id != besides]
    counted = [r for r in found if r.state in (RequestState.COMMITTED, RequestState.PENDING)]
    return sum(_reversal_amount(r) for r in counted), len(counted)


def _original(
    journal: Journal, op: str, request_id: str, original_id: str, state: CardState
) -> RequestRecord:
    """The committed operation ``op`` reverses, on this card; linked to the reversal first."""
    want, what = REVERSES[op], _WHAT[op]
    journal.link_reversal(request_id, original_id)
    original = journal.get(original_id)
    if original is None:
        raise OriginalNotFound(
            f"{op} {request_id}: no operation {original_id!r} in this PC's journal (a {what} "
            "is reversed at the PC that made it); nothing written, 0 fen left to reverse"
        )
    if original.op != want:
        hint = "cancel a top-up with CancelTopUp" if original.op == "credit" else (
            "refund a payment with Refund" if original.op == "debit" else "it moved no money"
        )  # fmt: skip
        raise OriginalNotReversible(
            f"{op} {request_id}: operation {original_id} is a {original.op}, not a {what} "
            f"({hint}); nothing written, 0 fen left to reverse"
        )
    if original.state is not RequestState.COMMITTED or original.outcome is None:
        why = {
            RequestState.PENDING: "its outcome is unknown (present its card to settle it)",
            RequestState.CLAIMED: "it is still in progress",
            RequestState.ABORTED: "it was not applied",
        }[original.state]
        raise OriginalNotCommitted(
            f"{op} {request_id}: {what} {original_id} is {original.state.value}: {why}; "
            "nothing written, 0 fen left to reverse"
        )
    if original.uid != state.uid_hex:
        raise ReversalCardMismatch(
            f"{op} {request_id}: {what} {original_id} was made on card {original.uid}, "
            f"presented {state.uid_hex}; only that card can be credited or debited for it, "
            "nothing written"
        )
    return original


def _check_window(
    programme: Programme, journal: Journal, op: str, request_id: str, original: RequestRecord,
    left: int,
) -> None:  # fmt: skip
    now, then = journal.now(), original.updated
    what = _WHAT[op]
    if op == "refund":
        days = (programme.business_day(now) - programme.business_day(then)).days
        if days > programme.refund_days:
            raise ReversalWindowClosed(
                f"refund {request_id}: payment {original.request_id} was made {days} business "
                f"days ago, refunds are allowed for {programme.refund_days} "
                f"(membercard.refund_days); nothing written, {left} fen left unrefunded"
            )
        return
    minutes = programme.cancel_window_minutes
    if minutes is None:
        day, today = programme.business_day(then), programme.business_day(now)
        if day != today:
            raise ReversalWindowClosed(
                f"cancel_topup {request_id}: {what} {original.request_id} belongs to business "
                f"day {day}, today is {today}; a top-up is cancelled on its own business day "
                f"only (membercard.cancel_window); nothing written, {left} fen not cancelled"
            )
    elif now - then > minutes * 60:
        raise ReversalWindowClosed(
            f"cancel_topup {request_id}: {what} {original.request_id} was made "
            f"{int((now - then) // 60)} minutes ago, the window is {minutes} minutes "
            f"(membercard.cancel_window); nothing written, {left} fen not cancelled"
        )


def refund(
    service: MemberCardService, card: StorageCard, request: Refund, *, check: Check | None = None
) -> OpResult:
    """Put ``request.amount`` back on the card that paid ``request.original_request_id``."""
    journal, programme = service.journal, service.programme
    rid, amount = request.request_id, request.amount

    def compute(state: CardState) -> tuple[SlotState, dict[str, Any]]:
        original = _original(journal, "refund", rid, request.original_request_id, state)
        assert original.outcome is not None
        paid = int(original.outcome["amount"])
        earned = max(0, int(original.outcome["points_delta"]))
        done, count = reversed_so_far(journal, original.request_id, besides=rid)
        left = paid - done
        _check_window(programme, journal, "refund", rid, original, left)
        if left <= 0:
            raise AlreadyReversed(
                f"refund {rid}: payment {original.request_id} of {paid} fen is refunded in full "
                f"already ({count} refunds); nothing written, 0 fen left"
            )
        if amount > left:
            raise RefundExceedsPayment(
                f"refund {rid}: {amount} fen is more than the {left} fen left of payment "
                f"{original.request_id} ({paid} fen, {done} fen refunded); nothing written"
            )
        back = points_back(earned, paid, done, amount)
        cur = state.current
        if cur.points < back:
            raise InsufficientBalance(
                f"refund {rid}: the refunded part of payment {original.request_id} earned "
                f"{back} points, card {state.uid_hex} holds {cur.points}; nothing written, "
                f"{left} fen left (refund a smaller part, see docs/operations.md)"
            )
        total = cur.balance + amount
        if total > programme.balance_cap:
            raise AmountOutOfRange(
                "amount", f"refund {rid}: balance would be {total} fen, above the card cap of "
                f"{programme.balance_cap} fen; nothing written, {left} fen left",
            )  # fmt: skip
        return service._next(state, total, cur.points - back), {
            "amount": amount, "bonus": 0, "points_delta": -back,
            "original_request_id": original.request_id,
        }  # fmt: skip

    out = service._mutate(card, request, "refund", compute, None, check)
    assert isinstance(out, _op_result())
    return out


def cancel_topup(
    service: MemberCardService,
    card: StorageCard,
    request: CancelTopUp,
    *,
    check: Check | None = None,
) -> OpResult:
    """Take top-up ``request.original_request_id`` and its bonus back off its card."""
    journal, programme = service.journal, service.programme
    rid = request.request_id

    def compute(state: CardState) -> tuple[SlotState, dict[str, Any]]:
        original = _original(journal, "cancel_topup", rid, request.original_request_id, state)
        assert original.outcome is not None
        cash, bonus = int(original.outcome["amount"]), int(original.outcome["bonus"])
        done, _ = reversed_so_far(journal, original.request_id, besides=rid)
        left = 0 if done else cash
        _check_window(programme, journal, "cancel_topup", rid, original, left)
        if done:
            raise AlreadyReversed(
                f"cancel_topup {rid}: top-up {original.request_id} is cancelled already; "
                "nothing written, 0 fen left"
            )
        cur = state.current
        if cur.balance < cash + bonus:
            raise TopUpSpent(
                f"cancel_topup {rid}: top-up {original.request_id} put {cash} fen + {bonus} fen "
                f"bonus on card {state.uid_hex}, which holds {cur.balance} fen now; nothing "
                f"written, {cash} fen left (see docs/operations.md, closing the day)"
            )
        return service._next(state, cur.balance - cash - bonus, cur.points), {
            "amount": cash, "bonus": bonus, "points_delta": 0,
            "original_request_id": original.request_id,
        }  # fmt: skip

    out = service._mutate(card, request, "cancel_topup", compute, None, check)
    assert isinstance(out, _op_result())
    return out


def _op_result() -> type[OpResult]:
    from daemon.membercard.service import OpResult  # service imports this module

    return OpResult
