"""IssuingService over the issuer socket: issue, verify, erase, replace, batch, the hotlist."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, cast

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from daemon.api.v1 import common_pb2
from daemon.api.v1 import issuing_service_pb2 as i
from daemon.api.v1 import issuing_service_pb2_grpc as ig
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from sim.backend import SimBackend
from sim.card import SimCard
from sim.store import transport_card
from tests.api.conftest import Api
from tests.api.test_cards import cny, reason

UID = "04A7E3C2"
NEW = "04B1C2D3"


def present(api: Api, reader: str, card: SimCard | None) -> None:
    """Lay ``card`` on ``reader`` (None: take the card away) and wait until the station saw it."""
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    sim = backend.reader(api.station.reader(reader).name)
    source = f"readers/{reader}"
    if sim.card is not None:
        with api.station.hub.subscribe(sources=source, kinds="card_removed") as seen:
            sim.remove()
            seen.wait_for(lambda e: not e.snapshot, 10)
    if card is not None:
        with api.station.hub.subscribe(sources=source, kinds="card_present") as seen:
            sim.insert(card)
            seen.wait_for(lambda e: not e.snapshot, 10)


def blank(uid: str) -> SimCard:
    return transport_card(bytes.fromhex(uid))


def spec(member: str = "8860000000001", fen: int = 20_000, points: int = 7) -> i.CardSpec:
    return i.CardSpec(
        member_id=member,
        tier=1,
        valid_until=common_pb2.Date(year=2031, month=6, day=30),
        opening_balance=cny(fen),
        opening_points=points,
    )


@pytest.fixture
def issuer(api: Api) -> ig.IssuingServiceStub:
    return ig.IssuingServiceStub(api.channel("issuer"))


def issue(issuer: ig.IssuingServiceStub, rid: str = "issue-1", **fields: object) -> i.IssuedCard:
    request = i.IssueCardRequest(reader="readers/front", request_id=rid, spec=spec())
    for key, value in fields.items():
        setattr(request, key, value)
    return issuer.IssueCard(request, timeout=20).card


def test_issue_a_blank_card_then_the_pos_reads_it_back(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", blank(UID))
    card = issue(issuer, expected_uid=UID.lower())
    assert (card.uid, card.member_id, card.balance, card.points, card.replayed) == (
        UID, "8860000000001", cny(20_000), 7, False,
    )  # fmt: skip
    assert issue(issuer, expected_uid=UID).replayed  # a retry changes nothing
    read = mg.MemberCardServiceStub(api.channel("pos")).ReadCard(
        m.ReadCardRequest(reader="readers/front"), timeout=10
    )
    assert (read.card.member_id, read.card.balance, read.card.points) == (
        "8860000000001", cny(20_000), 7,
    )  # fmt: skip
    assert (read.card.valid_until.year, read.card.tier) == (2031, 1)
    verified = issuer.VerifyCard(i.VerifyCardRequest(reader="front"), timeout=10)
    assert verified.valid, verified.findings
    assert not verified.blank
    assert verified.card.balance == cny(20_000)


def test_verify_says_blank_and_erase_puts_a_card_back_to_transport_state(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", blank(UID))
    fresh = issuer.VerifyCard(i.VerifyCardRequest(reader="front"), timeout=10)
    assert fresh.blank
    assert not fresh.valid
    issue(issuer)
    erase = i.EraseCardRequest(reader="front", request_id="erase-1", expected_uid=UID)
    with pytest.raises(grpc.RpcError) as err:
        issuer.EraseCard(erase, timeout=20)  # still holds value
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT",
    )  # fmt: skip
    assert "force" in (err.value.details() or "")
    erase.request_id, erase.force = "erase-2", True
    done = issuer.EraseCard(erase, timeout=20)
    assert (done.uid, done.replayed) == (UID, False)
    assert issuer.EraseCard(erase, timeout=20).replayed
    assert issuer.VerifyCard(i.VerifyCardRequest(reader="front"), timeout=10).blank
    other = i.EraseCardRequest(reader="front", request_id="erase-3", expected_uid=NEW)
    with pytest.raises(grpc.RpcError) as err:
        issuer.EraseCard(other, timeout=20)
    assert reason(err.value) == "CARD_MISMATCH"


def test_replace_a_lost_card_old_one_refused_new_one_holds_the_balance(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", blank(UID))
    issue(issuer)
    pos = mg.MemberCardServiceStub(api.channel("pos"))
    pos.Debit(
        m.DebitRequest(reader="front", request_id="sale-1", expected_uid=UID, amount=cny(5_000)),
        timeout=10,
    )
    lost = api.station.backend.reader(api.station.reader("front").name).card  # type: ignore[union-attr]
    present(api, "back", blank(NEW))
    replaced = issuer.ReplaceCard(
        i.ReplaceCardRequest(reader="back", request_id="rep-1", old_uid=UID, expected_uid=NEW),
        timeout=20,
    )
    assert (replaced.old_uid, replaced.card.uid, replaced.card.balance) == (UID, NEW, cny(15_000))
    assert (
        replaced.card.points
        == 7 + pos.ReadCard(m.ReadCardRequest(reader="back"), timeout=10).card.points - 7
    )  # the points moved too (whatever the debit earned)
    assert lost is not None
    with pytest.raises(grpc.RpcError) as err:
        pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "CARD_HOTLISTED",
    )  # fmt: skip
    # the front worker keeps its last (failed) job until its next one: let it drop it, so the
    # MemberCardService error does not keep the stopped server alive for the leak check
    api.station.run("front", lambda ctx: None)
    new = pos.ReadCard(m.ReadCardRequest(reader="back"), timeout=10).card
    assert (new.member_id, new.balance) == ("8860000000001", cny(15_000))
    listed = issuer.ListHotlist(i.ListHotlistRequest(), timeout=5).entries
    assert [(e.uid, e.reason, e.member_id) for e in listed] == [
        (UID, i.HOTLIST_REASON_REPLACED, "8860000000001")
    ]
    again = issuer.ReplaceCard(
        i.ReplaceCardRequest(reader="back", request_id="rep-1", old_uid=UID), timeout=20
    )
    assert again.card.replayed
    with pytest.raises(grpc.RpcError) as err:
        issuer.ReplaceCard(
            i.ReplaceCardRequest(reader="back", request_id="rep-2", old_uid="0A0B0C0D"), timeout=20
        )
    assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")


def test_a_batch_of_three_cards_is_streamed_card_by_card_and_resumes(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    uids = ["04000001", "04000002", "04000003"]
    request = i.BatchIssueCardsRequest(
        reader="readers/front",
        batch_id="b-1",
        cards=[spec(f"880000000000{n}", fen=n * 100, points=n) for n in (1, 2, 3)],
        card_timeout=Duration(seconds=20),
    )
    stream = issuer.BatchIssueCards(request, timeout=60)
    seen: list[tuple[int, int, str, int]] = []
    cards = iter(uids)
    for message in stream:
        seen.append((message.index, message.state, message.uid, message.done))
        assert message.total == 3
        if message.state == i.BatchIssueCardsResponse.STATE_WAITING_FOR_CARD:
            # the operator swaps cards while the stream waits
            threading.Thread(target=present, args=(api, "front", blank(next(cards)))).start()
    states = i.BatchIssueCardsResponse
    assert seen == [
        (0, states.STATE_WAITING_FOR_CARD, "", 0),
        (0, states.STATE_ISSUED, uids[0], 1),
        (1, states.STATE_WAITING_FOR_CARD, "", 1),
        (1, states.STATE_ISSUED, uids[1], 2),
        (2, states.STATE_WAITING_FOR_CARD, "", 2),
        (2, states.STATE_ISSUED, uids[2], 3),
    ]
    read = mg.MemberCardServiceStub(api.channel("pos")).ReadCard(
        m.ReadCardRequest(reader="front"), timeout=10
    )
    assert (read.card.member_id, read.card.balance) == ("8800000000003", cny(300))
    resumed = list(issuer.BatchIssueCards(request, timeout=30))
    assert [r.state for r in resumed] == [states.STATE_SKIPPED] * 3
    assert [r.uid for r in resumed] == uids


def test_a_card_that_fails_in_a_batch_is_reported_and_the_batch_goes_on(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", blank(UID))
    issue(issuer)  # not blank any more: its batch card fails
    request = i.BatchIssueCardsRequest(
        reader="front", batch_id="b-2", cards=[spec("8800000000011"), spec("8800000000012")],
        card_timeout=Duration(seconds=20),
    )  # fmt: skip
    out = []
    for message in issuer.BatchIssueCards(request, timeout=60):
        out.append(message)
        if message.state == i.BatchIssueCardsResponse.STATE_WAITING_FOR_CARD and message.index:
            threading.Thread(target=present, args=(api, "front", blank(NEW))).start()
    failed = [r for r in out if r.state == i.BatchIssueCardsResponse.STATE_FAILED]
    assert [(r.index, r.uid, r.error_reason) for r in failed] == [(0, UID, "INVALID_ARGUMENT")]
    assert out[-1].state == i.BatchIssueCardsResponse.STATE_ISSUED
    assert (out[-1].uid, out[-1].done, out[-1].total) == (NEW, 2, 2)


def test_a_batch_with_no_card_presented_ends_deadline_exceeded(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", None)
    request = i.BatchIssueCardsRequest(
        reader="front", batch_id="b-3", cards=[spec()], card_timeout=Duration(nanos=200_000_000)
    )
    with pytest.raises(grpc.RpcError) as err:
        list(issuer.BatchIssueCards(request, timeout=10))
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
    )  # fmt: skip


def test_hotlist_add_update_list_remove_is_audited(api: Api, issuer: ig.IssuingServiceStub) -> None:
    added = issuer.AddToHotlist(
        i.AddToHotlistRequest(uid="04:a1:b2:c3", reason=i.HOTLIST_REASON_LOST, note="report 7"),
        timeout=5,
    ).entry
    assert (added.uid, added.reason, added.note) == ("04A1B2C3", i.HOTLIST_REASON_LOST, "report 7")
    issuer.AddToHotlist(
        i.AddToHotlistRequest(uid="04A1B2C3", reason=i.HOTLIST_REASON_STOLEN), timeout=5
    )
    issuer.AddToHotlist(i.AddToHotlistRequest(uid=NEW, reason=i.HOTLIST_REASON_DAMAGED), timeout=5)
    first = issuer.ListHotlist(i.ListHotlistRequest(page_size=1), timeout=5)
    assert [e.uid for e in first.entries] == [NEW]
    assert first.next_page_token
    rest = issuer.ListHotlist(
        i.ListHotlistRequest(page_size=1, page_token=first.next_page_token), timeout=5
    )
    assert [(e.uid, e.reason, e.note) for e in rest.entries] == [
        ("04A1B2C3", i.HOTLIST_REASON_STOLEN, "")
    ]
    assert not rest.next_page_token
    removed = issuer.RemoveFromHotlist(
        i.RemoveFromHotlistRequest(uid="04A1B2C3", note="card found"), timeout=5
    )
    assert removed.removed
    retry = issuer.RemoveFromHotlist(
        i.RemoveFromHotlistRequest(uid="04A1B2C3", note="card found"), timeout=5
    )
    assert not retry.removed
    journal = api.station.journal
    assert journal is not None
    reasons = [e["detail"]["reason"] for e in journal.audit_events("hotlist", uid="04A1B2C3")]
    assert reasons == ["LOST: report 7", "STOLEN"]
    notes = journal.audit_events("unhotlist", uid="04A1B2C3")
    assert notes[0]["detail"] == {"note": "card found", "removed": True}


BAD = [
    ("IssueCard", i.IssueCardRequest(request_id="r", spec=spec()), "reader", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", spec=spec()), "request_id",
     "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="x" * 65, spec=spec()),
     "request_id", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r"), "spec.member_id",
     "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r",
                                     spec=i.CardSpec(member_id="12ab")),
     "spec.member_id", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r",
                                     spec=i.CardSpec(member_id="1", tier=9)),
     "spec.tier", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r", spec=i.CardSpec(
        member_id="1", opening_balance=common_pb2.Money(currency_code="USD", amount_fen=1))),
     "spec.opening_balance.currency_code", "INVALID_AMOUNT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r", spec=i.CardSpec(
        member_id="1", opening_balance=cny(10**12))),
     "spec.opening_balance", "AMOUNT_OUT_OF_RANGE"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r", spec=i.CardSpec(
        member_id="1", valid_until=common_pb2.Date(year=2030, month=2, day=30))),
     "spec.valid_until", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="front", request_id="r", spec=spec(),
                                     expected_uid="xyz"), "expected_uid", "INVALID_ARGUMENT"),
    ("IssueCard", i.IssueCardRequest(reader="readers/kitchen", request_id="r", spec=spec()),
     "readers/kitchen", "DEVICE_NOT_FOUND"),
    ("VerifyCard", i.VerifyCardRequest(reader="printers/x"), "reader", "INVALID_ARGUMENT"),
    ("EraseCard", i.EraseCardRequest(reader="front", request_id="r"), "expected_uid",
     "INVALID_ARGUMENT"),
    ("ReplaceCard", i.ReplaceCardRequest(reader="front", request_id="r"), "old_uid",
     "INVALID_ARGUMENT"),
    ("ReplaceCard", i.ReplaceCardRequest(reader="front", request_id="r", old_uid=UID,
                                         expected_uid=UID), "expected_uid", "INVALID_ARGUMENT"),
    ("BatchIssueCards", i.BatchIssueCardsRequest(reader="front", cards=[spec()]), "batch_id",
     "INVALID_ARGUMENT"),
    ("BatchIssueCards", i.BatchIssueCardsRequest(reader="front", batch_id="x" * 49,
                                                 cards=[spec()]), "batch_id", "INVALID_ARGUMENT"),
    ("BatchIssueCards", i.BatchIssueCardsRequest(reader="front", batch_id="b"), "cards",
     "INVALID_ARGUMENT"),
    ("BatchIssueCards", i.BatchIssueCardsRequest(reader="front", batch_id="b",
                                                 cards=[spec(), spec()]),
     "cards[1].member_id", "INVALID_ARGUMENT"),
    ("BatchIssueCards", i.BatchIssueCardsRequest(reader="front", batch_id="b", cards=[spec()],
                                                 card_timeout=Duration(seconds=-1)),
     "card_timeout", "INVALID_ARGUMENT"),
    ("AddToHotlist", i.AddToHotlistRequest(reason=i.HOTLIST_REASON_LOST), "uid",
     "INVALID_ARGUMENT"),
    ("AddToHotlist", i.AddToHotlistRequest(uid=UID), "reason", "INVALID_ARGUMENT"),
    ("AddToHotlist", i.AddToHotlistRequest(uid=UID, reason=i.HOTLIST_REASON_REPLACED), "reason",
     "INVALID_ARGUMENT"),
    ("AddToHotlist", i.AddToHotlistRequest(uid=UID, reason=cast(Any, 99)), "reason",
     "INVALID_ARGUMENT"),
    ("AddToHotlist", i.AddToHotlistRequest(uid=UID, reason=i.HOTLIST_REASON_LOST, note="n" * 201),
     "note", "INVALID_ARGUMENT"),
    ("RemoveFromHotlist", i.RemoveFromHotlistRequest(uid=UID), "note", "INVALID_ARGUMENT"),
    ("RemoveFromHotlist", i.RemoveFromHotlistRequest(uid="04A1", note="x"), "uid",
     "INVALID_ARGUMENT"),
    ("ListHotlist", i.ListHotlistRequest(page_size=-1), "page_size", "INVALID_ARGUMENT"),
    ("ListHotlist", i.ListHotlistRequest(page_token="abc"), "page_token", "INVALID_ARGUMENT"),
]  # fmt: skip


@pytest.mark.parametrize(("rpc", "request_", "field", "code"), BAD)
def test_bad_fields_are_named_and_the_daemon_keeps_serving(
    api: Api, issuer: ig.IssuingServiceStub, rpc: str, request_: object, field: str, code: str
) -> None:
    call = getattr(issuer, rpc)
    with pytest.raises(grpc.RpcError) as err:
        list(call(request_, timeout=10)) if rpc == "BatchIssueCards" else call(request_, timeout=10)
    assert reason(err.value) == code, err.value.details()
    assert field in (err.value.details() or "")
    assert issuer.ListHotlist(i.ListHotlistRequest(), timeout=5) is not None


def test_other_roles_may_not_issue(api: Api) -> None:
    request = i.IssueCardRequest(reader="front", request_id="r", spec=spec())
    for role in ("pos", "technician"):
        with pytest.raises(grpc.RpcError) as err:
            ig.IssuingServiceStub(api.channel(role)).IssueCard(request, timeout=5)
        assert (err.value.code(), reason(err.value)) == (
            grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED",
        )  # fmt: skip
        assert role in (err.value.details() or "")


def test_card_writes_need_an_issuing_station(
    api: Api, issuer: ig.IssuingServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = api.station.config
    pos_station = dataclasses.replace(
        config, daemon=dataclasses.replace(config.daemon, station="pos")
    )
    monkeypatch.setattr(api.station, "config", pos_station)
    present(api, "front", blank(UID))
    with pytest.raises(grpc.RpcError) as err:
        issue(issuer)
    assert (err.value.code(), reason(err.value)) == (
        grpc.StatusCode.PERMISSION_DENIED, "OPERATION_NOT_ALLOWED",
    )  # fmt: skip
    assert 'station = "issuing"' in (err.value.details() or "")
    assert issuer.VerifyCard(i.VerifyCardRequest(reader="front"), timeout=10).blank  # reads may


def test_a_call_cancelled_mid_issue_completes_or_is_recorded(
    api: Api, issuer: ig.IssuingServiceStub
) -> None:
    present(api, "front", blank(UID))
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    backend.reader(api.station.reader("front").name).realtime = True  # issuing takes a while
    call = issuer.IssueCard.future(
        i.IssueCardRequest(reader="front", request_id="gone", spec=spec()), timeout=20
    )
    journal = api.station.journal
    assert journal is not None
    while journal.get("gone") is None:  # the job has started: its claim is in the journal
        pass
    call.cancel()
    api.station.run("front", lambda ctx: None)  # the worker has finished the issue job
    record = journal.get("gone")
    assert record is not None
    assert record.state.name in ("COMMITTED", "PENDING")
    again = issue(issuer, rid="gone")  # the same request settles it either way
    assert again.uid == UID
    assert issuer.VerifyCard(i.VerifyCardRequest(reader="front"), timeout=10).valid
