"""Refunds, cancelled top-ups and the daily settlement over the POS socket (real gRPC clients
of a real station on the simulated store)."""

from __future__ import annotations

import csv
import io

import grpc
import pytest

from daemon.api.v1 import common_pb2
from daemon.api.v1 import diagnostics_service_pb2 as d
from daemon.api.v1 import diagnostics_service_pb2_grpc as dg
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import printer_service_pb2 as p
from daemon.api.v1 import printer_service_pb2_grpc as pg
from daemon.membercard.requests import IssueCard, IssueSpec
from sim.backend import SimBackend
from sim.store import transport_card
from tests.api.conftest import Api
from tests.api.test_cards import UID, cny, member_on_front, reason

READER = "readers/front"


@pytest.fixture
def pos(api: Api) -> mg.MemberCardServiceStub:
    return mg.MemberCardServiceStub(api.channel("pos"))


def refund(rid: str, original: str, fen: int, uid: str = UID) -> m.RefundRequest:
    return m.RefundRequest(
        reader=READER, request_id=rid, expected_uid=uid, original_request_id=original,
        amount=cny(fen),
    )  # fmt: skip


def refused(call: object, request: object, code: grpc.StatusCode, why: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=10)  # type: ignore[operator]
    err = caught.value
    assert err.code() is code, err.details()
    assert reason(err) == why
    return str(err.details())


def test_a_refund_and_a_cancel_over_the_api_are_linked_to_their_originals(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)  # 500.00 on a 金卡 (3 points per 100 yuan)
    pos.Debit(
        m.DebitRequest(reader=READER, request_id="sale", expected_uid=UID, amount=cny(30_000)),
        timeout=10,
    )
    back = pos.Refund(refund("ret-1", "sale", 10_000), timeout=10).result
    assert back.type == m.OPERATION_TYPE_REFUND
    assert (back.amount, back.points_delta, back.balance_after) == (cny(10_000), -3, cny(30_000))
    assert back.original_request_id == "sale"
    top = m.CreditRequest(reader=READER, request_id="top", expected_uid=UID, amount=cny(100_000))
    assert pos.Credit(top, timeout=10).result.bonus.amount_fen >= 0
    undo = m.CancelTopUpRequest(
        reader=READER, request_id="undo", expected_uid=UID, original_request_id="top"
    )
    cancelled = pos.CancelTopUp(undo, timeout=10).result
    assert cancelled.type == m.OPERATION_TYPE_CANCEL_TOP_UP
    assert cancelled.balance_after == cny(30_000)
    sale = pos.GetOperation(m.GetOperationRequest(request_id="sale"), timeout=5)
    assert [(r.request_id, r.type, r.state) for r in sale.reversals] == [
        ("ret-1", m.OPERATION_TYPE_REFUND, m.GetOperationResponse.STATE_COMMITTED)
    ]
    assert sale.reversals[0].result.amount == cny(10_000)
    assert sale.amount_left == cny(20_000)
    ret = pos.GetOperation(m.GetOperationRequest(request_id="ret-1"), timeout=5)
    assert ret.original_request_id == "sale"
    assert ret.type == m.OPERATION_TYPE_REFUND
    topped = pos.GetOperation(m.GetOperationRequest(request_id="top"), timeout=5)
    assert [r.request_id for r in topped.reversals] == ["undo"]
    assert topped.amount_left == cny(0)
    # the card's history shows the chain: each reversal names what it reversed
    tech = dg.DiagnosticsServiceStub(api.channel("technician"))
    history = tech.GetCardHistory(d.GetCardHistoryRequest(uid=UID), timeout=5).entries
    chain = {
        e.request_id: (e.result.type, e.result.original_request_id)
        for e in history
        if e.event == "value_change"
    }
    assert chain["ret-1"] == (m.OPERATION_TYPE_REFUND, "sale")
    assert chain["undo"] == (m.OPERATION_TYPE_CANCEL_TOP_UP, "top")
    assert chain["sale"] == (m.OPERATION_TYPE_DEBIT, "")


