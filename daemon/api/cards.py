"""``MemberCardService``: read, pay, top up, points, refunds, cancelled top-ups, settling
unknown outcomes (POS role), and the daily settlement (:mod:`daemon.api.day`).

Every card call runs as a job on the reader's worker thread (``Station.run_async``), never on
the event loop. A call the client cancels before its job started is dropped from the queue
(nothing was written); one whose job started runs to its end, and its outcome is in the journal
for ``GetOperation``: never half-done.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from grpc import aio

from daemon.api import convert, day
from daemon.api.membership_outcome import MEMBERSHIP_TYPES, membership_outcome, membership_result
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import member_card_service_pb2 as pb
from daemon.api.v1 import member_card_service_pb2_grpc as pb_grpc
from daemon.errors import InvalidArgument
from daemon.journal import Journal, RequestRecord, RequestState
from daemon.membercard.requests import (
    AdjustPoints,
    CancelTopUp,
    CardRequest,
    Credit,
    Debit,
    ReadCard,
    Refund,
)
from daemon.membercard.reversals import REVERSES, reversed_so_far
from daemon.membercard.service import CardInfo, MembershipResult, OpResult
from daemon.station import Station

__all__ = ["MemberCardServicer", "service"]

Context = aio.ServicerContext[Any, Any]

#: the journal's operation names -> the contract's (one table for every service)
OPERATION_TYPES = {
    "debit": pb.OPERATION_TYPE_DEBIT,
    "credit": pb.OPERATION_TYPE_CREDIT,
    "points": pb.OPERATION_TYPE_ADJUST_POINTS,
    "issue": pb.OPERATION_TYPE_ISSUE,
    "erase": pb.OPERATION_TYPE_ERASE,
    "replace": pb.OPERATION_TYPE_REPLACE,
    "refund": pb.OPERATION_TYPE_REFUND,
    "cancel_topup": pb.OPERATION_TYPE_CANCEL_TOP_UP,
}
_STATES = {
    RequestState.COMMITTED: pb.GetOperationResponse.STATE_COMMITTED,
    RequestState.PENDING: pb.GetOperationResponse.STATE_PENDING,
    RequestState.ABORTED: pb.GetOperationResponse.STATE_NOT_APPLIED,
    RequestState.CLAIMED: pb.GetOperationResponse.STATE_IN_PROGRESS,
}
MAX_PAGE = 100


def member_card(info: CardInfo) -> pb.MemberCard:
    return pb.MemberCard(
        uid=info.uid,
        member_id=info.member_id,
        tier=info.tier,
        tier_name=info.tier_name,
        price_rate_bp=info.discount,
        valid_until=convert.date(info.valid_until),
        balance=convert.money(info.balance),
        points=info.points,
        counter=info.counter,
        status=(
            pb.MEMBER_CARD_STATUS_EXPIRED
            if info.status == "expired"
            else pb.MEMBER_CARD_STATUS_ACTIVE
        ),
    )


def operation_result(result: OpResult) -> pb.OperationResult:
    return pb.OperationResult(
        request_id=result.request_id,
        type=OPERATION_TYPES.get(result.op, pb.OPERATION_TYPE_UNSPECIFIED),
        uid=result.uid,
        member_id=result.member_id,
        amount=convert.money(result.amount),
        bonus=convert.money(result.bonus),
        points_delta=result.points_delta,
        balance_before=convert.money(result.balance_before),
        balance_after=convert.money(result.balance),
        points_before=result.points_before,
        points_after=result.points,
        counter=result.counter,
        replayed=result.replayed,
        original_request_id=result.original_request_id,
    )


def operation_type(record: RequestRecord) -> pb.OperationType.ValueType:
    """The contract's type of a journalled request; a tier change or renewal is told apart by
    its outcome (committed or pending) or, before its intent, by its parameters."""
    if record.op != "membership":
        return OPERATION_TYPES.get(record.op, pb.OPERATION_TYPE_UNSPECIFIED)
    result = (record.after or {}).get("result")
    kind = (record.outcome or {}).get("op") or (result or {}).get("op")
    if kind is None:  # ChangeTier's parameters name a tier, RenewCard's a validity
        kind = "renew" if "no_expiry" in record.params else "tier"
    return MEMBERSHIP_TYPES.get(str(kind), pb.OPERATION_TYPE_UNSPECIFIED)


def _uid(value: str) -> str | None:
    return value or None


def _expected_uid(value: str) -> str:
    """Mutations must name the card the customer showed: a request replayed or retried on
    another card is then refused (CARD_MISMATCH) instead of charging the wrong card."""
    if not value:
        raise InvalidArgument(
            "expected_uid", "required: the UID of the card the customer showed (from ReadCard)"
        )
    return value


class MemberCardServicer(pb_grpc.MemberCardServiceServicer):
    def __init__(self, station: Station, max_call_ms: int) -> None:
        self.station = station
        self.max_call_s = max_call_ms / 1000

    async def _run(self, reader: str, request: CardRequest, context: Context) -> Any:
        reader_id = convert.resource_id(reader, "readers", "reader")
        self.station.reader(reader_id)  # NOT_FOUND before the request is judged further
        # None when the client set no deadline (grpc's stubs say float)
        left = cast("float | None", context.time_remaining())
        limit = self.max_call_s if left is None else min(left, self.max_call_s)
        job = self.station.card_job(reader_id, request)
        return await self.station.run_async(reader_id, job, timeout_s=max(limit, 0.0))

    async def ReadCard(self, request: pb.ReadCardRequest, context: Context) -> pb.ReadCardResponse:
        info: CardInfo = await self._run(
            request.reader, ReadCard(expected_uid=_uid(request.expected_uid)), context
        )
        return pb.ReadCardResponse(
            card=member_card(info),
            resolved_request_ids=list(info.resolved),
            repaired=info.repaired,
        )

    async def Debit(self, request: pb.DebitRequest, context: Context) -> pb.DebitResponse:
        debit = Debit(
            request_id=convert.request_id(request.request_id),
            amount=convert.amount(request.amount, "amount"),
            points=request.points if request.HasField("points") else None,
            expected_uid=_expected_uid(request.expected_uid),
            expected_balance=convert.optional_amount(
                request.expected_balance, request.HasField("expected_balance"), "expected_balance"
            ),
        )
        result: OpResult = await self._run(request.reader, debit, context)
        return pb.DebitResponse(result=operation_result(result))

    async def Credit(self, request: pb.CreditRequest, context: Context) -> pb.CreditResponse:
        credit = Credit(
            request_id=convert.request_id(request.request_id),
            amount=convert.amount(request.amount, "amount"),
            bonus=convert.optional_amount(request.bonus, request.HasField("bonus"), "bonus"),
            expected_uid=_expected_uid(request.expected_uid),
            expected_balance=convert.optional_amount(
                request.expected_balance, request.HasField("expected_balance"), "expected_balance"
            ),
        )
        result: OpResult = await self._run(request.reader, credit, context)
        return pb.CreditResponse(result=operation_result(result))

    async def AdjustPoints(
        self, request: pb.AdjustPointsRequest, context: Context
    ) -> pb.AdjustPointsResponse:
        if request.points_delta == 0:
            raise InvalidArgument(
                "points_delta", "must not be zero (positive earns, negative redeems)"
            )
        if request.HasField("expected_balance"):
            convert.amount(request.expected_balance, "expected_balance", allow_zero=True)
        adjust = AdjustPoints(
            request_id=convert.request_id(request.request_id),
            delta=request.points_delta,
            expected_uid=_expected_uid(request.expected_uid),
        )
        result: OpResult = await self._run(request.reader, adjust, context)
        return pb.AdjustPointsResponse(result=operation_result(result))

    async def Refund(self, request: pb.RefundRequest, context: Context) -> pb.RefundResponse:
        refund = Refund(
            request_id=convert.request_id(request.request_id),
            original_request_id=_original(request.original_request_id),
            amount=convert.amount(request.amount, "amount"),
            expected_uid=_expected_uid(request.expected_uid),
        )
        result: OpResult = await self._run(request.reader, refund, context)
        return pb.RefundResponse(result=operation_result(result))

    async def CancelTopUp(
        self, request: pb.CancelTopUpRequest, context: Context
    ) -> pb.CancelTopUpResponse:
        cancel = CancelTopUp(
            request_id=convert.request_id(request.request_id),
            original_request_id=_original(request.original_request_id),
            expected_uid=_expected_uid(request.expected_uid),
        )
        result: OpResult = await self._run(request.reader, cancel, context)
        return pb.CancelTopUpResponse(result=operation_result(result))

    async def GetDaySettlement(
        self, request: pb.GetDaySettlementRequest, context: Context
    ) -> pb.GetDaySettlementResponse:
        return pb.GetDaySettlementResponse(settlement=await day.get(self.station, request))

    async def CloseDay(self, request: pb.CloseDayRequest, context: Context) -> pb.CloseDayResponse:
        return pb.CloseDayResponse(settlement=await day.close(self.station, request))

    async def ExportDaySettlement(
        self, request: pb.ExportDaySettlementRequest, context: Context
    ) -> pb.ExportDaySettlementResponse:
        return await day.export(self.station, request)

    async def PrintDaySettlement(
        self, request: pb.PrintDaySettlementRequest, context: Context
    ) -> pb.PrintDaySettlementResponse:
        return await day.print_slip(self.station, request)

    async def GetOperation(
        self, request: pb.GetOperationRequest, context: Context
    ) -> pb.GetOperationResponse:
        rid = convert.request_id(request.request_id)
        journal = self.station.journal
        # off the event loop: the journal's lock may be held by a reader worker's commit
        record = await asyncio.to_thread(journal.get, rid) if journal is not None else None
        if record is None:
            return pb.GetOperationResponse(
                request_id=rid, state=pb.GetOperationResponse.STATE_NOT_RECORDED
            )
        response = pb.GetOperationResponse(
            request_id=rid,
            state=_STATES.get(record.state, pb.GetOperationResponse.STATE_UNSPECIFIED),
            type=operation_type(record),
            uid=record.uid or "",
            create_time=convert.timestamp(record.created),
            update_time=convert.timestamp(record.updated),
        )
        _describe(response, record)
        if response.HasField("result"):
            response.result.commit_time.CopyFrom(response.update_time)
        if record.op == "membership" and record.state is RequestState.COMMITTED and record.outcome:
            change = MembershipResult.from_outcome(record.outcome)
            response.result.CopyFrom(membership_result(change))
            response.result.commit_time.CopyFrom(response.update_time)
            response.membership.CopyFrom(membership_outcome(change, self.station))
        if (
            journal is not None
            and record.state is RequestState.CLAIMED
            and await asyncio.to_thread(journal.left_behind, rid)
        ):  # a daemon killed before the intent: not applied, and safe to retry
            response.state = pb.GetOperationResponse.STATE_NOT_APPLIED
            response.error_reason = "ABANDONED"
        if record.reverses:
            response.original_request_id = record.reverses
        if record.op in REVERSES.values() and journal is not None:
            await asyncio.to_thread(_reversals, response, record, journal)
        return response

    async def ListPendingOperations(
        self, request: pb.ListPendingOperationsRequest, context: Context
    ) -> pb.ListPendingOperationsResponse:
        if request.page_size < 0:
            raise InvalidArgument("page_size", f"must not be negative, got {request.page_size}")
        size = min(request.page_size or MAX_PAGE, MAX_PAGE)
        start = 0
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidArgument("page_token", "not a token this daemon gave out")
            start = int(request.page_token)
        journal = self.station.journal
        records = await asyncio.to_thread(journal.pending) if journal is not None else []
        if request.uid:
            uid = request.uid.upper()
            records = [r for r in records if r.uid == uid]
        page = records[start : start + size]
        more = start + size < len(records)
        return pb.ListPendingOperationsResponse(
            operations=[_pending(r) for r in page],
            next_page_token=str(start + size) if more else "",
        )


def _original(value: str) -> str:
    if not value:
        raise InvalidArgument(
            "original_request_id", "required: the request_id of the operation to reverse"
        )
    return value


def _describe(into: pb.GetOperationResponse | pb.Reversal, record: RequestRecord) -> None:
    """The outcome of ``record``: its result when committed, its reason when not applied."""
    outcome = record.outcome or {}
    if record.state is RequestState.COMMITTED and "balance_before" in outcome:
        into.result.CopyFrom(operation_result(OpResult.from_outcome(outcome)))
    elif record.state is RequestState.ABORTED:
        into.error_reason = str(outcome.get("reason", outcome.get("error", "")))


def _reversals(response: pb.GetOperationResponse, record: RequestRecord, journal: Journal) -> None:
    """A payment's refunds or a top-up's cancellation, and what is left to reverse."""
    for found in journal.reversals_of(record.request_id):
        item = pb.Reversal(
            request_id=found.request_id,
            type=OPERATION_TYPES.get(found.op, pb.OPERATION_TYPE_UNSPECIFIED),
            state=_STATES.get(found.state, pb.GetOperationResponse.STATE_UNSPECIFIED),
        )
        _describe(item, found)
        response.reversals.append(item)
    if record.state is RequestState.COMMITTED and record.outcome is not None:
        done, _ = reversed_so_far(journal, record.request_id)
        total = int(record.outcome.get("amount", 0))
        left = total - done if record.op == "debit" else (0 if done else total)
        response.amount_left.CopyFrom(convert.money(max(left, 0)))


def _pending(record: RequestRecord) -> pb.PendingOperation:
    """The intent as journalled: ``before``/``after`` hold the card's record state (counter,
    balance, points) and ``after`` the result it would have (its member ID)."""
    before = record.before or {}
    after = record.after or {}
    was = before.get("state", before)
    would = after.get("state", after)
    result = after.get("result") or {}
    return pb.PendingOperation(
        request_id=record.request_id,
        type=operation_type(record),
        uid=record.uid or "",
        member_id=str(result.get("member_id", before.get("member_id", ""))),
        balance_before=convert.money(int(was.get("balance", 0))),
        balance_if_applied=convert.money(int(would.get("balance", 0))),
        points_before=int(was.get("points", 0)),
        points_if_applied=int(would.get("points", 0)),
        create_time=convert.timestamp(record.updated),
    )


def service(station: Station, api: ApiConfig) -> Service:
    return Service(
        pb.DESCRIPTOR.services_by_name["MemberCardService"].full_name,
        frozenset({"pos"}),
        MemberCardServicer(station, api.max_call_ms),
        pb_grpc.add_MemberCardServiceServicer_to_server,
        {
            "technician": frozenset(
                {"GetOperation", "ListPendingOperations", "GetDaySettlement", "ExportDaySettlement"}
            )
        },
    )
