"""The audit log over the technician socket: what a technician answering a dispute sees."""

from __future__ import annotations

import sqlite3
import time

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from daemon.api.v1 import diagnostics_service_pb2 as d
from daemon.api.v1 import diagnostics_service_pb2_grpc as dg
from daemon.api.v1 import issuing_service_pb2 as i
from daemon.api.v1 import issuing_service_pb2_grpc as ig
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from tests.api.conftest import Api
from tests.api.test_cards import SPEC, UID, cny, reason
from tests.api.test_diagnostics import card_keys, member_on_front


@pytest.fixture
def tech(api: Api) -> dg.DiagnosticsServiceStub:
    return dg.DiagnosticsServiceStub(api.channel("technician"))


def stamp(seconds: float) -> Timestamp:
    out = Timestamp()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def pay(api: Api, request_id: str, fen: int) -> None:
    pos = mg.MemberCardServiceStub(api.channel("pos"))
    pos.Debit(
        m.DebitRequest(reader="readers/front", request_id=request_id, amount=cny(fen),
                       expected_uid=UID),
        timeout=10,
    )  # fmt: skip


def test_value_changes_and_key_uses_are_listed_by_card_kind_and_time(
    api: Api, tech: dg.DiagnosticsServiceStub
) -> None:
    member_on_front(api)
    pay(api, "lunch-1", 1_200)
    between = time.time()
    time.sleep(0.01)
    pay(api, "lunch-2", 800)

    changes = tech.ListAuditEvents(
        d.ListAuditEventsRequest(uid=UID.lower(), events=["value_change"]), timeout=5
    ).events
    assert [(e.request_id, e.detail["op"]) for e in changes] == [
        ("lunch-1", "debit"), ("lunch-2", "debit")
    ]  # fmt: skip
    assert changes[0].detail["amount"] == 1_200
    assert changes[0].sequence < changes[1].sequence
    assert all(e.member_id == SPEC.member_id for e in changes)

    later = tech.ListAuditEvents(
        d.ListAuditEventsRequest(member_id=SPEC.member_id, events=["value_change"],
                                 start_time=stamp(between)),
        timeout=5,
    ).events  # fmt: skip
    assert [e.request_id for e in later] == ["lunch-2"]

    uses = tech.ListAuditEvents(d.ListAuditEventsRequest(events=["key_use"]), timeout=5).events
    assert uses, "every key use is audited"
    text = str(uses).lower()
    assert not any(key.lower() in text for key in card_keys(api))


def test_pages_follow_the_log_and_a_bad_filter_names_its_field(
    api: Api, tech: dg.DiagnosticsServiceStub
) -> None:
    for n in range(5):
        api.station.journal.audit("hotlist", uid=f"0400000{n}", detail={"reason": "lost"})
    first = tech.ListAuditEvents(d.ListAuditEventsRequest(events=["hotlist"], page_size=2))
    assert len(first.events) == 2
    assert first.next_page_token
    rest = tech.ListAuditEvents(
        d.ListAuditEventsRequest(events=["hotlist"], page_size=10, page_token=first.next_page_token)
    )
    assert [e.uid for e in [*first.events, *rest.events]] == [f"0400000{n}" for n in range(5)]
    assert rest.next_page_token == ""

    for bad, field in (
        (d.ListAuditEventsRequest(page_size=5000), "page_size"),
        (d.ListAuditEventsRequest(page_token="abc"), "page_token"),
        (d.ListAuditEventsRequest(events=["Value Change"]), "events"),
        (d.ListAuditEventsRequest(uid="not-hex"), "uid"),
        (d.ListAuditEventsRequest(member_id="12ab"), "member_id"),
        (d.ListAuditEventsRequest(start_time=stamp(100), end_time=stamp(50)), "end_time"),
        (d.ListAuditEventsRequest(end_time=Timestamp(seconds=10, nanos=-1)), "end_time"),
        (d.ListAuditEventsRequest(start_time=Timestamp(seconds=2**40)), "start_time"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            tech.ListAuditEvents(bad, timeout=5)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (err.value.details() or ""), err.value.details()


def test_the_audit_log_is_only_for_technicians(api: Api) -> None:
    pos = dg.DiagnosticsServiceStub(api.channel("pos"))
    with pytest.raises(grpc.RpcError) as err:
        pos.ListAuditEvents(d.ListAuditEventsRequest(), timeout=5)
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert reason(err.value) == "ROLE_NOT_ALLOWED"


def test_permission_refusals_are_audited_without_flooding_the_log(
    api: Api, tech: dg.DiagnosticsServiceStub
) -> None:
    pos_issuing = ig.IssuingServiceStub(api.channel("pos"))
    for _ in range(20):
        with pytest.raises(grpc.RpcError):
            pos_issuing.ListHotlist(i.ListHotlistRequest(), timeout=5)
    deadline = time.monotonic() + 5
    refused: list[d.AuditEvent] = []
    while time.monotonic() < deadline and not refused:
        refused = list(
            tech.ListAuditEvents(d.ListAuditEventsRequest(events=["permission_refused"])).events
        )
        time.sleep(0.05)
    assert len(refused) == 1, "one row per role and method and minute, not one per call"
    detail = refused[0].detail
    assert (detail["role"], detail["reason"]) == ("pos", "ROLE_NOT_ALLOWED")
    assert detail["method"] == "carddaemon.v1.IssuingService/ListHotlist"


def test_card_history_takes_a_time_window(api: Api, tech: dg.DiagnosticsServiceStub) -> None:
    member_on_front(api)
    pay(api, "before", 100)
    between = time.time()
    time.sleep(0.01)
    pay(api, "after", 200)
    window = tech.GetCardHistory(
        d.GetCardHistoryRequest(uid=UID, start_time=stamp(between)), timeout=5
    )
    assert "after" in [e.request_id for e in window.entries]
    assert "before" not in [e.request_id for e in window.entries]


def test_rows_cannot_be_changed_or_removed(api: Api) -> None:
    api.station.journal.audit("hotlist", uid="04000001", detail={"reason": "lost"})
    db = sqlite3.connect(str(api.station.journal.path))
    try:
        for statement in ("UPDATE audit SET event='nothing'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()


def test_card_history_names_a_refund_as_one(api: Api, tech: dg.DiagnosticsServiceStub) -> None:
    member_on_front(api)
    pay(api, "sale-7", 1_000)
    pos = mg.MemberCardServiceStub(api.channel("pos"))
    pos.Refund(
        m.RefundRequest(reader="readers/front", request_id="refund-7", expected_uid=UID,
                        original_request_id="sale-7", amount=cny(400)),
        timeout=10,
    )  # fmt: skip
    entries = tech.GetCardHistory(d.GetCardHistoryRequest(uid=UID), timeout=5).entries
    types = {e.request_id: e.type for e in entries if e.event == "value_change"}
    assert types == {"sale-7": m.OPERATION_TYPE_DEBIT, "refund-7": m.OPERATION_TYPE_REFUND}
