"""MemberCardService over the POS socket: a till's whole day, through real gRPC clients."""

from __future__ import annotations

import datetime as dt
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.membercard.requests import IssueCard, IssueSpec
from sim.backend import SimBackend
from sim.store import transport_card
from tests.api.conftest import Api

UID = "04A7E3C2"
SPEC = IssueSpec("8860123403721", tier=2, valid_until=dt.date(2030, 12, 31), balance=50_000)


def cny(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code="CNY", amount_fen=fen)


def reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, err
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "carddaemon"
    return str(info.reason)


def member_on_front(api: Api) -> None:
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
        backend.reader(api.station.reader("front").name).insert(transport_card(bytes.fromhex(UID)))
        seen.wait_for(lambda e: True, 10)
    api.station.card("front", IssueCard(SPEC, "issue-1"))


@pytest.fixture
def pos(api: Api) -> mg.MemberCardServiceStub:
    return mg.MemberCardServiceStub(api.channel("pos"))


def test_read_then_pay_then_retry_returns_the_recorded_outcome(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)
    read = pos.ReadCard(
        m.ReadCardRequest(reader="readers/front", expected_uid=UID.lower()), timeout=10
    )
    assert (read.card.member_id, read.card.tier_name, read.card.price_rate_bp) == (
        "8860123403721",
        "金卡",
        8500,
    )
    assert read.card.balance == cny(50_000)
    sale = m.DebitRequest(
        expected_uid=UID, reader="readers/front", request_id="sale-1", amount=cny(11_165)
    )
    paid = pos.Debit(sale, timeout=10).result
    assert (paid.balance_before, paid.balance_after, paid.points_delta) == (
        cny(50_000),
        cny(38_835),
        3,
    )
    assert not paid.replayed
    again = pos.Debit(sale, timeout=10).result
    assert again.replayed
    assert again.balance_after == cny(38_835)
    op = pos.GetOperation(m.GetOperationRequest(request_id="sale-1"), timeout=5)
    assert op.state == m.GetOperationResponse.STATE_COMMITTED
    assert op.result.balance_after == cny(38_835)


def test_a_stale_expected_balance_is_aborted_and_nothing_is_charged(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)
    pos.Debit(
        m.DebitRequest(expected_uid=UID, reader="front", request_id="s1", amount=cny(1_000)),
        timeout=10,
    )
    stale = m.DebitRequest(
        expected_uid=UID,
        reader="front",
        request_id="s2",
        amount=cny(1_000),
        expected_balance=cny(50_000),
    )
    with pytest.raises(grpc.RpcError) as err:
        pos.Debit(stale, timeout=10)
    assert err.value.code() is grpc.StatusCode.ABORTED
    assert reason(err.value) == "BALANCE_CHANGED"
    read = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    assert read.card.balance == cny(49_000)


