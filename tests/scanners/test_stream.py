"""The scan stream: sequence numbers, fan-out, bounded queues, one-shot, duplicates, masking."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from daemon.errors import ConfigError, InvalidArgument, OperationTimeout, SubscriptionClosed
from daemon.events import Event, EventHub, Subscription
from daemon.scanners import (
    Classifier,
    MemberTokenVerifier,
    RawScan,
    Role,
    ScanEvent,
    ScanKind,
    ScannerState,
    ScanStream,
    StatusEvent,
    build_scanner,
)
from sim.scanners import SimHidPosDevice, SimUsbBackend, make_member_token
from tests.scanners.helpers import next_scan, wait_state, wait_until

S = 1_000_000_000  # ns
KEY = b"member-key-0123456789abcdef"
WECHAT = "101234567890123456"


def payload(event: Event) -> Any:
    """An event's payload as the scan or status it is (the hub types it ``object``)."""
    return event.payload


def raw(text: str, at_s: float = 0.0, aim: str | None = "]Q1") -> RawScan:
    return RawScan(data=text.encode(), aim=aim, received_ns=int(at_s * S))


def drain(sub: Subscription) -> list[ScanEvent]:
    return [e.payload for e in sub.drain() if isinstance(e.payload, ScanEvent)]


def test_every_subscriber_sees_the_same_ordered_sequence() -> None:
    with ScanStream() as stream, stream.subscribe() as a, stream.subscribe() as b:
        for i in range(20):
            stream.on_scan("front" if i % 2 else "back", raw(f"CODE{i}", i))
        ea, eb = drain(a), drain(b)
    assert [e.text for e in ea] == [f"CODE{i}" for i in range(20)]
    assert [e.sequence for e in ea] == [e.sequence for e in eb] == list(range(1, 21))


def test_status_events_share_the_sequence() -> None:
    with ScanStream() as stream, stream.subscribe() as sub:
        stream.on_status("front", ScannerState.CONNECTED, "serial /dev/x")
        stream.on_scan("front", raw("A"))
        first, second = sub.get(0), sub.get(0)
        assert isinstance(first.payload, StatusEvent)
        assert isinstance(second.payload, ScanEvent)
        assert (first.payload.sequence, second.payload.sequence) == (1, 2)
        assert (first.seq, second.seq) == (1, 2)
        assert (first.source, first.kind, second.kind) == ("scanners/front", "status", "scan")
        assert stream.snapshot() == (2, {"front": ScannerState.CONNECTED})


def test_a_new_subscriber_sees_each_scanners_status_first() -> None:
    with ScanStream() as stream:
        stream.on_status("front", ScannerState.CONNECTED, "serial /dev/x")
        stream.on_status("back", ScannerState.DISCONNECTED, "unplugged")
        stream.on_scan("front", raw("old"))
        with stream.subscribe() as sub:
            frames = sub.drain()
    assert [(f.source, payload(f).state, f.snapshot, f.seq) for f in frames] == [
        ("scanners/back", ScannerState.DISCONNECTED, True, 3),
        ("scanners/front", ScannerState.CONNECTED, True, 3),
    ]


def test_late_subscriber_starts_at_its_subscription() -> None:
    with ScanStream() as stream:
        stream.on_scan("front", raw("old"))
        with stream.subscribe() as sub:
            stream.on_scan("front", raw("new"))
            assert [(e.text, e.sequence) for e in drain(sub)] == [("new", 2)]


def test_slow_subscriber_drops_and_counts_without_affecting_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        ScanStream() as stream,
        stream.subscribe(maxsize=3) as slow,
        stream.subscribe(Role.TECHNICIAN) as fast,
    ):
        for i in range(10):
            stream.on_scan("front", raw(f"C{i}"))
        got = slow.drain()
        assert [payload(e).text for e in got] == ["C7", "C8", "C9"]  # the oldest went
        assert [e.dropped_before for e in got] == [7, 0, 0]
        assert slow.dropped == 7
        assert len(drain(fast)) == 10
        assert fast.dropped == 0
    assert "too slow" in caplog.text


