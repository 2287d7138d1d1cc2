"""Serial scanners end to end: simulated scanner on a pty → real pyserial → framing → stream."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ConfigError, ScannerUnavailable
from daemon.events import Subscription
from daemon.scanners import (
    PaymentProvider,
    Role,
    ScanEvent,
    ScanKind,
    Scanner,
    ScannerState,
    ScanStream,
    SerialScanner,
    build_scanner,
)
from sim.scanners import SimSerialScanner
from tests.scanners.helpers import next_scan, no_scan, wait_state, wait_until

Rig = tuple[SimSerialScanner, Subscription, Scanner]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Factory: a plugged sim scanner, a POS subscriber and a started, connected scanner."""
    with contextlib.ExitStack() as stack:

        def make(
            sim_kwargs: dict[str, Any] | None = None, plugged: bool = True, **config: Any
        ) -> Rig:
            link = tmp_path / "ttyScanner"
            sim = stack.enter_context(SimSerialScanner(link, plugged=plugged, **(sim_kwargs or {})))
            stream = stack.enter_context(ScanStream())
            sub = stack.enter_context(stream.subscribe(Role.POS))
            table = {"backend": "serial", "url": str(link), "backoff_max_ms": 100, **config}
            scanner = stack.enter_context(build_scanner("front", table, stream).start())
            if plugged:
                wait_state(sub, "front", ScannerState.CONNECTED)
            return sim, sub, scanner

        yield make


