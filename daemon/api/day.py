"""The daily settlement RPCs of ``MemberCardService`` (GetDaySettlement, CloseDay,
ExportDaySettlement, PrintDaySettlement), kept out of :mod:`daemon.api.cards` (the card
operations). Each reads or writes the journal off the event loop: a reader worker's commit may
hold the journal lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from daemon.api import convert
from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as pb
from daemon.errors import ReaderUnavailable
from daemon.settlement import DaySettlement, Settlement, settlement_slip
from daemon.station import Station

__all__ = ["close", "export", "get", "print_slip", "settlement_proto"]


def settlement_proto(day: DaySettlement) -> pb.DaySettlement:
    m = convert.money
    return pb.DaySettlement(
        business_day=convert.date(day.business_day),
        pc=day.pc,
        day_cutoff_hour=day.day_cutoff_hour,
        closed=day.closed_at is not None,
        close_time=convert.timestamp(day.closed_at) if day.closed_at is not None else None,
        top_up_count=day.top_ups,
        top_up_cash=m(day.top_up_cash),
        top_up_bonus=m(day.top_up_bonus),
        payment_count=day.payments,
        payment_amount=m(day.payment_amount),
        refund_count=day.refunds,
        refund_amount=m(day.refund_amount),
        refund_points=day.refund_points,
        cancelled_top_up_count=day.cancelled_top_ups,
        cancelled_top_up_cash=m(day.cancelled_cash),
        cancelled_top_up_bonus=m(day.cancelled_bonus),
        points_earned=day.points_earned,
        points_redeemed=day.points_redeemed,
        cards_issued=day.cards_issued,
        issued_balance=m(day.issued_balance),
        cards_replaced=day.cards_replaced,
        unconfirmed_count=day.unconfirmed,
        pending_count=day.pending,
        net_cash=m(day.net_cash),
        stored_value_change=m(day.stored_value_change),
    )


def _settlement(station: Station) -> Settlement:
    if station.journal is None:
        raise ReaderUnavailable("the station is not running (no journal open)")
    return Settlement(station.journal, station.programme)


def _day(has: bool, value: common_pb2.Date) -> dt.date | None:
    """The requested business day; None (unset): the day operations count in now."""
    return convert.from_date(value, "business_day") if has else None


async def get(station: Station, request: pb.GetDaySettlementRequest) -> pb.DaySettlement:
    day = _day(request.HasField("business_day"), request.business_day)
    return settlement_proto(await asyncio.to_thread(_settlement(station).day, day))


async def close(station: Station, request: pb.CloseDayRequest) -> pb.DaySettlement:
    day = _day(request.HasField("business_day"), request.business_day)
    return settlement_proto(await asyncio.to_thread(_settlement(station).close, day))


async def export(
    station: Station, request: pb.ExportDaySettlementRequest
) -> pb.ExportDaySettlementResponse:
    day = _day(request.HasField("business_day"), request.business_day)
    found = await asyncio.to_thread(_settlement(station).day, day)
    return pb.ExportDaySettlementResponse(csv=found.csv(), settlement=settlement_proto(found))


async def print_slip(
    station: Station, request: pb.PrintDaySettlementRequest
) -> pb.PrintDaySettlementResponse:
    printer = station.printer(convert.resource_id(request.printer, "printers", "printer"))
    day = _day(request.HasField("business_day"), request.business_day)
    found = await asyncio.to_thread(_settlement(station).day, day)
    rid = convert.request_id(request.request_id) if request.request_id else ""
    job = await asyncio.to_thread(printer.submit, settlement_slip(found), rid)
    return pb.PrintDaySettlementResponse(
        print_job=f"printers/{job.printer}/jobs/{job.id}", settlement=settlement_proto(found)
    )