def test_one_shot_delivers_one_scan_until_rearmed() -> None:
    with ScanStream() as stream, stream.subscribe() as sub:
        stream.set_one_shot("front")
        stream.on_scan("front", raw("first"))
        stream.on_scan("front", raw("second"))
        stream.on_scan("back", raw("other scanner"))
        assert not stream.is_armed("front")
        stream.arm("front")
        stream.on_scan("front", raw("third"))
        assert [e.text for e in drain(sub)] == ["first", "other scanner", "third"]
        assert stream.stats.ignored_while_disarmed == 1
        stream.set_one_shot("front", False)
        stream.on_scan("front", raw("fourth"))
        stream.on_scan("front", raw("fifth"))
        assert [e.text for e in drain(sub)] == ["fourth", "fifth"]


def test_one_shot_from_config_applies_to_the_stream() -> None:
    dev = SimHidPosDevice()
    table = {"backend": "hidpos", "vid": dev.vid, "pid": dev.pid, "one_shot": True}
    with (
        ScanStream() as stream,
        stream.subscribe() as sub,
        build_scanner("lane", table, stream, usb_backend=SimUsbBackend(dev)),
    ):
        wait_state(sub, "lane", ScannerState.CONNECTED)
        dev.scan("A")
        assert next_scan(sub).text == "A"
        dev.scan("B")  # ignored: not re-armed
        wait_until(lambda: stream.stats.ignored_while_disarmed == 1)
        stream.arm("lane")
        dev.scan("C")
        assert next_scan(sub).text == "C"


def test_duplicate_window_is_per_scanner_and_slides() -> None:
    with ScanStream(duplicate_window_s=1.0) as stream, stream.subscribe() as sub:
        stream.on_scan("front", raw("X", 0.0))
        stream.on_scan("front", raw("X", 0.5))  # duplicate
        stream.on_scan("back", raw("X", 0.6))  # other scanner: a real second scan
        stream.on_scan("front", raw("Y", 0.7))  # other code
        stream.on_scan("front", raw("X", 1.4))  # 0.9 s after the last read of X: still held
        stream.on_scan("front", raw("X", 2.5))  # quiet for 1.1 s: a new scan
        got = [(e.scanner_id, e.text) for e in drain(sub)]
    assert got == [("front", "X"), ("back", "X"), ("front", "Y"), ("front", "X")]
    assert stream.stats.duplicates_suppressed == 2


def test_no_duplicate_window_delivers_every_read() -> None:
    with ScanStream() as stream, stream.subscribe() as sub:
        for _ in range(3):
            stream.on_scan("front", raw("X", 0))
        assert len(drain(sub)) == 3


@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.ISSUER])
def test_sensitive_codes_masked_for_other_roles(role: Role) -> None:
    verifier = MemberTokenVerifier(KEY, clock=lambda: 0)
    token = make_member_token(KEY, "10086", 100)
    with (
        ScanStream(Classifier(verifier)) as stream,
        stream.subscribe(Role.POS) as pos,
        stream.subscribe(role) as other,
    ):
        for text in (WECHAT, token, "4006381333931"):
            stream.on_scan("front", raw(text, aim=None))
        clear, masked = drain(pos), drain(other)
    assert [e.text for e in clear] == [WECHAT, token, "4006381333931"]
    assert [e.text for e in masked] == [
        "1012**********3456",
        token.rsplit(".", 1)[0] + "." + "*" * 32,
        "4006381333931",
    ]
    assert [e.masked for e in masked] == [True, True, False]
    assert masked[1].classification.member_id == "10086"
    assert masked[0].classification.kind is ScanKind.PAYMENT


def test_payment_code_absent_from_debug_logs_including_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon")
    with ScanStream(duplicate_window_s=5) as stream, stream.subscribe(Role.TECHNICIAN) as sub:
        stream.on_scan("front", raw(WECHAT, 0))
        stream.on_scan("front", raw(WECHAT, 1))
        event = sub.get(0).payload
    assert WECHAT not in caplog.text
    assert WECHAT not in repr(event)
    assert caplog.text.count("1012**********3456") == 2


def test_subscription_timeout_close_and_notify() -> None:
    calls: list[int] = []
    with ScanStream() as stream:
        sub = stream.subscribe(notify=lambda: calls.append(1))
        with pytest.raises(OperationTimeout, match=r"within 0\.01 s"):
            sub.get(timeout_s=0.01)
        stream.on_scan("front", raw("A"))
        assert calls == [1]
        assert sub.pending() == 1
        sub.close()
        sub.close()
        assert payload(sub.get(0)).text == "A"  # what was queued can still be drained
        with pytest.raises(SubscriptionClosed, match="closed"):
            sub.get(0)
        stream.on_scan("front", raw("B"))
        assert sub.pending() == 0


