"""The status loop never dies, never blocks on a slow subscriber, and always joins."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from daemon.errors import PcscUnavailable
from daemon.events import EventHub
from daemon.readers.backends import ReaderState
from daemon.readers.monitor import EventKind, ReaderEvent, ReaderMonitor
from sim.backend import CheckedSimConnection, SimBackend
from sim.reader import SimReader
from sim.store import transport_card
from tests.pcscd_stack import is_event


class FlakyBackend(SimBackend):
    """A SimBackend whose status wait blows up a few times (a bug, then the service)."""

    def __init__(self, reader: SimReader) -> None:
        super().__init__([reader])
        self.failures: list[BaseException] = [RuntimeError("driver bug"), PcscUnavailable("gone")]

    def wait_for_change(
        self, known: Mapping[str, ReaderState] | None, timeout_s: float
    ) -> dict[str, ReaderState]:
        if self.failures:
            raise self.failures.pop(0)
        return super().wait_for_change(known, timeout_s)


def test_monitor_survives_unexpected_errors_and_service_loss() -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card(bytes.fromhex("0A0B0C0D")))
    monitor = ReaderMonitor(FlakyBackend(reader), backoff_s=(0.001, 0.01))
    sub = monitor.hub.subscribe()
    with monitor:
        sub.wait_for(is_event(EventKind.SERVICE_LOST))
        restored = sub.wait_for(is_event(EventKind.SERVICE_RESTORED)).payload
        present = sub.wait_for(is_event(EventKind.CARD_PRESENT)).payload
        assert present.seq > restored.seq
        assert present.uid == bytes.fromhex("0A0B0C0D")
    assert monitor.service_up is True


def test_failing_callback_and_full_queue_do_not_stop_events() -> None:
    reader = SimReader("R 00 00")
    seen: list[ReaderEvent] = []
    got_removal = threading.Event()

    def bad(event: ReaderEvent) -> None:
        raise ValueError("subscriber bug")

    def good(event: ReaderEvent) -> None:
        seen.append(event)
        if event.kind is EventKind.CARD_REMOVED:
            got_removal.set()

    monitor = ReaderMonitor(SimBackend([reader]))
    tiny = monitor.hub.subscribe(maxsize=1)
    monitor.subscribe(bad)
    monitor.subscribe(good)
    with monitor:
        reader.insert(transport_card())
        tiny.wait_for(is_event(EventKind.CARD_PRESENT))
        reader.remove()
        assert got_removal.wait(10)
    kinds = [e.kind for e in seen]
    assert kinds == [EventKind.READER_ATTACHED, EventKind.CARD_PRESENT, EventKind.CARD_REMOVED]
    assert [e.seq for e in seen] == sorted({e.seq for e in seen})
    monitor.unsubscribe(good)
    tiny.close()


def test_subscription_drops_oldest_and_counts() -> None:
    with EventHub() as hub, hub.subscribe(maxsize=2) as sub:
        for seq in range(1, 6):
            hub.publish("readers/R", "card_present", ReaderEvent(seq, EventKind.CARD_PRESENT, "R"))
        assert sub.dropped == 3
        first, second = sub.get(0), sub.get(0)
    assert [first.payload.seq, second.payload.seq] == [4, 5]
    assert (first.dropped_before, second.dropped_before) == (3, 0)


def test_uid_failure_is_reported_not_raised() -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    reader.faults.lose_response(1)  # the monitor's GET DATA loses its answer
    monitor = ReaderMonitor(SimBackend([reader]))
    sub = monitor.hub.subscribe()
    with monitor:
        event = sub.wait_for(is_event(EventKind.CARD_PRESENT)).payload
    assert event.uid is None
    assert event.error == "CARD_RESPONSE_LOST"
    assert event.card_type == "MIFARE Classic 1K"


def test_close_is_idempotent_and_restartable() -> None:
    monitor = ReaderMonitor(SimBackend([SimReader("R 00 00")]))
    monitor.close()
    monitor.start()
    monitor.start()
    monitor.close()
    monitor.close()
    assert monitor.snapshot() == {"R 00 00": None}


class BrokenConnect(SimBackend):
    """``connect`` fails once like a driver bug (pyscard raises TypeError on a stale handle)."""

    def __init__(self, reader: SimReader) -> None:
        super().__init__([reader])
        self.failures = 1

    def connect(self, reader: str, *, exclusive: bool = False) -> CheckedSimConnection:
        if self.failures:
            self.failures -= 1
            raise TypeError("driver bug")
        return super().connect(reader, exclusive=exclusive)


def test_a_driver_bug_while_reading_the_uid_costs_that_uid_not_the_monitor() -> None:
    reader = SimReader("R 00 00")
    reader.insert(transport_card(bytes.fromhex("0A0B0C0D")))
    monitor = ReaderMonitor(BrokenConnect(reader))
    sub = monitor.hub.subscribe()
    with monitor:
        first = sub.wait_for(is_event(EventKind.CARD_PRESENT)).payload
        assert (first.uid, first.error) == (None, "TypeError")
        assert first.card_type == "MIFARE Classic 1K"
        reader.remove()
        sub.wait_for(is_event(EventKind.CARD_REMOVED))
        reader.insert(transport_card(bytes.fromhex("01020304")))
        second = sub.wait_for(is_event(EventKind.CARD_PRESENT)).payload
        assert second.uid == bytes.fromhex("01020304")
