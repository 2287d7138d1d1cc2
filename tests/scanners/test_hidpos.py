"""HID-POS scanners: report reassembly, and end to end through pyusb with our simulated backend."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ConfigError
from daemon.events import Subscription
from daemon.scanners import (
    HidPosAssembler,
    Role,
    ScanKind,
    Scanner,
    ScannerState,
    ScanStream,
    build_scanner,
)
from sim.scanners import SimHidPosDevice, SimUsbBackend
from tests.scanners.helpers import next_scan, no_scan, wait_state

VID, PID = 0x0C2E, 0x0B61


def report(data: bytes, *, aim: bytes = b"]Q1", more: bool = False, rid: int = 2) -> bytes:
    """A 64-byte HID-POS input report, built by hand for the assembler tests."""
    out = bytearray(64)
    out[0], out[1] = rid, len(data)
    out[2:5] = aim
    out[5 : 5 + len(data)] = data
    out[63] = 1 if more else 0
    return bytes(out)


# --- reassembly -------------------------------------------------------------------------------


def test_single_report_scan() -> None:
    scan = HidPosAssembler().feed(report(b"4006381333931", aim=b"]E0"), 0)
    assert scan is not None
    assert (scan.data, scan.aim) == (b"4006381333931", "]E0")


def test_continuation_reports_are_joined_and_first_aim_wins() -> None:
    asm = HidPosAssembler()
    assert asm.feed(report(b"A" * 56, more=True), 0) is None
    assert asm.feed(report(b"B" * 56, aim=b"\0\0\0", more=True), 1) is None
    scan = asm.feed(report(b"C" * 3, aim=b"\0\0\0"), 2)
    assert scan is not None
    assert (scan.data, scan.aim) == (b"A" * 56 + b"B" * 56 + b"CCC", "]Q1")


def test_report_without_aim_has_none() -> None:
    scan = HidPosAssembler().feed(report(b"hello", aim=b"\0\0\0"), 0)
    assert scan is not None
    assert scan.aim is None


def test_other_report_ids_are_ignored() -> None:
    asm = HidPosAssembler()
    assert asm.feed(report(b"x", rid=4), 0) is None
    assert asm.stats.ignored_reports == 1


@pytest.mark.parametrize(
    "bad",
    [
        b"\x02\x01",  # shorter than the header
        b"\x02\x3c" + bytes(62),  # length 60 overruns a 64-byte report
    ],
)
def test_malformed_reports_are_counted_and_recovered_from(bad: bytes) -> None:
    asm = HidPosAssembler()
    assert asm.feed(report(b"half", more=True), 0) is None
    assert asm.feed(bad, 1) is None
    assert asm.stats.malformed == 1
    scan = asm.feed(report(b"next"), 2)
    assert scan is not None
    assert scan.data == b"next"  # the half code before the bad report is gone


def test_stalled_continuation_is_abandoned_after_timeout() -> None:
    asm = HidPosAssembler(timeout_s=0.5)
    asm.feed(report(b"stale", more=True), 0)
    scan = asm.feed(report(b"fresh"), 600_000_000)
    assert scan is not None
    assert scan.data == b"fresh"
    assert asm.stats.abandoned == 1


def test_code_longer_than_max_length_is_dropped() -> None:
    asm = HidPosAssembler(max_length=100)
    asm.feed(report(b"A" * 56, more=True), 0)
    assert asm.feed(report(b"A" * 56, more=True), 1) is None
    assert asm.stats.malformed == 1


# --- end to end through pyusb -----------------------------------------------------------------

Rig = tuple[SimHidPosDevice, Subscription, Scanner]


@pytest.fixture
def rig() -> Iterator[Callable[..., Rig]]:
    with contextlib.ExitStack() as stack:

        def make(device: SimHidPosDevice | None = None, **config: Any) -> Rig:
            dev = device if device is not None else SimHidPosDevice(VID, PID)
            backend = SimUsbBackend(dev)
            stream = stack.enter_context(ScanStream())
            sub = stack.enter_context(stream.subscribe(Role.POS))
            table = {"backend": "hidpos", "vid": VID, "pid": PID, "backoff_max_ms": 100, **config}
            scanner = build_scanner("lane1", table, stream, usb_backend=backend)
            stack.enter_context(scanner.start())
            if dev.plugged:
                wait_state(sub, "lane1", ScannerState.CONNECTED)
            return dev, sub, scanner

        yield make


def test_kernel_driver_detached_while_open_and_reattached_on_close(
    rig: Callable[..., Rig],
) -> None:
    dev, sub, scanner = rig(enable_report=True)
    assert (dev.kernel_driver_attached, dev.claimed) == (False, True)
    assert dev.feature_reports == [b"\xfe\x01"]  # HID-POS reporting switched on
    dev.scan("4006381333931", aim="]E0")
    event = next_scan(sub)
    assert (event.text, event.classification.kind) == ("4006381333931", ScanKind.PRODUCT)
    scanner.close()
    assert (dev.kernel_driver_attached, dev.claimed) == (True, False)


def test_long_code_over_several_reports(rig: Callable[..., Rig]) -> None:
    dev, sub, _ = rig()
    code = "会员" * 200  # 1200 bytes of UTF-8: 22 reports
    dev.scan(code, aim="]Q1")
    assert next_scan(sub).text == code


def test_unplug_and_replug_reattaches(rig: Callable[..., Rig]) -> None:
    dev, sub, scanner = rig()
    dev.scan("96385074", aim="]E4")
    first = next_scan(sub)
    dev.unplug()
    wait_state(sub, "lane1", ScannerState.DISCONNECTED)
    dev.replug()  # usbhid binds again on a real replug
    wait_state(sub, "lane1", ScannerState.CONNECTED)
    assert (dev.kernel_driver_attached, dev.claimed) == (False, True)
    dev.scan("4006381333931", aim="]E0")
    second = next_scan(sub)
    assert second.text == "4006381333931"
    assert second.sequence > first.sequence
    assert scanner.reconnects == 1


def test_unplug_mid_continuation_loses_only_that_code(rig: Callable[..., Rig]) -> None:
    dev, sub, _ = rig()
    dev.send_report(report(b"A" * 56, more=True))
    dev.unplug()
    wait_state(sub, "lane1", ScannerState.DISCONNECTED)
    dev.replug()
    wait_state(sub, "lane1", ScannerState.CONNECTED)
    dev.scan("96385074", aim="]E4")
    assert next_scan(sub).text == "96385074"


def test_scanner_waits_for_a_device_that_is_not_there_yet(rig: Callable[..., Rig]) -> None:
    dev = SimHidPosDevice(VID, PID)
    dev.unplug()
    _, sub, _ = rig(dev)
    event = wait_state(sub, "lane1", ScannerState.DISCONNECTED)
    assert "0c2e:0b61" in event.detail
    dev.replug()
    wait_state(sub, "lane1", ScannerState.CONNECTED)
    dev.scan("hello", aim="]Q1")
    assert next_scan(sub).text == "hello"


def test_port_path_selects_one_of_two_identical_scanners() -> None:
    left, right = (
        SimHidPosDevice(VID, PID, port_path=(1, 2)),
        SimHidPosDevice(VID, PID, port_path=(1, 3)),
    )
    backend = SimUsbBackend(left, right)
    table = {"backend": "hidpos", "vid": VID, "pid": PID, "port_path": [1, 3]}
    with (
        ScanStream() as stream,
        stream.subscribe() as sub,
        build_scanner("right", table, stream, usb_backend=backend),
    ):
        wait_state(sub, "right", ScannerState.CONNECTED)
        assert (left.claimed, right.claimed) == (False, True)
        right.scan("R", aim=None)
        assert next_scan(sub).text == "R"


def test_garbage_reports_do_not_stop_the_scanner(rig: Callable[..., Rig]) -> None:
    dev, sub, scanner = rig()
    dev.send_report(b"\x02\xff" + bytes(62))
    dev.send_report(b"\x05" + bytes(63))
    dev.scan("96385074", aim="]E4")
    assert next_scan(sub).text == "96385074"
    no_scan(sub)
    assert scanner.state is ScannerState.CONNECTED


def test_burst_of_500_hidpos_scans_in_order(rig: Callable[..., Rig]) -> None:
    dev, sub, _ = rig()
    codes = [f"{i:08d}" for i in range(500)]
    for code in codes:
        dev.scan(code, aim="]C0")
    events = [next_scan(sub) for _ in codes]
    assert [e.text for e in events] == codes
    assert sub.dropped == 0


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"backend": "hidpos", "pid": PID}, "scanners.x.vid"),
        ({"backend": "hidpos", "vid": 0x10000, "pid": PID}, "scanners.x.vid"),
        ({"backend": "hidpos", "vid": VID, "pid": "0b61"}, "scanners.x.pid"),
        ({"backend": "hidpos", "vid": VID, "pid": PID, "port_path": ["1"]}, "scanners.x.port_path"),
        ({"backend": "hidpos", "vid": VID, "pid": PID, "url": "/dev/x"}, "scanners.x.url"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], key: str) -> None:
    with ScanStream() as stream, pytest.raises(ConfigError) as err:
        build_scanner("x", table, stream)
    assert err.value.key == key


@settings(max_examples=200, deadline=None)
@given(
    reports=st.lists(
        st.binary(max_size=70)
        | st.builds(
            report,
            st.binary(max_size=56),
            aim=st.sampled_from([b"]Q1", b"\0\0\0", b"]E0", b"xyz"]),
            more=st.booleans(),
        ),
        max_size=12,
    )
)
def test_any_report_sequence_is_survived_within_limits(reports: list[bytes]) -> None:
    """Garbage reports (any length, any ID, lying length bytes) never raise; every scan that
    comes out is non-empty and within max_length."""
    asm = HidPosAssembler(max_length=120)
    for n, rep in enumerate(reports):
        scan = asm.feed(rep, n)
        assert scan is None or 0 < len(scan.data) <= 120
