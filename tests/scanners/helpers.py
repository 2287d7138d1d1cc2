"""Shared helpers for the scanner tests: wait for stream events without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.events import Event, Subscription
from daemon.scanners import ScanEvent, ScannerState, StatusEvent, StreamEvent

WAIT_S = 5.0


def next_event(
    sub: Subscription, match: Callable[[StreamEvent], bool], timeout: float = WAIT_S
) -> StreamEvent:
    """The next event payload that matches (others are skipped); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no matching event arrived in time"
        event = payload(sub.get(left))
        if match(event):
            return event


def payload(event: Event) -> StreamEvent:
    """A hub event's scanner payload."""
    assert isinstance(event.payload, ScanEvent | StatusEvent), event
    return event.payload


def drain(sub: Subscription) -> list[StreamEvent]:
    """Every scanner payload queued right now."""
    return [payload(e) for e in sub.drain()]


def next_scan(sub: Subscription, timeout: float = WAIT_S) -> ScanEvent:
    event = next_event(sub, lambda e: isinstance(e, ScanEvent), timeout)
    assert isinstance(event, ScanEvent)
    return event


def wait_state(sub: Subscription, scanner_id: str, state: ScannerState) -> StatusEvent:
    event = next_event(
        sub,
        lambda e: isinstance(e, StatusEvent) and e.scanner_id == scanner_id and e.state is state,
    )
    assert isinstance(event, StatusEvent)
    return event


def no_scan(sub: Subscription) -> None:
    """Nothing but status events queued right now."""
    for event in drain(sub):
        assert not isinstance(event, ScanEvent), f"unexpected {event!r}"


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll a condition another thread will make true (a counter, a state); fail on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)
