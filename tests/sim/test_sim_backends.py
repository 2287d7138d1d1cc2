"""The simulated backends chosen by name in the config (``backend = "sim"``), driven through the
daemon's own code paths: reader monitor and pool, printer service, scanner thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from daemon.config import parse_config
from daemon.errors import ConfigError, InvalidArgument
from daemon.printers import PrinterConfig, PrinterService
from daemon.printers.spool import JobState
from daemon.readers.monitor import EventKind, ReaderEvent, ReaderMonitor
from daemon.readers.workers import ReaderPool
from daemon.scanners.base import RawScan, ScannerState
from daemon.scanners.config import build_scanner
from sim.backend import SimBackend
from sim.printer.backend import SimPrinterBackend
from sim.scanners.backend import SimScanner
from sim.store import transport_card
from tests.printers.helpers import simple_receipt

_DAEMON = "[daemon]\nkeystore_credentials = true\n"
_READERS = (
    _DAEMON + '[readers]\nbackend = "sim"\n'
    '[readers.front]\nmatch = "ACS ACR1252*PICC*"\ndialect = "acr1252u"\n'
    '[readers.side]\nmatch = "*PICC*"\ndialect = "acr122u"\n'
    '[readers.spare]\nmatch = "Spare*"\n'
    '[readers.desk]\nmatch = "HID Global OMNIKEY 5?21*"\ndialect = "omnikey"\n'
    '[readers.lab]\nmatch = "Lab reader ??"\ndialect = "generic"\n'
)


class _Events:
    """Collects monitor events; waits for one (the monitor calls back on its thread)."""

    def __init__(self) -> None:
        self.events: list[ReaderEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: ReaderEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, kind: EventKind, reader: str, timeout: float = 10.0) -> ReaderEvent:
        def found() -> ReaderEvent | None:
            return next((e for e in self.events if e.kind is kind and e.reader == reader), None)

        with self._cond:
            assert self._cond.wait_for(lambda: found() is not None, timeout), (kind, reader)
            event = found()
            assert event is not None
            return event


def test_sim_readers_come_from_the_config_with_names_their_patterns_match() -> None:
    config = parse_config(_READERS).readers
    backend = config.create_backend()
    assert isinstance(backend, SimBackend)
    by_id = {}
    for reader in backend.readers:
        owner = config.for_reader(reader.name)
        assert owner is not None, reader.name
        by_id[owner.id] = reader
    assert sorted(by_id) == ["desk", "front", "lab", "side", "spare"]
    assert by_id["front"].name == "ACS ACR1252 1S CL Reader PICC 00 00"
    assert by_id["side"].name == "ACS ACR122U PICC Interface 00 00"
    assert by_id["spare"].name == "Spare"  # the model's names all belong to front
    assert by_id["desk"].name == "HID Global OMNIKEY 5x21 Smart Card Reader 00 00"
    assert by_id["lab"].name == "Lab reader 00"
    models = {rid: r.model for rid, r in by_id.items()}
    assert models == {
        "front": "acr1252u",
        "side": "acr122u",
        "spare": "acr1252u",  # dialect auto
        "desk": "omnikey5x21",
        "lab": "generic",
    }

    events = _Events()
    pool = ReaderPool(backend.connect)
    monitor = ReaderMonitor(backend)
    monitor.subscribe(pool.handle_event)
    monitor.subscribe(events)
    with backend, pool, monitor:
        front = by_id["front"]
        events.wait(EventKind.READER_ATTACHED, front.name)
        front.insert(transport_card())
        present = events.wait(EventKind.CARD_PRESENT, front.name)
        assert present.uid is not None
        owner = config.for_reader(present.reader or "")
        assert owner is not None
        assert owner.id == "front"
        assert front.name in pool.names()


def test_a_dialect_the_simulator_has_no_model_for_names_the_key() -> None:
    text = _DAEMON + '[readers]\nbackend = "sim"\n[readers.x]\nmatch = "*"\ndialect = "identiv"\n'
    config = parse_config(text).readers
    with pytest.raises(ConfigError) as err:
        config.create_backend()
    assert err.value.key == "readers.x.dialect"
    assert "acr1252u" in str(err.value)


def test_a_pattern_no_simulated_name_can_own_is_refused() -> None:
    text = (
        _DAEMON
        + '[readers]\nbackend = "sim"\n[readers.a]\nmatch = "*"\n[readers.b]\nmatch = "x*"\n'
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text).readers.create_backend()
    assert err.value.key == "readers.b.match"


def test_printer_service_prints_on_the_simulated_printer(tmp_path: Path) -> None:
    config = PrinterConfig.from_mapping("till", {"backend": "sim", "profile": "zh-80"})
    with PrinterService(config, tmp_path / "spool.db") as service:
        backend = service.printer.backend
        assert isinstance(backend, SimPrinterBackend)
        job = service.submit(simple_receipt("A-7"))
        done = service.wait_job(job.id, 10)
        assert done.state is JobState.PRINTED, done.detail
        receipts = backend.printer.wait_receipts(1)
    text = "\n".join(receipts[0].texts())
    assert "TEST SHOP" in text
    assert "苹果汁" in text
    assert receipts[0].errors == []


def test_an_unplugged_simulated_printer_is_offline(tmp_path: Path) -> None:
    config = PrinterConfig.from_mapping("till", {"backend": "sim"})
    with PrinterService(config, tmp_path / "spool.db") as service:
        backend = service.printer.backend
        assert isinstance(backend, SimPrinterBackend)
        backend.unplug()
        assert not service.status(refresh=True, timeout=5).reachable
        backend.plug()
        assert service.status(refresh=True, timeout=5).reachable


def test_an_unknown_key_in_a_sim_printer_table_names_it() -> None:
    with pytest.raises(ConfigError) as err:
        PrinterConfig.from_mapping("till", {"backend": "sim", "paper": 100})
    assert err.value.key == "printers.till.paper"


class _Sink:
    """A scan sink as the scanner thread sees one; records what arrives."""

    def __init__(self) -> None:
        self.scans: list[RawScan] = []
        self.states: list[ScannerState] = []
        self._cond = threading.Condition()

    def on_scan(self, scanner_id: str, raw: RawScan) -> None:
        with self._cond:
            self.scans.append(raw)
            self._cond.notify_all()

    def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None:
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()

    def wait(self, scans: int = 0, state: ScannerState | None = None) -> None:
        def done() -> bool:
            return len(self.scans) >= scans and (state is None or self.states[-1:] == [state])

        with self._cond:
            assert self._cond.wait_for(done, 10), (self.scans, self.states)


def test_a_scanner_built_from_a_sim_table_delivers_an_injected_scan() -> None:
    sink = _Sink()
    with build_scanner("till", {"backend": "sim", "backoff_max_ms": 100}, sink) as scanner:
        sim = scanner.backend
        assert isinstance(sim, SimScanner)
        scanner.start()
        assert sim.wait_open()
        assert sim.inject(b"6901234567892", aim="]E0")
        sink.wait(scans=1)
        sim.unplug()
        assert not sim.inject(b"lost")
        sink.wait(state=ScannerState.DISCONNECTED)
        sim.replug()
        sink.wait(state=ScannerState.CONNECTED)
        assert sim.wait_open()
        assert sim.inject(b"4006381333931")
        sink.wait(scans=2)
    assert [(s.data, s.aim) for s in sink.scans] == [
        (b"6901234567892", "]E0"),
        (b"4006381333931", None),
    ]
    assert scanner.reconnects == 1


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"backend": "sim", "url": "/dev/ttyACM0"}, "scanners.x.url"),
        ({"backend": "sim", "max_length": 0}, "scanners.x.max_length"),
        ({"backend": "sim", "one_shot": "yes"}, "scanners.x.one_shot"),
        ({"backend": "sim", "aim": 1}, "scanners.x.aim"),
        ({"kind": "sim"}, "scanners.x.kind"),
    ],
)
def test_bad_sim_scanner_tables_name_the_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_scanner("x", table, _Sink())
    assert err.value.key == key


def test_a_sim_scanner_without_aim_delivers_scans_without_an_identifier() -> None:
    sink = _Sink()
    with build_scanner("till", {"backend": "sim", "aim": False, "max_length": 4}, sink) as scanner:
        sim = scanner.backend
        assert isinstance(sim, SimScanner)
        scanner.start()
        assert sim.wait_open()
        assert sim.inject(b"6901234567892", aim="]E0")
        sink.wait(scans=1)
    assert [(s.data, s.aim) for s in sink.scans] == [(b"6901", None)]


def test_a_malformed_aim_identifier_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="AIM"):
        SimScanner().inject(b"123", aim="E0")
