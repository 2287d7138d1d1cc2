"""ReaderService: readers, their cards, the event stream and waiting for a card."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from daemon.api.v1 import reader_service_pb2 as r
from daemon.api.v1 import reader_service_pb2_grpc as rg
from sim.backend import SimBackend
from sim.store import transport_card
from tests.api.conftest import Api
from tests.api.test_cards import reason

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