def test_scan_arrives_classified_with_aim(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    sim.scan("4006381333931", aim="]E0")
    event = next_scan(sub)
    assert (event.text, event.aim, event.scanner_id) == ("4006381333931", "]E0", "front")
    assert event.classification.kind is ScanKind.PRODUCT
    assert event.classification.symbology.name == "EAN13"


def test_split_writes_with_pauses_make_one_scan(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    sim.scan("]C10104012345678901\x1d10LOT7", split=[2, 5, 11, 20], pause_s=0.01)
    event = next_scan(sub)
    assert event.aim == "]C1"
    assert event.classification.kind is ScanKind.GS1
    assert [e.ai for e in event.classification.gs1] == ["01", "10"]


def test_crlf_framing(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig({"suffix": b"\r\n"}, suffix="CRLF")
    sim.scan("96385074", split=[9])  # CR and LF in separate writes
    sim.scan("036000291452")
    assert [next_scan(sub).text, next_scan(sub).text] == ["96385074", "036000291452"]


def test_no_suffix_scanner_framed_by_idle_gap(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig({"suffix": b""}, suffix="NONE", idle_gap_ms=30)
    sim.scan("4006381333931", aim="]E0")
    first = next_scan(sub)
    sim.scan("96385074", aim="]E4")
    second = next_scan(sub)
    assert [(first.text, first.suffix_missing), (second.text, second.aim)] == [
        ("4006381333931", False),
        ("96385074", "]E4"),
    ]


def test_missing_suffix_is_flushed_after_timeout(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig(suffix_timeout_ms=100)
    sim.scan("96385074", suffix=b"")
    event = next_scan(sub)
    assert (event.text, event.suffix_missing) == ("96385074", True)


def test_missing_suffix_discard_mode_loses_only_the_fragment(rig: Callable[..., Rig]) -> None:
    sim, sub, scanner = rig(suffix_timeout_ms=50, missing_suffix="discard")
    sim.scan("9638", suffix=b"")
    # The discard is observable as a counter; the next complete code still arrives alone.
    assert isinstance(scanner.backend, SerialScanner)
    framer = scanner.backend.framer
    wait_until(lambda: framer.stats.discarded == 1)
    sim.scan("4006381333931")
    assert next_scan(sub).text == "4006381333931"


def test_garbage_and_nul_bytes_are_stripped(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    sim.write(b"\x00\xff\r\r")  # power-up noise, empty frames
    sim.scan("40063\x0081333931", garbage=b"\x00\x00\xff")
    event = next_scan(sub)
    assert event.text == "4006381333931"
    assert event.classification.valid
    no_scan(sub)


def test_very_long_qr_code(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    code = "".join(chr(0x4E00 + i % 500) for i in range(2000))  # 6000 bytes of UTF-8 Chinese
    sim.scan(code, aim="]Q1")
    event = next_scan(sub)
    assert event.text == code
    assert event.classification.kind is ScanKind.TEXT


def test_over_long_code_is_dropped_and_the_next_one_arrives(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig(max_length=256)
    sim.scan("X" * 1000)
    sim.scan("4006381333931")
    assert next_scan(sub).text == "4006381333931"
    no_scan(sub)


def test_unplug_and_replug_reattaches_without_restart(rig: Callable[..., Rig]) -> None:
    sim, sub, scanner = rig()
    sim.scan("96385074")
    before = next_scan(sub)
    sim.unplug()
    wait_state(sub, "front", ScannerState.DISCONNECTED)
    with pytest.raises(ScannerUnavailable):
        sim.scan("4006381333931")
    sim.plug()
    wait_state(sub, "front", ScannerState.CONNECTED)
    sim.scan("4006381333931")
    after = next_scan(sub)
    assert after.text == "4006381333931"
    assert after.sequence > before.sequence
    assert scanner.reconnects == 1
    assert scanner.state is ScannerState.CONNECTED


def test_unplug_mid_code_drops_the_fragment(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    sim.write(b"400638")
    sim.unplug()
    wait_state(sub, "front", ScannerState.DISCONNECTED)
    sim.plug()
    wait_state(sub, "front", ScannerState.CONNECTED)
    sim.scan("96385074")
    assert next_scan(sub).text == "96385074"


def test_scanner_started_while_unplugged_connects_when_plugged(rig: Callable[..., Rig]) -> None:
    sim, sub, scanner = rig(plugged=False)
    event = wait_state(sub, "front", ScannerState.DISCONNECTED)
    assert "ttyScanner" in event.detail
    sim.plug()
    wait_state(sub, "front", ScannerState.CONNECTED)
    sim.scan("96385074")
    assert next_scan(sub).text == "96385074"
    assert scanner.reconnects == 0


def test_burst_of_500_scans_none_lost_order_kept(rig: Callable[..., Rig]) -> None:
    sim, sub, _ = rig()
    codes = [f"ITEM{i:05d}" for i in range(500)]
    for code in codes:
        sim.scan(code, aim="]C0")
    events = [next_scan(sub) for _ in codes]
    assert [e.text for e in events] == codes
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 500
    assert sub.dropped == 0


def test_payment_code_never_in_logs(
    rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon")
    sim, sub, _ = rig()
    code = "134567890123456789"
    sim.scan(code, aim="]Q1")
    event = next_scan(sub)
    assert event.text == code  # the POS gets it in clear
    assert event.classification.payment is PaymentProvider.WECHAT_PAY
    logging.getLogger("daemon.test").info("event %r", event)  # even a careless log line is masked
    assert code not in caplog.text
    assert "1345**********6789" in caplog.text


def test_close_is_idempotent_and_ends_the_thread(tmp_path: Path) -> None:
    with SimSerialScanner(tmp_path / "tty") as sim, ScanStream() as stream:
        sub = stream.subscribe()
        scanner = build_scanner("s", {"backend": "serial", "url": str(sim.link_path)}, stream)
        scanner.start()
        wait_state(sub, "s", ScannerState.CONNECTED)
        scanner.close()
        scanner.close()
        assert scanner.state is ScannerState.CLOSED
        with pytest.raises(ScannerUnavailable, match="closed"):
            scanner.start()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"backend": "serial"}, "scanners.x.url"),
        ({"backend": "serial", "url": "/dev/null", "suffix": "TAB"}, "scanners.x.suffix"),
        ({"backend": "serial", "url": "/dev/null", "baud": 9600}, "scanners.x.baud"),
        ({"backend": "serial", "url": "/dev/null", "baudrate": 0}, "scanners.x.baudrate"),
        ({"backend": "serial", "url": "/dev/null", "aim": "yes"}, "scanners.x.aim"),
        ({"backend": "serial", "url": "/dev/null", "missing_suffix": "x"}, "scanners.x.missing_suffix"),  # noqa: E501
        ({"backend": "bluetooth"}, "scanners.x.backend"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(table: dict[str, Any], key: str) -> None:
    with ScanStream() as stream, pytest.raises(ConfigError) as err:
        build_scanner("x", table, stream)
    assert err.value.key == key


def test_event_masked_for_technician_but_clear_for_pos(rig: Callable[..., Rig]) -> None:
    sim, pos, scanner = rig()
    stream = scanner.sink
    assert isinstance(stream, ScanStream)
    with stream.subscribe(Role.TECHNICIAN) as tech:
        sim.scan("2812345678901234", aim="]Q1")
        for_pos, for_tech = next_scan(pos), next_scan(tech)
    assert isinstance(for_tech, ScanEvent)
    assert (for_pos.text, for_pos.masked) == ("2812345678901234", False)
    assert (for_tech.text, for_tech.masked) == ("2812********1234", True)
    assert for_tech.sequence == for_pos.sequence