def test_every_bad_reversal_is_its_status_and_reason_naming_what_is_left(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)
    pos.Debit(
        m.DebitRequest(reader=READER, request_id="sale", expected_uid=UID, amount=cny(20_000)),
        timeout=10,
    )
    pos.Credit(
        m.CreditRequest(reader=READER, request_id="top", expected_uid=UID, amount=cny(5_000)),
        timeout=10,
    )
    fp, nf, bad = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND, grpc.StatusCode
    text = refused(pos.Refund, refund("a", "nope", 100), nf, "ORIGINAL_NOT_FOUND")
    assert "nope" in text
    refused(pos.Refund, refund("b", "top", 100), fp, "ORIGINAL_NOT_REVERSIBLE")
    text = refused(pos.Refund, refund("c", "sale", 20_001), fp, "REFUND_EXCEEDS_PAYMENT")
    assert "20000 fen left" in text
    pos.Refund(refund("d", "sale", 20_000), timeout=10)
    text = refused(pos.Refund, refund("e", "sale", 1), fp, "ALREADY_REVERSED")
    assert "0 fen left" in text
    refused(pos.Refund, refund("f", "sale", 1, uid="04000001"), fp, "CARD_MISMATCH")
    no_original = m.RefundRequest(reader=READER, request_id="g", expected_uid=UID, amount=cny(1))
    refused(pos.Refund, no_original, bad.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    zero = refund("h", "sale", 0)
    refused(pos.Refund, zero, bad.INVALID_ARGUMENT, "INVALID_AMOUNT")
    cancel = m.CancelTopUpRequest(
        reader=READER, request_id="i", expected_uid=UID, original_request_id="sale"
    )
    refused(pos.CancelTopUp, cancel, fp, "ORIGINAL_NOT_REVERSIBLE")
    failed = pos.GetOperation(m.GetOperationRequest(request_id="c"), timeout=5)
    assert failed.state == m.GetOperationResponse.STATE_NOT_APPLIED
    assert failed.error_reason == "REFUND_EXCEEDS_PAYMENT"
    read = pos.ReadCard(m.ReadCardRequest(reader=READER), timeout=10)
    assert read.card.balance == cny(50_000 + 5_000)  # only the sale, its refund and the top-up


def test_the_day_is_settled_closed_exported_and_printed_over_the_api(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    tech = mg.MemberCardServiceStub(api.channel("technician"))
    before = tech.GetDaySettlement(m.GetDaySettlementRequest(), timeout=5).settlement
    member_on_front(api)
    pos.Credit(
        m.CreditRequest(reader=READER, request_id="top", expected_uid=UID, amount=cny(10_000)),
        timeout=10,
    )
    pos.Debit(
        m.DebitRequest(reader=READER, request_id="sale", expected_uid=UID, amount=cny(2_500)),
        timeout=10,
    )
    day = tech.GetDaySettlement(m.GetDaySettlementRequest(), timeout=5).settlement
    assert (day.top_up_count, day.top_up_cash, day.payment_amount) == (1, cny(10_000), cny(2_500))
    assert (day.cards_issued - before.cards_issued, day.closed) == (1, False)
    exported = tech.ExportDaySettlement(m.ExportDaySettlementRequest(), timeout=5)
    (row,) = list(csv.DictReader(io.StringIO(exported.csv)))
    assert int(row["payment_amount"]) == 2_500
    refused(
        tech.CloseDay, m.CloseDayRequest(), grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"
    )
    printed = pos.PrintDaySettlement(
        m.PrintDaySettlementRequest(printer="printers/receipt"), timeout=10
    )
    job = pg.PrinterServiceStub(api.channel("pos")).GetPrintJob(
        p.GetPrintJobRequest(name=printed.print_job), timeout=5
    )
    assert job.job.name == printed.print_job
    closed = pos.CloseDay(m.CloseDayRequest(business_day=day.business_day), timeout=5).settlement
    assert closed.closed
    assert closed.net_cash == cny(10_000)
    again = m.CloseDayRequest(business_day=day.business_day)
    text = refused(pos.CloseDay, again, grpc.StatusCode.FAILED_PRECONDITION, "DAY_ALREADY_CLOSED")
    assert "closed" in text
    bad_day = m.CloseDayRequest(business_day=common_pb2.Date(year=2026, month=2, day=30))
    refused(pos.CloseDay, bad_day, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    frozen = pos.GetDaySettlement(
        m.GetDaySettlementRequest(business_day=day.business_day), timeout=5
    ).settlement
    assert frozen == closed
    unknown = m.PrintDaySettlementRequest(printer="printers/nowhere")
    refused(pos.PrintDaySettlement, unknown, grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND")


def test_reversals_refused_for_the_card_the_state_the_window_and_the_funds(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)  # 500.00
    fp = grpc.StatusCode.FAILED_PRECONDITION
    too_much = m.DebitRequest(reader=READER, request_id="big", expected_uid=UID, amount=cny(10**7))
    refused(pos.Debit, too_much, fp, "INSUFFICIENT_BALANCE")
    text = refused(pos.Refund, refund("r1", "big", 100), fp, "ORIGINAL_NOT_COMMITTED")
    assert "not applied" in text
    for rid, fen in (("sale", 1_000), ("old", 1_000)):
        pos.Debit(
            m.DebitRequest(reader=READER, request_id=rid, expected_uid=UID, amount=cny(fen)),
            timeout=10,
        )
    journal = api.station.journal
    assert journal is not None
    with journal._tx() as db:  # a payment made 40 days ago (refund_days is 30)
        db.execute("UPDATE requests SET updated=updated-? WHERE request_id='old'", (40 * 86400,))
    text = refused(pos.Refund, refund("r2", "old", 100), fp, "REVERSAL_WINDOW_CLOSED")
    assert "1000 fen left" in text
    with journal.claim("lost", "debit", {"amount": 100}):  # a sale whose card never came back
        journal.record_intent("lost", "04000099", {"state": {}}, {"state": {}})
    text = refused(pos.Refund, refund("r4", "lost", 100), fp, "ORIGINAL_NOT_COMMITTED")
    assert "PENDING" in text
    late = m.CreditRequest(reader=READER, request_id="late", expected_uid=UID, amount=cny(100))
    pos.Credit(late, timeout=10)
    with journal._tx() as db:  # a top-up of two days ago: another business day
        db.execute("UPDATE requests SET updated=updated-? WHERE request_id='late'", (2 * 86400,))
    undo_late = m.CancelTopUpRequest(
        reader=READER, request_id="undo-late", expected_uid=UID, original_request_id="late"
    )
    text = refused(pos.CancelTopUp, undo_late, fp, "REVERSAL_WINDOW_CLOSED")
    assert "cancel_window" in text
    top = m.CreditRequest(reader=READER, request_id="top", expected_uid=UID, amount=cny(20_000))
    pos.Credit(top, timeout=10)
    spend = m.DebitRequest(reader=READER, request_id="spend", expected_uid=UID, amount=cny(60_000))
    pos.Debit(spend, timeout=10)
    undo = m.CancelTopUpRequest(
        reader=READER, request_id="undo", expected_uid=UID, original_request_id="top"
    )
    text = refused(pos.CancelTopUp, undo, fp, "TOPUP_SPENT")
    assert "20000 fen left" in text
    # another member's card on the reader: the payment was made on the first one
    other = "04B1C2D3"
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    sim = backend.reader(api.station.reader("front").name)
    with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
        sim.remove()
        sim.insert(transport_card(bytes.fromhex(other)))
        seen.wait_for(lambda e: True, 10)
    api.station.card("front", IssueCard(IssueSpec("8860000000999", tier=1), "issue-other"))
    text = refused(pos.Refund, refund("r3", "sale", 100, uid=other), fp, "REVERSAL_CARD_MISMATCH")
    assert UID in text
    assert other in text