def test_a_card_pulled_mid_debit_is_unconfirmed_then_settled(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    reader = backend.reader(api.station.reader("front").name)
    card = reader.card
    reader.faults.arm()
    reader.faults.remove_after(9)
    with pytest.raises(grpc.RpcError) as err:
        pos.Debit(
            m.DebitRequest(
                expected_uid=UID, reader="front", request_id="sale-9", amount=cny(2_000)
            ),
            timeout=10,
        )
    reader.faults.clear()
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert reason(err.value) == "WRITE_UNCONFIRMED"
    assert "GetOperation" in (err.value.details() or "")
    op = pos.GetOperation(m.GetOperationRequest(request_id="sale-9"), timeout=5)
    assert op.state == m.GetOperationResponse.STATE_PENDING
    pending = pos.ListPendingOperations(m.ListPendingOperationsRequest(), timeout=5)
    assert [p.request_id for p in pending.operations] == ["sale-9"]
    with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
        reader.insert(card)  # type: ignore[arg-type]
        seen.wait_for(lambda e: not e.snapshot, 10)
    read = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    assert "sale-9" in read.resolved_request_ids
    settled = pos.GetOperation(m.GetOperationRequest(request_id="sale-9"), timeout=5)
    assert settled.state in (
        m.GetOperationResponse.STATE_COMMITTED,
        m.GetOperationResponse.STATE_NOT_APPLIED,
    )
    charged = settled.state == m.GetOperationResponse.STATE_COMMITTED
    assert read.card.balance == cny(48_000 if charged else 50_000)


@pytest.mark.parametrize(
    ("request_", "field", "code"),
    [
        (
            m.DebitRequest(expected_uid=UID, reader="front", amount=cny(100)),
            "request_id",
            "INVALID_ARGUMENT",
        ),
        (
            m.DebitRequest(reader="front", request_id="a", amount=cny(100)),
            "expected_uid",
            "INVALID_ARGUMENT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="front", request_id="x" * 65, amount=cny(100)),
            "request_id",
            "INVALID_ARGUMENT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="front", request_id="a"),
            "amount.currency_code",
            "INVALID_AMOUNT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="front", request_id="a", amount=cny(0)),
            "amount.amount_fen",
            "INVALID_AMOUNT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="front", request_id="a", amount=cny(-5)),
            "amount.amount_fen",
            "INVALID_AMOUNT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="lanes/1", request_id="a", amount=cny(5)),
            "reader",
            "INVALID_ARGUMENT",
        ),
        (
            m.DebitRequest(expected_uid=UID, reader="front", request_id="a", amount=cny(2**40)),
            "amount",
            "INVALID_AMOUNT",  # beyond what a card can ever hold
        ),
    ],
)
def test_bad_debit_fields_are_named(
    api: Api, pos: mg.MemberCardServiceStub, request_: m.DebitRequest, field: str, code: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        pos.Debit(request_, timeout=10)
    assert reason(err.value) == code
    assert field in (err.value.details() or "")


def test_an_unknown_reader_is_not_found_and_lists_the_readers(
    pos: mg.MemberCardServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        pos.ReadCard(m.ReadCardRequest(reader="readers/kitchen"), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert reason(err.value) == "DEVICE_NOT_FOUND"
    assert "readers/front" in (err.value.details() or "")


def test_the_issuer_socket_cannot_debit_and_the_technician_may_only_look(api: Api) -> None:
    sale = m.DebitRequest(expected_uid=UID, reader="front", request_id="s", amount=cny(100))
    for role in ("issuer", "technician"):
        with pytest.raises(grpc.RpcError) as err:
            mg.MemberCardServiceStub(api.channel(role)).Debit(sale, timeout=5)
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert reason(err.value) == "ROLE_NOT_ALLOWED"
        assert role in (err.value.details() or "")
    tech = mg.MemberCardServiceStub(api.channel("technician"))
    op = tech.GetOperation(m.GetOperationRequest(request_id="never"), timeout=5)
    assert op.state == m.GetOperationResponse.STATE_NOT_RECORDED


def test_a_call_cancelled_mid_debit_completes_or_is_recorded_never_half_done(
    api: Api, pos: mg.MemberCardServiceStub
) -> None:
    member_on_front(api)
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    reader = backend.reader(api.station.reader("front").name)
    reader.realtime = True  # the reader's real air time: a debit takes a few tens of ms
    sale = m.DebitRequest(expected_uid=UID, reader="front", request_id="gone", amount=cny(700))
    call = pos.Debit.future(sale, timeout=10)
    time.sleep(0.02)  # the job has started on the reader worker
    call.cancel()
    deadline = time.monotonic() + 10
    while True:  # the worker finishes the job whatever the client did
        op = pos.GetOperation(m.GetOperationRequest(request_id="gone"), timeout=5)
        running = (m.GetOperationResponse.STATE_IN_PROGRESS, m.GetOperationResponse.STATE_PENDING)
        if op.state not in running:  # PENDING here: written, not yet verified
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    reader.realtime = False
    read = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    if op.state == m.GetOperationResponse.STATE_COMMITTED:
        assert read.card.balance == cny(49_300)
    else:  # cancelled before it started: nothing was written, the id may be used again
        assert op.state == m.GetOperationResponse.STATE_NOT_RECORDED
        assert read.card.balance == cny(50_000)
    retried = pos.Debit(sale, timeout=10).result  # the cashier presses pay again
    assert retried.balance_after == cny(49_300)  # charged exactly once either way


def test_an_expired_deadline_writes_nothing(api: Api, pos: mg.MemberCardServiceStub) -> None:
    member_on_front(api)
    sale = m.DebitRequest(expected_uid=UID, reader="front", request_id="late", amount=cny(100))
    with pytest.raises(grpc.RpcError) as err:
        pos.Debit(sale, timeout=0.000_001)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.2)
    read = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    op = pos.GetOperation(m.GetOperationRequest(request_id="late"), timeout=5)
    if op.state == m.GetOperationResponse.STATE_COMMITTED:  # it reached the card in time
        assert read.card.balance == cny(49_900)
    else:
        assert read.card.balance == cny(50_000)
