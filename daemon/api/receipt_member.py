"""The member block of a receipt that names its card operation (``Receipt.card_request_id``).

Why from the journal: the member ID, tier, balances and points on paper must be what the card
operation committed, never what the POS retyped. A receipt may name a sale's operation (Debit,
Credit, AdjustPoints) or a reversal's (Refund: a refund slip, 退款; CancelTopUp: a
cancellation receipt, 撤销充值); its amounts are checked against that operation, and an
operation that did not commit, or one with nothing to print (a tier change), is refused.
"""

from __future__ import annotations

from typing import Final

from daemon.api import convert
from daemon.api.v1 import printer_service_pb2 as pb
from daemon.errors import CardDaemonError, OperationNotCommitted, ReceiptInvalid
from daemon.journal import RequestState
from daemon.membercard.service import OpResult
from daemon.printers.receipt import MemberSection
from daemon.station import Station

__all__ = ["mask_member_id", "member_from_journal"]

#: card operations a sale receipt may name
_SALE_OPS: Final = ("debit", "credit", "points")
#: card operations a refund slip / cancellation receipt may name (their own checks)
_REVERSAL_OPS: Final = ("refund", "cancel_topup")


def mask_member_id(member_id: str) -> str:
    """``8860123403721`` → ``8860*****3721``: at most four characters shown at each end and
    always at least four ``*`` (what the receipt check demands)."""
    keep = max(0, min(4, (len(member_id) - 4) // 2))
    stars = max(4, len(member_id) - 2 * keep)
    return member_id[:keep] + "*" * stars + member_id[len(member_id) - keep :]


def _check_reversal(op: str, result: OpResult, message: pb.Receipt) -> None:
    """A refund slip or cancellation receipt must say what the card operation gave back: the
    total covers the refund (a mixed-payment return may add the cash part; a cancelled
    top-up's slip is that cash, exactly) and one payment line is the card's part, as a sale
    receipt must carry the debited amount."""
    amount = result.amount
    rid = result.request_id
    total = message.totals.total.amount_fen
    if op == "refund":
        what = f"the {amount} fen refunded to the card by {rid!r}"
        if total < amount:
            raise ReceiptInvalid("receipt.totals.total", f"{total} fen is less than {what}")
    else:
        what = f"the {amount} fen handed back for the top-up cancelled by {rid!r}"
        if total != amount:
            raise ReceiptInvalid("receipt.totals.total", f"{total} fen is not {what}")
    if not any(p.amount.amount_fen == amount for p in message.payments):
        raise ReceiptInvalid("receipt.payments", f"no line of {amount} fen, {what}")


def member_from_journal(
    station: Station, card_request_id: str, message: pb.Receipt
) -> MemberSection:
    """The member block of the receipt naming ``card_request_id``, from the journal's committed
    outcome (never typed by the POS), after the receipt's amounts are checked against it."""
    if message.HasField("member"):
        raise ReceiptInvalid(
            "receipt.member",
            "must be unset when card_request_id is set: the daemon fills it from the journal",
        )
    journal = station.journal
    record = None if journal is None else journal.get(card_request_id)
    if record is None:
        raise OperationNotCommitted(
            f"card_request_id {card_request_id!r}: no card operation with this request_id"
        )
    if record.state is not RequestState.COMMITTED or record.outcome is None:
        what = {
            RequestState.PENDING: "its outcome is unknown (settle it with GetOperation or "
            "by presenting the card)",
            RequestState.CLAIMED: "it is still in progress",
            RequestState.ABORTED: "it was not applied",
        }.get(record.state, f"it is {record.state}")
        raise OperationNotCommitted(
            f"card_request_id {card_request_id!r}: the operation did not commit: {what}"
        )
    if record.op not in _SALE_OPS + _REVERSAL_OPS:
        what = f"a {record.op} operation"
        if record.op == "membership":
            what = "a tier change or renewal"
        raise ReceiptInvalid(
            "receipt.card_request_id",
            f"names {what} ({card_request_id!r}), which has no receipt; name a Debit, "
            "Credit, AdjustPoints, Refund or CancelTopUp",
        )
    result = OpResult.from_outcome(record.outcome)
    if record.op == "debit" and not any(
        p.amount.amount_fen == result.amount for p in message.payments
    ):
        raise ReceiptInvalid(
            "receipt.payments",
            f"no payment of {convert.money(result.amount).amount_fen} fen, the amount the "
            f"card operation {card_request_id!r} debited",
        )
    if record.op in _REVERSAL_OPS:
        _check_reversal(record.op, result, message)
    tier = ""
    seen = journal.last_seen(result.uid) if journal is not None else None
    if seen is not None and isinstance(seen.state.get("tier"), int):
        try:
            tier = station.programme.tier(seen.state["tier"]).name
        except CardDaemonError:
            tier = f"tier {seen.state['tier']}"
    if record.op in _REVERSAL_OPS:
        return MemberSection(
            masked_member_id=mask_member_id(result.member_id),
            tier=tier,
            discount_fen=0,
            balance_before_fen=result.balance_before,
            balance_after_fen=result.balance,
            points_earned=0,
            points_balance=result.points,
            kind=record.op,
            amount_fen=result.amount,
            bonus_fen=result.bonus,
            points_taken_back=max(0, -result.points_delta),
            original_ref=result.original_request_id,
        )
    return MemberSection(
        masked_member_id=mask_member_id(result.member_id),
        tier=tier,
        discount_fen=message.totals.discount.amount_fen,
        balance_before_fen=result.balance_before,
        balance_after_fen=result.balance,
        points_earned=max(0, result.points_delta),
        points_balance=result.points,
    )
