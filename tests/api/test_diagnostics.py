"""DiagnosticsService over the technician socket: probe, dump, self-test, trace, history."""

from __future__ import annotations

import grpc
import pytest

from daemon.api.v1 import diagnostics_service_pb2 as d
from daemon.api.v1 import diagnostics_service_pb2_grpc as dg
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.membercard.layout import KEY_GROUP_APP, KEY_GROUP_MAD
from daemon.membercard.requests import IssueCard
from tests.api.conftest import Api
from tests.api.test_cards import SPEC, UID, cny, reason
from tests.api.test_issuing import blank, present


@pytest.fixture
def tech(api: Api) -> dg.DiagnosticsServiceStub:
    return dg.DiagnosticsServiceStub(api.channel("technician"))


def member_on_front(api: Api) -> None:
    present(api, "front", blank(UID))
    api.station.card("front", IssueCard(SPEC, "issue-1"))


def card_keys(api: Api) -> list[str]:
    """Every key the keystore derives for the card, as hex (upper and lower case)."""
    uid = bytes.fromhex(UID)
    keys = [
        api.station.keystore.card_key(uid, sector_group=group, key_type=kt).reveal().hex()
        for group in (KEY_GROUP_MAD, KEY_GROUP_APP)
        for kt in ("A", "B")
    ]
    return [k for key in keys for k in (key, key.upper())]


def no_key_in(api: Api, message: object) -> None:
    text = str(message)
    raw = message.SerializeToString()  # type: ignore[attr-defined]
    for key in card_keys(api):
        assert key not in text
        assert bytes.fromhex(key) not in raw


def test_probe_and_dump_of_a_member_card_never_show_a_key(
    api: Api, tech: dg.DiagnosticsServiceStub
) -> None:
    member_on_front(api)
    probe = tech.ProbeCard(d.ProbeCardRequest(reader="readers/front", latency_rounds=5), timeout=10)
    assert (probe.reader, probe.card.uid, probe.dialect) == ("readers/front", UID, "acr1252u")
    assert probe.latency.rounds == 5
    assert probe.block0
    no_key_in(api, probe)
    dump = tech.DumpCard(d.DumpCardRequest(reader="front", expected_uid=UID), timeout=20)
    no_key_in(api, dump)
    assert [s.sector for s in dump.sectors] == list(range(16))
    assert all(s.readable for s in dump.sectors)
    assert dump.sectors[1].key_used.startswith("diversified key A (group 1")
    assert dump.sectors[0].key_used == "MAD key A"
    assert dump.sectors[5].key_used == "transport key A"
    purse = dump.sectors[3]
    assert purse.role == "purse and header"
    assert purse.access_bits_valid
    values = [b for b in purse.blocks if b.kind == d.BLOCK_KIND_VALUE]
    assert [(b.block, b.value) for b in values] == [(12, 50_000), (13, 50_000)]
    for sector in dump.sectors:
        trailer = sector.blocks[-1]
        assert trailer.kind == d.BLOCK_KIND_TRAILER
        assert trailer.keys_hidden
        assert trailer.data[:6] == bytes(6)
        assert trailer.data[10:] == bytes(6)
        assert trailer.access_bits
    assert dump.member_card.member_id == SPEC.member_id
    assert dump.member_card.balance == cny(50_000)
    some = tech.DumpCard(d.DumpCardRequest(reader="front", sectors=[3, 1]), timeout=20)
    assert [s.sector for s in some.sectors] == [3, 1]


def test_reader_self_test_and_apdu_trace_with_keys_masked(
    api: Api, tech: dg.DiagnosticsServiceStub
) -> None:
    member_on_front(api)
    tested = tech.TestReader(d.TestReaderRequest(reader="front", latency_rounds=3), timeout=10)
    assert tested.passed, tested.checks
    assert [c.name for c in tested.checks] == ["firmware", "field", "uid"]
    assert tested.latency.rounds == 3
    mg.MemberCardServiceStub(api.channel("pos")).ReadCard(
        m.ReadCardRequest(reader="front"), timeout=10
    )
    trace = tech.GetApduTrace(d.GetApduTraceRequest(reader="front", limit=1000), timeout=5)
    assert trace.total >= len(trace.exchanges) > 0
    indexes = [e.index for e in trace.exchanges]
    assert indexes == sorted(indexes)
    loads = [e for e in trace.exchanges if e.command_hex.startswith("FF82")]
    assert loads, [e.command_hex for e in trace.exchanges]
    assert all("**" in e.command_hex for e in loads)
    assert all(e.status_word == 0x9000 for e in loads)
    no_key_in(api, trace)
    two = tech.GetApduTrace(d.GetApduTraceRequest(reader="front", limit=2), timeout=5)
    assert [e.index for e in two.exchanges] == indexes[-2:]


