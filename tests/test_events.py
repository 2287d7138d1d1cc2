"""The event hub: snapshot first, one sequence, drop oldest with a count, timeouts, resume,
filters and views, the asyncio bridge, close, and subscriber bugs that cost no one else."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from daemon.errors import InvalidArgument, OperationTimeout
from daemon.events import Event, EventHub, State, SubscriptionClosed
from daemon.readers.monitor import EventKind, ReaderEvent, ReaderMonitor
from daemon.scanners import RawScan, Role, ScanEvent, ScannerState, ScanStream
from sim.backend import SimBackend
from sim.reader import SimReader
from sim.store import transport_card
from tests.pcscd_stack import is_event
from tests.printers.helpers import tcp_service

WECHAT = "101234567890123456"


def raw(text: str) -> RawScan:
    return RawScan(data=text.encode(), aim="]Q1", received_ns=0)


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.source, e.kind) for e in events]


# --- snapshot and sequence -------------------------------------------------------------------


def test_a_subscriber_sees_the_snapshot_first_then_live_events() -> None:
    with EventHub() as hub:
        hub.publish("printers/receipt", "status", "READY", state="event")
        hub.publish("scanners/front", "scan", "A")  # no state: not in the snapshot
        hub.publish("readers/r1", "reader_attached", "r1", state="event")
        hub.publish("readers/r2", "reader_attached", "r2", state="event")
        hub.publish("readers/r2", "reader_detached", "r2", state="clear")
        hub.publish("printers/receipt", "status", "PAPER_OUT", state="event")
        with hub.subscribe() as sub:
            hub.publish("scanners/front", "scan", "B")
            got = sub.drain()
    assert [(e.source, e.payload, e.snapshot, e.seq) for e in got] == [
        ("printers/receipt", "PAPER_OUT", True, 6),
        ("readers/r1", "r1", True, 6),
        ("scanners/front", "B", False, 7),
    ]


def test_one_sequence_across_readers_printers_and_scanners(tmp_path: Path) -> None:
    reader = SimReader("R 00 00")
    with EventHub() as hub:
        monitor = ReaderMonitor(SimBackend([reader]), hub=hub, reader_id=lambda n: "front")
        stream = ScanStream(hub=hub)
        everything, watch = hub.subscribe(), hub.subscribe()
        with monitor, tcp_service(tmp_path, hub=hub) as (service, _sim, _server):
            assert service.status(refresh=True).ready
            watch.wait_for(is_event(EventKind.READER_ATTACHED))
            stream.on_status("lane", ScannerState.CONNECTED, "test")
            stream.on_scan("lane", raw("6901234567892"))
            reader.insert(transport_card())
            watch.wait_for(is_event(EventKind.CARD_PRESENT))
        events = everything.drain()
        stream.close()
    sources = {e.source for e in events}
    assert {"readers/front", "scanners/lane", "printers/front"} <= sources
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    scan = next(e for e in events if e.kind == "scan")
    assert isinstance(scan.payload, ScanEvent)
    assert scan.payload.sequence == scan.seq
    assert hub.states()["readers/front"].kind == "card_present"


def test_reader_state_in_the_snapshot_follows_the_card() -> None:
    reader = SimReader("R 00 00")
    with EventHub() as hub:
        monitor = ReaderMonitor(SimBackend([reader]), hub=hub)
        with monitor, hub.subscribe(sources="readers/") as sub:
            sub.wait_for(is_event(EventKind.READER_ATTACHED))
            reader.insert(transport_card(bytes.fromhex("0A0B0C0D")))
            sub.wait_for(is_event(EventKind.CARD_PRESENT))
            with hub.subscribe(sources="readers/") as late:
                (frame,) = late.drain()
            assert (frame.source, frame.kind, frame.snapshot) == (
                "readers/R 00 00",
                "card_present",
                True,
            )
            assert isinstance(frame.payload, ReaderEvent)
            assert frame.payload.uid == bytes.fromhex("0A0B0C0D")
            reader.remove()
            sub.wait_for(is_event(EventKind.CARD_REMOVED))
            with hub.subscribe(sources="readers/") as later:
                (frame,) = later.drain()
            assert frame.kind == "reader_attached"


# --- drop policy and timeouts ----------------------------------------------------------------


def test_a_full_queue_drops_the_oldest_and_the_next_event_says_how_many() -> None:
    with EventHub() as hub, hub.subscribe(maxsize=3) as slow, hub.subscribe() as fast:
        for i in range(10):
            hub.publish("scanners/front", "scan", i)
        got = [slow.get(0) for _ in range(3)]
        assert [e.payload for e in got] == [7, 8, 9]
        assert [e.dropped_before for e in got] == [7, 0, 0]
        assert slow.dropped == 7
        hub.publish("scanners/front", "scan", 10)
        assert slow.get(0).dropped_before == 0  # told once
        assert [e.payload for e in fast.drain()] == list(range(11))


def test_the_hub_counts_every_lost_event_by_kind_even_of_an_ended_subscription() -> None:
    with EventHub() as hub:
        with hub.subscribe(maxsize=2, name="WatchScans pos"):
            for i in range(5):
                hub.publish("scanners/front", "scan", i)
        assert hub.subscriber_counts() == {}  # it ended before anyone looked
        assert hub.dropped_counts() == {"WatchScans": 3}
        with hub.subscribe(maxsize=1, name="#7"), hub.subscribe(name="WatchScans pos"):
            assert hub.subscriber_counts() == {"other": 1, "WatchScans": 1}
            hub.publish("scanners/front", "scan", 5)
            hub.publish("scanners/front", "scan", 6)
        assert hub.dropped_counts() == {"WatchScans": 3, "other": 1}


def test_get_times_out_with_operation_timeout_naming_the_subscription() -> None:
    with EventHub() as hub, hub.subscribe(name="pos-1") as sub:
        started = time.monotonic()
        with pytest.raises(OperationTimeout, match=r"pos-1 within 0\.05 s") as err:
            sub.get(0.05)
        assert time.monotonic() - started >= 0.04
        assert err.value.reason == "DEADLINE_EXCEEDED"
        with pytest.raises(OperationTimeout):
            sub.wait_for(lambda e: False, 0.01)


def test_close_wakes_a_blocked_waiter_and_ends_iteration() -> None:
    hub = EventHub()
    sub = hub.subscribe()
    got: list[BaseException] = []

    def wait() -> None:
        try:
            sub.get(10)
        except SubscriptionClosed as exc:
            got.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    hub.close()
    hub.close()
    waiter.join(2)
    assert not waiter.is_alive()
    assert len(got) == 1
    assert list(sub) == []
    assert hub.subscribe().closed  # a closed hub hands out closed subscriptions
    hub.publish("scanners/front", "scan", "ignored")


def test_a_closed_subscription_drains_what_it_had_then_raises() -> None:
    with EventHub() as hub:
        sub = hub.subscribe()
        hub.publish("scanners/front", "scan", "A")
        sub.close()
        sub.close()
        hub.publish("scanners/front", "scan", "B")
        assert [e.payload for e in sub] == ["A"]
        with pytest.raises(SubscriptionClosed):
            sub.get(0)


# --- resume ----------------------------------------------------------------------------------


def test_resume_within_the_ring_replays_exactly_what_was_missed() -> None:
    with EventHub(history=8) as hub:
        hub.publish("readers/r1", "reader_attached", "r1", state="event")
        with hub.subscribe() as first:
            hub.publish("scanners/front", "scan", "A")
            last_seen = first.drain()[-1].seq
        hub.publish("scanners/front", "scan", "B")
        hub.publish("scanners/front", "scan", "C")
        with hub.subscribe(after=last_seen) as again:
            hub.publish("scanners/front", "scan", "D")
            got = again.drain()
    assert [(e.payload, e.snapshot) for e in got] == [("B", False), ("C", False), ("D", False)]
    assert [e.seq for e in got] == [3, 4, 5]
    assert not again.resynced


def test_resume_after_the_ring_overflowed_gets_a_marked_snapshot() -> None:
    with EventHub(history=2) as hub:
        hub.publish("printers/receipt", "status", "READY", state="event")
        for i in range(5):
            hub.publish("scanners/front", "scan", i)
        with hub.subscribe(after=1) as sub:
            got = sub.drain()
        assert sub.resynced
        assert [(e.source, e.snapshot, e.resync, e.seq) for e in got] == [
            ("printers/receipt", True, True, 6)
        ]
        with hub.subscribe(after=6) as current:
            assert current.drain() == []  # nothing missed, nothing sent


@pytest.mark.parametrize("after", [-1, 3])
def test_resume_from_an_unknown_sequence_is_rejected(after: int) -> None:
    with EventHub() as hub:
        hub.publish("scanners/front", "scan", "A")
        hub.publish("scanners/front", "scan", "B")
        with pytest.raises(InvalidArgument) as err:
            hub.subscribe(after=after)
    assert err.value.field == "after"


# --- filters and views -----------------------------------------------------------------------


def test_filter_by_source_prefix_kind_and_callable() -> None:
    with (
        EventHub() as hub,
        hub.subscribe(sources="readers/") as readers,
        hub.subscribe(sources=["printers/receipt"]) as receipt,
        hub.subscribe(sources="scanners/", kinds=("status",)) as status,
        hub.subscribe(where=lambda e: e.payload == "pick me") as picked,
    ):
        hub.publish("readers", "service_lost", None)
        hub.publish("readers/r1", "card_present", "card")
        hub.publish("printers/receipt", "status", "READY")
        hub.publish("printers/receipt2", "status", "READY")
        hub.publish("scanners/front", "scan", "pick me")
        hub.publish("scanners/front", "status", "CONNECTED")
        assert kinds(readers.drain()) == [
            ("readers", "service_lost"),
            ("readers/r1", "card_present"),
        ]
        assert kinds(receipt.drain()) == [("printers/receipt", "status")]
        assert kinds(status.drain()) == [("scanners/front", "status")]
        assert kinds(picked.drain()) == [("scanners/front", "scan")]


def test_the_scan_stream_masks_per_subscriber_role() -> None:
    with (
        ScanStream() as stream,
        stream.subscribe(Role.POS) as pos,
        stream.subscribe(Role.ISSUER) as issuer,
    ):
        stream.on_scan("front", raw(WECHAT))
        (clear,), (masked,) = pos.drain(), issuer.drain()
    assert isinstance(clear.payload, ScanEvent)
    assert isinstance(masked.payload, ScanEvent)
    assert clear.payload.text == WECHAT
    assert masked.payload.text == "1012**********3456"
    assert clear.seq == masked.seq


def test_a_view_can_hide_and_replace_events() -> None:
    def view(event: Event) -> Event | None:
        return None if event.payload == "secret" else event

    with EventHub() as hub, hub.subscribe(view=view) as sub:
        hub.publish("scanners/front", "scan", "secret")
        hub.publish("scanners/front", "scan", "plain")
        (got,) = sub.drain()
    assert (got.payload, got.dropped_before) == ("plain", 0)  # hidden is not lost


def test_a_raising_view_or_notify_costs_only_its_own_subscriber(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_view(event: Event) -> Event:
        if event.payload == "A":
            raise ValueError("subscriber bug")
        return event

    def broken_notify() -> None:
        raise RuntimeError("consumer bug")

    with (
        EventHub() as hub,
        hub.subscribe(view=broken_view) as bad,
        hub.subscribe(notify=broken_notify) as noisy,
        hub.subscribe() as good,
    ):
        hub.publish("scanners/front", "scan", "A")
        hub.publish("scanners/front", "scan", "B")
        (after,) = bad.drain()
        assert (after.payload, after.dropped_before) == ("B", 1)  # told about the lost one
        assert [e.payload for e in noisy.drain()] == ["A", "B"]
        assert [e.payload for e in good.drain()] == ["A", "B"]
    assert "filter/view failed" in caplog.text
    assert "notify callback failed" in caplog.text


def test_state_can_differ_from_the_event_published() -> None:
    with EventHub() as hub:
        hub.publish("readers/r1", "card_removed", "gone", state=State("reader_attached", "r1"))
        with hub.subscribe() as sub:
            (frame,) = sub.drain()
    assert (frame.kind, frame.payload) == ("reader_attached", "r1")


# --- asyncio ---------------------------------------------------------------------------------


def test_async_subscribers_are_woken_by_a_publisher_thread_without_extra_threads() -> None:
    hub = EventHub()
    threads_before = threading.active_count()
    counts: list[int] = []

    async def consume(n: int) -> list[object]:
        sub = hub.subscribe(sources="scanners/")
        out: list[object] = []
        async for event in sub:
            out.append(event.payload)
            if len(out) == n:
                sub.close()
        return out

    def publisher() -> None:
        for i in range(50):
            hub.publish("scanners/front", "scan", i)
            time.sleep(0.001)

    async def main() -> list[list[object]]:
        tasks = [asyncio.create_task(consume(50)) for _ in range(5)]
        await asyncio.sleep(0.01)  # every consumer is waiting on its future now
        counts.append(threading.active_count())
        thread = threading.Thread(target=publisher)
        thread.start()
        results = await asyncio.gather(*tasks)
        await asyncio.to_thread(thread.join)
        return results

    results = asyncio.run(main())
    hub.close()
    assert counts == [threads_before]  # five async subscribers, not one thread more
    assert results == [list(range(50))] * 5


def test_async_get_times_out_and_close_ends_async_iteration() -> None:
    hub = EventHub()

    async def main() -> list[object]:
        sub = hub.subscribe()
        with pytest.raises(OperationTimeout):
            await sub.get_async(0.02)
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, hub.close)  # close from the loop wakes the waiting iteration
        return [e.payload async for e in sub]

    assert asyncio.run(main()) == []


def test_one_kind_may_be_given_as_a_plain_string() -> None:
    """``kinds="scan"`` means the kind "scan", not the letters s, c, a and n."""
    with EventHub() as hub, hub.subscribe(kinds="scan") as sub:
        hub.publish("scanners/front", "status", "connected")
        hub.publish("scanners/front", "scan", "6901234567892")
        assert [e.kind for e in sub.drain()] == ["scan"]
