"""ReaderService: readers, their cards, the event stream and waiting for a card."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import reader_service_pb2 as r
from daemon.api.v1 import reader_service_pb2_grpc as rg
from demo.folder import STORE_CONFIG
from sim.backend import SimBackend
from sim.pcscd import PrivatePcscd
from sim.store import transport_card
from tests.api.conftest import Api, Served, serve_config, store_folder
from tests.api.test_cards import reason
from tests.pcscd_stack import READERS

UID = bytes.fromhex("04A7E3C2")


def sim(api: Api) -> SimBackend:
    assert isinstance(api.station.backend, SimBackend)
    return api.station.backend


def front(api: Api):  # type: ignore[no-untyped-def]
    return sim(api).reader(api.station.reader("front").name)


def test_list_and_get_readers_by_resource_name(api: Api) -> None:
    stub = rg.ReaderServiceStub(api.channel("technician"))
    listed = stub.ListReaders(r.ListReadersRequest(), timeout=5).readers
    assert [x.name for x in listed] == ["readers/back", "readers/front"]
    got = stub.GetReader(r.GetReaderRequest(name="readers/front"), timeout=5).reader
    assert (got.dialect, got.state) == ("acr1252u", r.Reader.STATE_EMPTY)
    assert got.pcsc_name.startswith("ACS ACR1252")
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReader(r.GetReaderRequest(name="readers/nope"), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReader(r.GetReaderRequest(name=""), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in (err.value.details() or "")


def test_watch_starts_with_a_snapshot_then_numbered_events_and_resumes(api: Api) -> None:
    stub = rg.ReaderServiceStub(api.channel("pos"))
    stream = stub.WatchReaders(r.WatchReadersRequest(readers=["readers/front"]), timeout=20)
    first = next(stream)
    assert first.header.snapshot
    assert first.WhichOneof("event") == "snapshot"
    assert first.snapshot.reader.name == "readers/front"
    front(api).insert(transport_card(UID))
    present = next(stream)
    assert present.WhichOneof("event") == "card_present"
    assert present.card_present.card.uid == UID.hex().upper()
    assert present.card_present.card.card_type_name == "MIFARE Classic 1K"
    assert present.header.sequence > first.header.sequence
    stream.cancel()
    front(api).remove()
    resumed = stub.WatchReaders(
        r.WatchReadersRequest(readers=["readers/front"], resume_after=present.header.sequence),
        timeout=20,
    )
    missed = next(resumed)  # what happened while the client was away, not a snapshot
    assert not missed.header.snapshot
    assert missed.WhichOneof("event") == "card_removed"
    assert missed.header.sequence > present.header.sequence
    resumed.cancel()


def test_wait_for_card_returns_the_card_that_arrives(api: Api) -> None:
    stub = rg.ReaderServiceStub(api.channel("pos"))
    timer = threading.Timer(0.3, lambda: front(api).insert(transport_card(UID)))
    timer.start()
    try:
        got = stub.WaitForCard(
            r.WaitForCardRequest(reader="readers/front", timeout=Duration(seconds=10)), timeout=15
        )
    finally:
        timer.join()
    assert got.card.uid == UID.hex().upper()
    again = stub.WaitForCard(r.WaitForCardRequest(reader="front"), timeout=5)
    assert again.card.uid == got.card.uid  # already there: at once
    with pytest.raises(grpc.RpcError) as err:
        stub.WaitForCard(
            r.WaitForCardRequest(
                reader="front", new_card_only=True, timeout=Duration(nanos=200_000_000)
            ),
            timeout=5,
        )
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert reason(err.value) == "DEADLINE_EXCEEDED"


def test_a_client_without_deadline_never_waits_past_the_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``[api] max_wait_ms`` bounds the wait even when the client set no deadline."""
    from tests.api.conftest import run_api

    with run_api(tmp_path, "max_wait_ms = 300\n") as api:
        stub = rg.ReaderServiceStub(api.channel("pos"))
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.WaitForCard(r.WaitForCardRequest(reader="front"))  # no timeout at all
        assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 10