def test_card_history_after_a_debit(api: Api, tech: dg.DiagnosticsServiceStub) -> None:
    member_on_front(api)
    mg.MemberCardServiceStub(api.channel("pos")).Debit(
        m.DebitRequest(reader="front", request_id="sale-1", expected_uid=UID, amount=cny(1_000)),
        timeout=10,
    )
    history = tech.GetCardHistory(d.GetCardHistoryRequest(uid=UID.lower()), timeout=5)
    assert history.entries[0].request_id == "sale-1"
    assert history.entries[0].type == m.OPERATION_TYPE_DEBIT
    assert history.entries[0].event == "value_change"
    assert history.entries[0].result.balance_after == cny(49_000)
    assert "issue" in [e.event for e in history.entries]
    by_member = tech.GetCardHistory(
        d.GetCardHistoryRequest(member_id=SPEC.member_id, page_size=1), timeout=5
    )
    assert [e.request_id for e in by_member.entries] == ["sale-1"]
    assert by_member.next_page_token
    rest = tech.GetCardHistory(
        d.GetCardHistoryRequest(member_id=SPEC.member_id, page_token=by_member.next_page_token),
        timeout=5,
    )
    assert len(rest.entries) == len(history.entries) - 1


BAD = [
    ("ProbeCard", d.ProbeCardRequest(), "reader", "INVALID_ARGUMENT"),
    ("ProbeCard", d.ProbeCardRequest(reader="front", latency_rounds=-1), "latency_rounds",
     "INVALID_ARGUMENT"),
    ("ProbeCard", d.ProbeCardRequest(reader="front", latency_rounds=1001), "latency_rounds",
     "INVALID_ARGUMENT"),
    ("ProbeCard", d.ProbeCardRequest(reader="readers/kitchen"), "readers/kitchen",
     "DEVICE_NOT_FOUND"),
    ("DumpCard", d.DumpCardRequest(reader="front", sectors=[99]), "sectors", "INVALID_ARGUMENT"),
    ("DumpCard", d.DumpCardRequest(reader="front", sectors=[1, 1]), "sectors",
     "INVALID_ARGUMENT"),
    ("DumpCard", d.DumpCardRequest(reader="front", expected_uid="nothex"), "expected_uid",
     "INVALID_ARGUMENT"),
    ("TestReader", d.TestReaderRequest(reader="a/b/c"), "reader", "INVALID_ARGUMENT"),
    ("GetApduTrace", d.GetApduTraceRequest(reader="front", limit=-1), "limit",
     "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(), "uid", "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(uid=UID, member_id="1"), "uid",
     "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(uid="04"), "uid", "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(member_id="abc"), "member_id",
     "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(member_id="123"), "123", "MEMBER_NOT_FOUND"),
    ("GetCardHistory", d.GetCardHistoryRequest(uid=UID, page_size=-1), "page_size",
     "INVALID_ARGUMENT"),
    ("GetCardHistory", d.GetCardHistoryRequest(uid=UID, page_token="x"), "page_token",
     "INVALID_ARGUMENT"),
]  # fmt: skip


@pytest.mark.parametrize(("rpc", "request_", "field", "code"), BAD)
def test_bad_fields_are_named_and_the_daemon_keeps_serving(
    api: Api, tech: dg.DiagnosticsServiceStub, rpc: str, request_: object, field: str, code: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        getattr(tech, rpc)(request_, timeout=10)
    assert reason(err.value) == code, err.value.details()
    assert field in (err.value.details() or "")
    assert tech.GetApduTrace(d.GetApduTraceRequest(reader="front"), timeout=5) is not None


def test_no_card_and_gen2_outside_policy(api: Api, tech: dg.DiagnosticsServiceStub) -> None:
    present(api, "front", None)
    with pytest.raises(grpc.RpcError) as err:
        tech.ProbeCard(d.ProbeCardRequest(reader="front"), timeout=10)
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "CARD_ABSENT",
    )  # fmt: skip
    tested = tech.TestReader(d.TestReaderRequest(reader="front"), timeout=10)
    assert not tested.passed
    assert not tested.HasField("latency")
    api.station.run("front", lambda ctx: None)  # the worker drops its failed job (leak check)


def test_other_roles_may_not_diagnose(api: Api) -> None:
    for role in ("pos", "issuer"):
        with pytest.raises(grpc.RpcError) as err:
            dg.DiagnosticsServiceStub(api.channel(role)).GetApduTrace(
                d.GetApduTraceRequest(reader="front"), timeout=5
            )
        assert (err.value.code(), reason(err.value)) == (
            grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED",
        )  # fmt: skip