def test_stream_close_closes_subscriptions() -> None:
    stream = ScanStream()
    sub = stream.subscribe()
    stream.close()
    stream.close()
    with pytest.raises(SubscriptionClosed):
        sub.get(0)


def test_a_shared_hub_outlives_the_stream_and_numbers_across_it() -> None:
    with EventHub() as hub:
        hub.publish("printers/receipt", "status", "READY", state="event")
        with ScanStream(hub=hub) as stream:
            scans = stream.subscribe()
            stream.on_scan("front", raw("A"))
            assert drain(scans)[0].sequence == 2  # the hub's number, not the stream's
        assert not scans.closed  # a shared hub is the daemon's to close
    assert scans.closed


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"duplicate_window_s": -1}, "scanners.duplicate_window_s"),
        ({"default_queue": 0}, "scanners.subscriber_queue"),
        ({"history": -1}, "scanners.replay_history"),
    ],
)
def test_stream_config_errors(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScanStream(**kwargs)
    assert err.value.key == key


class FlakySink(ScanStream):
    """A sink whose first delivery blows up (a bug in a consumer), then works."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def on_scan(self, scanner_id: str, raw: RawScan) -> None:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError(f"consumer bug on {raw.data.decode()}")  # quotes the scan
        super().on_scan(scanner_id, raw)


def test_a_failing_sink_does_not_kill_the_reader_thread(caplog: pytest.LogCaptureFixture) -> None:
    dev = SimHidPosDevice()
    sink = FlakySink()
    table = {"backend": "hidpos", "vid": dev.vid, "pid": dev.pid}
    with (
        sink,
        sink.subscribe() as sub,
        build_scanner("lane", table, sink, usb_backend=SimUsbBackend(dev)),
    ):
        wait_state(sub, "lane", ScannerState.CONNECTED)
        dev.scan(WECHAT)  # lost to the bug
        dev.scan("delivered")
        assert next_scan(sub).text == "delivered"
    assert "scan sink failed: RuntimeError" in caplog.text
    assert "in on_scan" in caplog.text  # where it was raised, for the developer
    assert WECHAT not in caplog.text


def test_importing_the_daemon_imports_no_hardware_library() -> None:
    code = (
        "import sys, daemon, daemon.scanners, daemon.scanners.classify, daemon.scanners.stream;"
        "bad = [m for m in ('serial', 'usb', 'evdev', 'smartcard') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_failing_notify_callback_costs_no_one_their_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("consumer bug")

    with ScanStream() as stream, stream.subscribe(notify=broken) as a, stream.subscribe() as b:
        stream.on_scan("front", raw("A"))
        assert [e.text for e in drain(a)] == [e.text for e in drain(b)] == ["A"]
    assert "notify callback failed" in caplog.text


def test_resubscribe_after_sequence_replays_without_gap_or_duplicate() -> None:
    with ScanStream(history=10) as stream:
        with stream.subscribe(Role.TECHNICIAN) as first:
            stream.on_scan("front", raw("A"))
            stream.on_scan("front", raw(WECHAT))
            last_seen = drain(first)[0].sequence  # the client got "A", then disconnected
        stream.on_scan("front", raw("C"))
        with stream.subscribe(Role.TECHNICIAN, after=last_seen) as again:
            stream.on_scan("front", raw("D"))
            got = drain(again)
        assert [e.text for e in got] == ["1012**********3456", "C", "D"]  # masked on replay too
        assert [e.sequence for e in got] == [2, 3, 4]
        assert not again.resynced


def test_resubscribe_too_late_gets_a_fresh_snapshot_marked_resync() -> None:
    with ScanStream(history=2) as stream:
        stream.on_status("front", ScannerState.CONNECTED, "serial")
        for i in range(5):
            stream.on_scan("front", raw(f"C{i}"))
        with stream.subscribe(after=1) as sub:  # C0..C2 are gone from the ring
            frames = sub.drain()
            assert sub.resynced
        assert [(f.kind, f.snapshot, f.resync, f.seq) for f in frames] == [
            ("status", True, True, 6)
        ]


@pytest.mark.parametrize("after", [-1, 6])
def test_resubscribe_from_an_unknown_sequence_is_rejected(after: int) -> None:
    with ScanStream() as stream:
        for i in range(5):
            stream.on_scan("front", raw(f"C{i}"))
        with pytest.raises(InvalidArgument) as err:
            stream.subscribe(after=after)
        assert err.value.field == "after"