def test_wait_for_card_on_a_reader_that_is_unplugged_says_so(api: Api) -> None:
    stub = rg.ReaderServiceStub(api.channel("pos"))
    timer = threading.Timer(0.3, front(api).unplug)
    timer.start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.WaitForCard(r.WaitForCardRequest(reader="front"), timeout=15)
    finally:
        timer.join()
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    assert reason(err.value) == "READER_UNAVAILABLE"


@pytest.mark.parametrize(
    ("timeout", "words"),
    [
        (Duration(seconds=-1), "must not be negative"),
        (Duration(seconds=1, nanos=-5), "same sign"),
    ],
)
def test_a_malformed_wait_timeout_names_the_field(api: Api, timeout: Duration, words: str) -> None:
    stub = rg.ReaderServiceStub(api.channel("pos"))
    with pytest.raises(grpc.RpcError) as err:
        stub.WaitForCard(r.WaitForCardRequest(reader="front", timeout=timeout), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "timeout" in (err.value.details() or "")
    assert words in (err.value.details() or "")


def test_a_huge_wait_timeout_is_capped_not_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import run_api

    with run_api(tmp_path, "max_wait_ms = 200\n") as api:
        stub = rg.ReaderServiceStub(api.channel("pos"))
        with pytest.raises(grpc.RpcError) as err:
            stub.WaitForCard(
                r.WaitForCardRequest(reader="front", timeout=Duration(seconds=10**11)), timeout=10
            )
        assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


# --- a configured reader that is not plugged in ------------------------------------------------

#: the pattern of ``[readers.side]``, which no reader of the private pcscd matches
SIDE_MATCH = "Identiv uTrust 3700 F*"


def unplugged_store_config(folder: Path) -> Path:
    """The simulated store on real pcscd + vpcd (an ACR1252U and an OMNIKEY 5x21): ``front``
    and ``back`` match those two, ``[readers.side]`` matches no reader there is."""
    text = STORE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('backend = "sim"', 'backend = "pcsc"', 1)  # [readers] comes first
    back = 'match = "ACS ACR122*"\ndialect = "acr122u"'
    assert back in text
    text = text.replace(back, 'match = "HID Global OMNIKEY*"\ndialect = "omnikey"', 1)
    base = folder / "unplugged.toml"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.write_text(text + f'\n[readers.side]\nmatch = "{SIDE_MATCH}"\n', encoding="utf-8")
    return store_folder(folder / "store", base=base)


def detached(readers: Iterable[r.Reader]) -> set[str]:
    return {x.name for x in readers if x.state == r.Reader.STATE_DETACHED}


@contextlib.contextmanager
def serve_unplugged(folder: Path, pcscd: PrivatePcscd) -> Iterator[Served]:
    """``carddaemon serve`` (a real process) of :func:`unplugged_store_config`, once its two
    attached readers are listed."""
    wanted = [name for name, _ in READERS]
    if not pcscd.running or [s.friendly_name for s in pcscd.slots] != wanted:
        pcscd.stop()
        pcscd.start(wanted)
    with serve_config(unplugged_store_config(folder)) as served:
        with grpc.insecure_channel(f"unix:{served.socket('technician')}") as channel:
            stub = rg.ReaderServiceStub(channel)
            deadline = time.monotonic() + 20
            while True:  # the monitor lists the readers a moment after start
                listed = stub.ListReaders(r.ListReadersRequest(), timeout=5).readers
                if {"readers/front", "readers/back"} <= {x.name for x in listed} - detached(listed):
                    break
                assert time.monotonic() < deadline, listed
                time.sleep(0.05)
        yield served


@pytest.fixture(scope="module")
def unplugged(
    tmp_path_factory: pytest.TempPathFactory, private_pcscd: PrivatePcscd
) -> Iterator[Served]:
    with serve_unplugged(tmp_path_factory.mktemp("unplugged"), private_pcscd) as served:
        yield served


@pytest.mark.pcscd
def test_a_configured_reader_that_is_not_plugged_in_is_listed_with_its_pattern(
    unplugged: Served,
) -> None:
    with grpc.insecure_channel(f"unix:{unplugged.socket('technician')}") as channel:
        listed = rg.ReaderServiceStub(channel).ListReaders(r.ListReadersRequest(), timeout=5)
    by_name = {x.name: x for x in listed.readers}
    # vpcd gives each reader a second slot ("… 01 00"): the same table's pattern matches it
    assert list(by_name) == [
        "readers/back",
        "readers/back-2",
        "readers/front",
        "readers/front-2",
        "readers/side",
    ]
    assert detached(listed.readers) == {"readers/side"}
    side = by_name["readers/side"]
    assert side.state == r.Reader.STATE_DETACHED
    assert (side.match, side.pcsc_name, side.dialect) == (SIDE_MATCH, "", "")
    assert not side.HasField("card")
    front, back = by_name["readers/front"], by_name["readers/back"]
    assert (front.state, front.match, front.dialect) == (
        r.Reader.STATE_EMPTY,
        "ACS ACR1252*PICC*",
        "acr1252u",
    )
    assert front.pcsc_name.startswith("ACS ACR1252 1S CL Reader PICC ")
    assert (back.state, back.match, back.dialect) == (
        r.Reader.STATE_EMPTY,
        "HID Global OMNIKEY*",
        "omnikey",
    )


@pytest.mark.pcscd
def test_get_reader_of_a_configured_reader_not_plugged_in_returns_it_not_not_found(
    unplugged: Served,
) -> None:
    with grpc.insecure_channel(f"unix:{unplugged.socket('pos')}") as channel:
        stub = rg.ReaderServiceStub(channel)
        for name in ("readers/side", "side"):
            got = stub.GetReader(r.GetReaderRequest(name=name), timeout=5).reader
            assert (got.name, got.state, got.match) == (
                "readers/side",
                r.Reader.STATE_DETACHED,
                SIDE_MATCH,
            )
        attached = stub.GetReader(r.GetReaderRequest(name="front"), timeout=5).reader
        assert (attached.state, attached.match) == (r.Reader.STATE_EMPTY, "ACS ACR1252*PICC*")


@pytest.mark.pcscd
def test_an_unknown_reader_is_still_not_found_listing_the_attached_ones(
    unplugged: Served,
) -> None:
    with grpc.insecure_channel(f"unix:{unplugged.socket('pos')}") as channel:
        stub = rg.ReaderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetReader(r.GetReaderRequest(name="readers/nope"), timeout=5)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND
        assert reason(err.value) == "DEVICE_NOT_FOUND"
        attached = "readers/back, readers/back-2, readers/front, readers/front-2"
        assert err.value.details() == (
            f"DEVICE_NOT_FOUND: readers/nope: no such reader on this PC (readers: {attached})"
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.GetReader(r.GetReaderRequest(name="printers/side"), timeout=5)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "name" in (err.value.details() or "")
        # a card call on it cannot run, and says why in the technician's words
        cards = mg.MemberCardServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            cards.ReadCard(m.ReadCardRequest(reader="readers/side"), timeout=5)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND
        assert reason(err.value) == "DEVICE_NOT_FOUND"
        assert err.value.details() == (
            f"DEVICE_NOT_FOUND: readers/side: configured but not connected: no reader matching "
            f"{SIDE_MATCH!r} is attached (readers: {attached})"
        )


@pytest.mark.pcscd
def test_a_missing_configured_reader_leaves_the_reader_service_serving(
    unplugged: Served,
) -> None:
    """Health keeps its meaning: NOT_SERVING only while every reader is gone."""
    with grpc.insecure_channel(f"unix:{unplugged.socket('pos')}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        service = r.DESCRIPTOR.services_by_name["ReaderService"].full_name
        got = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert got.status == health_pb2.HealthCheckResponse.SERVING
