"""SimulatorService: the simulated store's cards and faults, over the daemon's real sockets."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from daemon.api.services import build_services
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import simulator_service_pb2 as s
from daemon.api.v1 import simulator_service_pb2_grpc as sg
from daemon.config import load_config
from daemon.station import Station
from demo.simulator import service
from tests.api.conftest import Api, run_api, store_folder
from tests.api.test_cards import cny, reason

SIMULATOR = "carddaemon.v1.SimulatorService"
F = s.InjectFaultRequest


@pytest.fixture
def sim(api: Api) -> sg.SimulatorServiceStub:
    return sg.SimulatorServiceStub(api.channel("pos"))


@pytest.fixture
def pos(api: Api) -> mg.MemberCardServiceStub:
    return mg.MemberCardServiceStub(api.channel("pos"))


def refused(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=10)  # type: ignore[operator]
    return err.value


def test_the_catalogue_has_two_members_of_different_tiers_and_blank_cards(
    sim: sg.SimulatorServiceStub,
) -> None:
    cards = {c.card_id: c for c in sim.ListSimulatedCards(s.ListSimulatedCardsRequest()).cards}
    assert list(cards) == ["gold", "silver", "blank", "blank-2"]
    assert (cards["gold"].uid, cards["silver"].uid) == ("9E1A4B01", "9E1A4B02")
    assert "金卡" in cards["gold"].description
    assert "¥500.00" in cards["gold"].description
    assert "银卡" in cards["silver"].description
    assert "transport state" in cards["blank"].description
    # under a bare `carddaemon serve` every card starts in the drawer
    assert all(c.reader == "" for c in cards.values())


def test_presented_members_read_with_their_tier_and_balance(
    sim: sg.SimulatorServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    done = sim.PresentCard(s.PresentCardRequest(reader="readers/front", card_id="gold"), timeout=10)
    assert (done.card.card_id, done.card.reader) == ("gold", "readers/front")
    sim.PresentCard(s.PresentCardRequest(reader="back", card_id="silver"), timeout=10)
    gold = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10).card
    silver = pos.ReadCard(m.ReadCardRequest(reader="back"), timeout=10).card
    assert (gold.uid, gold.member_id, gold.tier_name, gold.balance, gold.points) == (
        "9E1A4B01",
        "8860000000017",
        "金卡",
        cny(50_000),
        2_345,
    )
    assert (silver.member_id, silver.tier_name, silver.balance) == (
        "8860000000024",
        "银卡",
        cny(20_000),
    )
    listed = sim.ListSimulatedCards(s.ListSimulatedCardsRequest(), timeout=10).cards
    assert {c.card_id: c.reader for c in listed}["silver"] == "readers/back"


def test_remove_and_swap(sim: sg.SimulatorServiceStub) -> None:
    assert not sim.RemoveCard(s.RemoveCardRequest(reader="front"), timeout=10).HasField("card")
    sim.PresentCard(s.PresentCardRequest(reader="front", card_id="blank"), timeout=10)
    swapped = sim.SwapCard(s.SwapCardRequest(reader="front", card_id="gold"), timeout=10)
    assert (swapped.removed.card_id, swapped.presented.card_id) == ("blank", "gold")
    gone = sim.RemoveCard(s.RemoveCardRequest(reader="front"), timeout=10)
    assert (gone.card.card_id, gone.card.reader) == ("gold", "")


def test_bad_input_is_refused_with_its_reason(sim: sg.SimulatorServiceStub) -> None:
    err = refused(sim.PresentCard, s.PresentCardRequest(reader="front", card_id="platinum"))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert reason(err) == "DEVICE_NOT_FOUND"
    assert "gold, silver, blank, blank-2" in (err.details() or "")
    err = refused(sim.PresentCard, s.PresentCardRequest(reader="readers/side", card_id="gold"))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert "readers/front" in (err.details() or "")  # the readers there are
    err = refused(sim.PresentCard, s.PresentCardRequest(reader="", card_id="gold"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    sim.PresentCard(s.PresentCardRequest(reader="front", card_id="gold"), timeout=10)
    err = refused(sim.PresentCard, s.PresentCardRequest(reader="back", card_id="gold"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "already lies on readers/front" in (err.details() or "")
    err = refused(sim.SwapCard, s.SwapCardRequest(reader="back", card_id="gold"))
    assert "already lies on readers/front" in (err.details() or "")
    err = refused(sim.PresentCard, s.PresentCardRequest(reader="front", card_id="blank"))
    assert "use SwapCard" in (err.details() or "")
    for bad, field in (
        (F(reader="front", fault=F.FAULT_UNSPECIFIED, apdu=1), "fault"),
        (F(reader="front", fault=F.FAULT_TEAR, apdu=0), "apdu"),
        (F(reader="front", fault=F.FAULT_TEAR, apdu=1001), "apdu"),
        (
            F(reader="front", fault=F.FAULT_REMOVE_BEFORE, apdu=1, tear_outcome=F.TEAR_OUTCOME_OLD),
            "tear_outcome",
        ),
    ):
        err = refused(sim.InjectFault, bad)
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
        assert (err.details() or "").startswith(f"INVALID_ARGUMENT: {field}:"), err.details()
    err = refused(sim.ClearFaults, s.ClearFaultsRequest(reader="nowhere"))
    assert err.code() is grpc.StatusCode.NOT_FOUND


def test_a_card_pulled_mid_debit_is_unconfirmed_then_settled_by_presenting_it_again(
    sim: sg.SimulatorServiceStub, pos: mg.MemberCardServiceStub
) -> None:
    sim.PresentCard(s.PresentCardRequest(reader="front", card_id="gold"), timeout=10)
    pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    armed = sim.InjectFault(F(reader="front", fault=F.FAULT_REMOVE_AFTER, apdu=9), timeout=10)
    assert armed.pending_faults == 1
    sale = m.DebitRequest(
        reader="front", request_id="sale-7", amount=cny(2_000), expected_uid="9E1A4B01"
    )
    err = refused(pos.Debit, sale)
    assert reason(err) == "WRITE_UNCONFIRMED"
    assert sim.ClearFaults(s.ClearFaultsRequest(reader="front"), timeout=10).cleared == 0
    cards = sim.ListSimulatedCards(s.ListSimulatedCardsRequest(), timeout=10).cards
    assert {c.card_id: c.reader for c in cards}["gold"] == ""  # it left the field
    sim.PresentCard(s.PresentCardRequest(reader="front", card_id="gold"), timeout=10)
    read = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
    assert list(read.resolved_request_ids) == ["sale-7"]
    op = pos.GetOperation(m.GetOperationRequest(request_id="sale-7"), timeout=10)
    assert op.state in (
        m.GetOperationResponse.STATE_COMMITTED,
        m.GetOperationResponse.STATE_NOT_APPLIED,
    )
    paid = op.state == m.GetOperationResponse.STATE_COMMITTED
    assert read.card.balance == cny(48_000 if paid else 50_000)


def test_faults_count_from_the_next_apdu_and_clear(sim: sg.SimulatorServiceStub) -> None:
    sim.InjectFault(F(reader="back", fault=F.FAULT_LOSE_RESPONSE, apdu=3), timeout=10)
    tear = F(reader="back", fault=F.FAULT_TEAR, apdu=5, tear_outcome=F.TEAR_OUTCOME_OLD)
    assert sim.InjectFault(tear, timeout=10).pending_faults == 2
    assert sim.ClearFaults(s.ClearFaultsRequest(reader="back"), timeout=10).cleared == 2
    assert sim.ClearFaults(s.ClearFaultsRequest(reader="back"), timeout=10).cleared == 0


def test_every_role_may_drive_the_simulator(api: Api) -> None:
    for role in ("technician", "issuer"):
        stub = sg.SimulatorServiceStub(api.channel(role))
        assert len(stub.ListSimulatedCards(s.ListSimulatedCardsRequest(), timeout=10).cards) == 4


def test_a_pcsc_station_never_offers_the_simulator(tmp_path: Path) -> None:
    config = store_folder(tmp_path / "store")
    text = config.read_text(encoding="utf-8").replace('backend = "sim"', 'backend = "pcsc"', 1)
    config.write_text(text, encoding="utf-8")
    station = Station.from_config(load_config(config))
    assert station.config.readers.backend == "pcsc"
    assert service(station, station.config.api) is None  # not started: no backend at all
    with station:
        station.start()
        assert service(station, station.config.api) is None
        assert SIMULATOR not in {item.name for item in build_services(station)}


def test_calling_the_simulator_where_it_is_not_offered_is_unimplemented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo.simulator

    # the station of run_api is simulated; the factory is what decides, so make it say no
    monkeypatch.setattr(demo.simulator, "service", lambda station, api: None)
    with run_api(tmp_path) as api:
        stub = sg.SimulatorServiceStub(api.channel("technician"))
        err = refused(stub.ListSimulatedCards, s.ListSimulatedCardsRequest())
        assert err.code() is grpc.StatusCode.UNIMPLEMENTED


def test_inject_scan_reaches_watch_scans_in_order_clear_for_pos_masked_for_technician(
    api: Api, sim: sg.SimulatorServiceStub
) -> None:
    from daemon.api.v1 import scanner_service_pb2 as sc
    from tests.api.test_scanners import EAN, WECHAT, WECHAT_MASKED, front, next_scan, snapshot
    from tests.api.test_scanners import watch as watch_scans

    front(api)  # the daemon has the scanner open
    pos, tech = watch_scans(api, "pos"), watch_scans(api, "technician")
    snapshot(pos)
    snapshot(tech)
    for data, aim in ((EAN, "]E0"), (WECHAT, "]Q1")):
        done = sim.InjectScan(
            s.InjectScanRequest(scanner="scanners/front", data=data.encode(), aim=aim), timeout=10
        )
        assert done.delivered
    for stream, payment_text in ((pos, WECHAT), (tech, WECHAT_MASKED)):
        product, payment = next_scan(stream), next_scan(stream)
        assert product.header.sequence < payment.header.sequence
        assert (product.scan.kind, product.scan.text, product.scan.aim) == (
            sc.SCAN_KIND_PRODUCT,
            EAN,
            "]E0",
        )
        assert (payment.scan.kind, payment.scan.payment) == (
            sc.SCAN_KIND_PAYMENT,
            sc.PAYMENT_PROVIDER_WECHAT_PAY,
        )
        assert payment.scan.text == payment_text


def test_inject_scan_refuses_bad_input_and_says_when_the_scan_is_lost(
    api: Api, sim: sg.SimulatorServiceStub
) -> None:
    from tests.api.test_scanners import front

    gun = front(api)
    bad = refused(sim.InjectScan, s.InjectScanRequest(scanner="scanners/nope", data=b"1"))
    assert bad.code() == grpc.StatusCode.NOT_FOUND
    bad = refused(sim.InjectScan, s.InjectScanRequest(scanner="scanners/front"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "data" in (bad.details() or "")
    bad = refused(
        sim.InjectScan, s.InjectScanRequest(scanner="scanners/front", data=b"1", aim="E0")
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    gun.unplug()
    lost = sim.InjectScan(s.InjectScanRequest(scanner="front", data=b"123"), timeout=10)
    assert not lost.delivered
    gun.replug()
