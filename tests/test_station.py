"""The station: one store PC built from its config file, started and stopped as a whole."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import (
    ConfigError,
    DeviceNotFound,
    ReaderBusy,
    ReaderUnavailable,
    WriteUnconfirmed,
)
from daemon.events import Event
from daemon.membercard.requests import Debit, IssueCard, IssueSpec, ReadCard
from daemon.printers.spool import JobState
from daemon.readers.workers import JobContext
from daemon.station import Station
from demo.folder import STORE_CONFIG, make_store_folder
from demo.sample import sample_receipt
from sim.backend import SimBackend
from sim.printer.backend import SimPrinterBackend
from sim.scanners.backend import SimScanner
from sim.store import transport_card

UID = bytes.fromhex("04A7E3C2")
SPEC = IssueSpec("8860123403721", tier=2, valid_until=dt.date(2030, 12, 31), balance=50_000)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store_folder(tmp_path / "store")


@pytest.fixture
def station(store: Path) -> Iterator[Station]:
    with Station.from_config(store) as st:
        st.start()
        st.wait_for_reader("front")
        yield st


def sim_readers(station: Station) -> SimBackend:
    assert isinstance(station.backend, SimBackend)
    return station.backend


def present(station: Station, uid: bytes = UID) -> None:
    sim_readers(station).readers[0].insert(transport_card(uid))
    sub = station.hub.subscribe(sources="readers/front", kinds="card_present")
    with sub:
        sub.wait_for(lambda e: e.kind == "card_present", timeout_s=5)


def test_the_demo_store_config_is_validated_like_a_production_one(store: Path) -> None:
    station = Station.from_config(store)
    assert station.config.readers.backend == "sim"
    assert [*station.config.printers] == ["receipt"]
    assert [*station.config.scanners] == ["front"]
    assert station.config.daemon.state_dir == store.parent / "state"
    station.close()  # never started: closing is still fine


def test_devices_are_reached_by_their_config_ids(station: Station) -> None:
    info = station.reader("front")
    assert station.reader("readers/front") == info
    assert info.path == "readers/front"
    assert info.configured
    assert info.dialect == "acr1252u"
    assert info.queue_size == 8
    assert station.printer("printers/receipt") is station.printer("receipt")
    assert station.scanner("scanners/front") is station.scanner("front")
    station.wait_for_reader("back")
    assert [r.id for r in station.readers()] == ["back", "front"]
    assert station.reader("back").dialect == "acr122u"


@pytest.mark.parametrize(
    ("lookup", "named", "lists"),
    [
        (lambda s: s.reader("side"), "readers/side", "readers/front"),
        (lambda s: s.printer("printers/kitchen"), "printers/kitchen", "printers/receipt"),
        (lambda s: s.scanner("lane2"), "scanners/lane2", "scanners/front"),
    ],
)
def test_an_unknown_device_id_names_it_and_lists_what_exists(
    station: Station, lookup: object, named: str, lists: str
) -> None:
    with pytest.raises(DeviceNotFound) as err:
        lookup(station)  # type: ignore[operator]
    assert err.value.device == named
    assert lists in str(err.value)


def test_a_reader_no_table_matches_gets_an_id_from_its_name(station: Station) -> None:
    from sim.reader import SimReader

    sim_readers(station).add_reader(SimReader("HID Global OMNIKEY 5422 Smartcard Reader 01 00"))
    info = station.wait_for_reader("hid-global-omnikey-5422-smartcard-reader-01-00")
    assert not info.configured
    assert info.dialect == "omnikey"
    station.wait_for_reader("back")
    assert [r.id for r in station.readers()] == [
        "back",
        "front",
        "hid-global-omnikey-5422-smartcard-reader-01-00",
    ]


def test_a_member_pays_through_the_station(station: Station) -> None:
    present(station)
    issued = station.card("front", IssueCard(SPEC, "issue-1"))
    assert issued.balance == 50_000
    info = station.card("readers/front", ReadCard(expected_uid=UID.hex()))
    assert (info.tier_name, info.discount) == ("金卡", 8500)  # the config's tiers, not defaults
    paid = station.card("front", Debit("sale-1", 11_165))
    assert (paid.balance, paid.points_delta) == (38_835, 3)
    again = station.card("front", Debit("sale-1", 11_165))
    assert again.replayed
    assert again.balance == 38_835


def test_one_sequence_across_readers_printers_and_scanners(station: Station) -> None:
    station.wait_for_reader("back")
    with station.hub.subscribe() as sub:
        snapshot = [sub.get(1) for _ in range(4)]
        assert {e.source for e in snapshot} == {
            "readers/back",
            "readers/front",
            "printers/receipt",
            "scanners/front",
        }
        assert all(e.snapshot for e in snapshot)
        present(station)
        scanner = station.scanner("front").backend
        assert isinstance(scanner, SimScanner)
        assert scanner.inject(b"6901234567892", aim="]E0")
        events: list[Event] = []
        deadline = time.monotonic() + 5
        while {"card_present", "scan"} - {e.kind for e in events}:
            assert time.monotonic() < deadline, events
            events.append(sub.get(5))
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert min(seqs) > snapshot[0].seq


def test_per_reader_queue_size_from_the_config_is_enforced(tmp_path: Path) -> None:
    text = STORE_CONFIG.read_text(encoding="utf-8").replace("queue_size = 8", "queue_size = 1")
    config = tmp_path / "store.toml"
    config.write_text(text, encoding="utf-8")
    release = threading.Event()

    def hold(ctx: JobContext) -> None:
        release.wait(10)

    with Station.from_config(make_store_folder(tmp_path / "store", config)) as station:
        station.start()
        station.wait_for_reader("front")
        running = station.submit("front", hold)
        while station.pool is not None and station.pool.worker(station.reader("front").name).queued:
            time.sleep(0.01)  # the first job has left the queue and runs
        waiting = station.submit("front", hold)
        with pytest.raises(ReaderBusy):
            station.submit("front", hold)
        release.set()
        running.result(10)
        waiting.result(10)


def test_a_spooled_receipt_survives_a_close_and_prints_after_the_restart(store: Path) -> None:
    with Station.from_config(store) as station:
        station.start()
        backend = station.printer("receipt").printer.backend
        assert isinstance(backend, SimPrinterBackend)
        backend.unplug()
        job = station.printer("receipt").submit(sample_receipt())
        assert station.printer("receipt").job(job.id).state is JobState.QUEUED
    with Station.from_config(store) as station:
        station.start()
        done = station.printer("receipt").wait_job(job.id, 10)
        assert done.state is JobState.PRINTED
        backend = station.printer("receipt").printer.backend
        assert isinstance(backend, SimPrinterBackend)
        assert backend.printer.completed  # it came out of the (new) printer


def test_an_unconfirmed_debit_stays_pending_across_a_restart(store: Path) -> None:
    with Station.from_config(store) as station:
        station.start()
        station.wait_for_reader("front")
        present(station)
        station.card("front", IssueCard(SPEC, "issue-1"))
        reader = sim_readers(station).readers[0]
        card = reader.card
        assert card is not None
        reader.faults.arm()
        reader.faults.remove_after(9)  # the customer pulls the card during the record write
        with pytest.raises(WriteUnconfirmed):
            station.card("front", Debit("sale-9", 2_000))
        reader.faults.clear()
        assert [r.request_id for r in station.journal.pending()] == ["sale-9"]  # type: ignore[union-attr]
    with Station.from_config(store) as station:
        station.start()
        station.wait_for_reader("front")
        assert station.journal is not None
        assert [r.request_id for r in station.journal.pending()] == ["sale-9"]
        sim_readers(station).readers[0].insert(card)
        info = station.wait_for_reader("front") and station.card("front", ReadCard())
        assert "sale-9" in info.resolved  # settled from the card alone
        assert station.journal.pending() == []


def test_close_is_idempotent_and_stops_every_thread(store: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    station = Station.from_config(store).start()
    station.wait_for_reader("front")
    assert {t.name for t in threading.enumerate()} - before  # it did start workers
    station.close()
    station.close()
    assert not station.running
    with pytest.raises(ReaderUnavailable):
        station.card("front", ReadCard())
    with pytest.raises(ReaderUnavailable):
        station.start()


def test_a_bad_backend_name_stops_the_start_before_anything_runs(tmp_path: Path) -> None:
    text = STORE_CONFIG.read_text(encoding="utf-8").replace(
        '[readers]\nbackend = "sim"', '[readers]\nbackend = "simulator"'
    )
    config = tmp_path / "store.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Station.from_config(make_store_folder(tmp_path / "store", config))
    assert err.value.key == "readers.backend"
    assert "simulator" in str(err.value)


def test_a_part_that_fails_to_start_stops_the_parts_already_started(store: Path) -> None:
    state = store.parent / "state"
    state.mkdir()
    (state / "spool.sqlite3").mkdir()  # the spool cannot be opened: printers cannot start
    before = set(threading.enumerate())
    station = Station.from_config(store)
    with pytest.raises(ConfigError, match="print spool") as err:
        station.start()
    assert err.value.key == "daemon.state_dir"
    assert "spool.sqlite3" in str(err.value)
    assert not station.running
    assert set(threading.enumerate()) - before == set()


def test_a_usb_scanner_on_the_simulated_usb_bus(tmp_path: Path) -> None:
    """HID-POS through the product's pyusb path, with the simulator's USB bus below it."""
    from daemon.scanners import Role
    from sim.scanners import SimHidPosDevice, SimUsbBackend
    from sim.scanners.script import play

    dev = SimHidPosDevice()
    text = STORE_CONFIG.read_text(encoding="utf-8").replace(
        '[scanners.front]\nbackend = "sim"\naim = true',
        f'[scanners.front]\nbackend = "hidpos"\nvid = {dev.vid}\npid = {dev.pid}',
    )
    config = tmp_path / "store.toml"
    config.write_text(text, encoding="utf-8")
    store = make_store_folder(tmp_path / "store", config)
    with Station.from_config(store, usb_backend=SimUsbBackend(dev)) as station:
        station.start()
        assert station.scans is not None
        with station.scans.subscribe(Role.POS) as pos:
            pos.wait_for(lambda e: e.kind == "status" and "CONNECTED" in str(e.payload), 10)
            play(dev, ["scan 6901234567892 ]E0"])
            scan = pos.wait_for(lambda e: e.kind == "scan", 10)
    assert scan.source == "scanners/front"
    assert getattr(scan.payload, "text", None) == "6901234567892"
