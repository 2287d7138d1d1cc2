"""The station: one store PC's running whole, built from its config file.

Why one composition root: the gRPC server, the technician CLI's server side, the demo store, the
benchmarks and the tests all need the same wiring (keystore → journal → reader backend →
monitor → reader pool → member card service; printers on one durable spool; scanners on one
scan stream; one event hub), started in one order and stopped in the reverse one. Written once
here, nothing above has to know how the parts fit, and a part nobody closed cannot be left
behind.

Devices are reached by their stable config ids: ``readers/front`` (or just ``front``),
``printers/receipt``, ``scanners/front``. A PC/SC reader gets the id of the first
``[readers.<id>]`` whose ``match`` pattern fits its name; a reader no table matches still
works (defaults) under an id made from its name, so a technician can see and probe it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from daemon import metrics
from daemon.config import DEFAULT_JOB_DEADLINE_MS, DaemonConfig, ReaderConfig, load_config
from daemon.diagnostics.probe import probe_job
from daemon.diagnostics.report import ProbeResult
from daemon.errors import (
    ConfigError,
    DeviceNotFound,
    FraudDetected,
    ReaderBusy,
    ReaderUnavailable,
    WriteUnconfirmed,
)
from daemon.events import EventHub
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard.issuing import IssueResult, Personaliser
from daemon.membercard.jobs import ReaderProfile, card_job
from daemon.membercard.requests import (
    CardRequest,
    EraseCard,
    IssueCard,
    ReadCard,
    ReplaceCard,
    ValueRequest,
)
from daemon.membercard.service import CardInfo, MemberCardService, OpResult
from daemon.printers.backend import PrinterBackend, PrinterConfig
from daemon.printers.service import PrinterService
from daemon.printers.spool import Spool
from daemon.readers.backends import ReaderBackend
from daemon.readers.connection import ClosesOnExit
from daemon.readers.monitor import ReaderMonitor
from daemon.readers.trace import ApduTrace
from daemon.readers.workers import DEFAULT_MAX_QUEUE, JobContext, ReaderPool, ReaderWorker
from daemon.scanners.stream import ScanStream
from daemon.scanners.worker import Scanner

if TYPE_CHECKING:
    from daemon.ledger.store import StoreLedger

__all__ = ["MissingReader", "ReaderInfo", "Station"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

SPOOL_FILE = "spool.sqlite3"
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """One attached reader as the station knows it."""

    id: str  # stable: the [readers.<id>] table it matched, or one made from its name
    name: str  # the PC/SC reader name
    configured: bool  # a [readers.<id>] table matched it
    dialect: str
    queue_size: int
    job_deadline_ms: int
    match: str = ""  # the matched table's ``match`` pattern; "" when no table matched

    @property
    def path(self) -> str:
        return f"readers/{self.id}"


@dataclass(frozen=True, slots=True)
class MissingReader:
    """A ``[readers.<id>]`` table that no attached PC/SC reader matches (unplugged, or its
    ``match`` pattern does not fit the name): listed so a technician sees it is missing."""

    id: str
    match: str
    dialect: str  # as configured: a dialect name or "auto"

    @property
    def path(self) -> str:
        return f"readers/{self.id}"


class Station(ClosesOnExit):
    """Everything one store PC runs. ``start()`` opens it all; ``close()`` (idempotent) stops it
    in the reverse order. A context manager: ``with Station.from_config(path) as station:``."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        keystore: Keystore | None = None,
        today: Callable[[], dt.date] = dt.date.today,
        usb_backend: Any = None,
    ) -> None:
        """``usb_backend``: a pyusb backend for USB printers and HID-POS scanners instead of
        libusb (the simulator's USB bus in tests and benchmarks; never set in production)."""
        keys = keystore if keystore is not None else config.keystore
        if keys is None:
            raise ConfigError(
                "daemon.keystore_file", "the master keys were not loaded (load the config "
                "with its keys, or pass keystore=)",
            )  # fmt: skip
        self.config = config
        self.keystore = keys
        self.programme = config.membercard
        self._today = today
        self._usb_backend = usb_backend
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._readers: dict[str, ReaderInfo] = {}  # PC/SC name -> info
        self._profiles: dict[str, ReaderProfile] = {}  # PC/SC name -> dialect + APDU trace
        self.hub = EventHub()
        self.journal: Journal | None = None
        self.backend: ReaderBackend | None = None
        self.monitor: ReaderMonitor | None = None
        self.pool: ReaderPool | None = None
        self.cards: MemberCardService | None = None
        self.personaliser: Personaliser | None = None
        self.spool: Spool | None = None
        self.ledger: StoreLedger | None = None
        self.scans: ScanStream | None = None
        self._printers: dict[str, PrinterService] = {}
        self._scanners: dict[str, Scanner] = {}
        self._beats: dict[str, _Heartbeat] = {}  # PC/SC name -> the worker's heartbeat

    @classmethod
    def from_config(cls, source: DaemonConfig | str | os.PathLike[str], **options: Any) -> Station:
        """A station (not started) from a config file path (loaded with its keys, validated
        whole) or an already loaded :class:`DaemonConfig`."""
        config = source if isinstance(source, DaemonConfig) else load_config(source)
        return cls(config, **options)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Open the journal, the readers, the printers and the scanners, in that order.

        A part that fails to start stops the parts already started and raises."""
        with self._lock:
            if self._closed:
                raise ReaderUnavailable("the station is closed")
            if self._started:
                return self
            self._started = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        logger.info(
            "station started: %d printer(s), %d scanner(s), reader backend %s",
            len(self._printers),
            len(self._scanners),
            self.config.readers.backend,
        )
        return self

    def _start(self) -> None:
        daemon = self.config.daemon
        _opened("daemon.state_dir", "the state directory", daemon.state_dir, _make_dir)
        self.journal = _opened("daemon.journal_path", "the journal", daemon.journal_path, Journal)
        for op in ("record_intent", "finish"):  # metrics: fsync'd journal write latency
            setattr(self.journal, op, metrics.timed(op, getattr(self.journal, op)))
        self.cards = MemberCardService(
            self.keystore, self.journal, self.programme, today=self._today
        )
        self.personaliser = Personaliser(
            self.keystore, self.journal, self.programme, today=self._today
        )
        if self.config.ledger is not None:  # the chain ledger: outbox, shipper, online check
            from daemon.ledger.store import StoreLedger  # psycopg only when configured

            self.ledger = StoreLedger(self.config.ledger, self.journal).start()
            self.cards.chain_check = self.ledger.check
        self.backend = self.config.readers.create_backend()
        self.pool = ReaderPool(self.backend.connect, max_queue=self._queue_size)
        self.monitor = ReaderMonitor(self.backend, hub=self.hub, reader_id=self._reader_id)
        self.monitor.subscribe(self.pool.handle_event)
        self.monitor.start()
        if self.config.printers:
            path = daemon.state_dir / SPOOL_FILE
            spool = self.spool = _opened("daemon.state_dir", "the print spool", path, Spool)
            for pid, pconfig in self.config.printers.items():
                backend = self._usb_printer(pconfig) if pconfig.backend == "usb" else None
                self._printers[pid] = PrinterService(pconfig, spool, backend, hub=self.hub)
        self.scans = ScanStream(hub=self.hub)
        for sid, sconfig in self.config.scanners.items():
            self._scanners[sid] = sconfig.build(self.scans, usb_backend=self._usb_backend)
        for scanner in self._scanners.values():
            scanner.start()

    def close(self) -> None:
        """Stop scanners, printers (their jobs stay in the durable spool), readers, journal.

        Idempotent; every part is closed even if one fails (the first error is logged)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        steps: list[tuple[str, Callable[[], None]]] = []
        steps += [(f"scanners/{sid}", s.close) for sid, s in self._scanners.items()]
        if self.scans is not None:
            steps.append(("scan stream", self.scans.close))
        steps += [(f"printers/{pid}", p.close) for pid, p in self._printers.items()]
        if self.spool is not None:
            steps.append(("print spool", self.spool.close))
        if self.monitor is not None:
            steps.append(("reader monitor", self.monitor.close))
        if self.pool is not None:
            steps.append(("reader pool", self.pool.close))
        if self.backend is not None:
            steps.append(("reader backend", self.backend.close))
        if self.ledger is not None:
            steps.append(("ledger shipper", self.ledger.close))
        if self.journal is not None:
            steps.append(("journal", self.journal.close))
        steps.append(("event hub", self.hub.close))
        for what, step in steps:
            try:
                step()
            except Exception:
                logger.exception("station: closing the %s failed", what)
        logger.info("station closed")

    def _usb_printer(self, config: PrinterConfig) -> PrinterBackend | None:
        if self._usb_backend is None:
            return None  # the registry's usb backend on libusb
        from daemon.printers.connectors import UsbBackend  # python-escpos only when used

        return UsbBackend(config, self._usb_backend)

    @property
    def running(self) -> bool:
        return self._started and not self._closed

    # --- readers --------------------------------------------------------------------------

    def _reader_config(self, name: str) -> ReaderConfig | None:
        return self.config.readers.for_reader(name)

    def _queue_size(self, name: str) -> int:
        rc = self._reader_config(name)
        return rc.queue_size if rc is not None else DEFAULT_MAX_QUEUE

    def _reader_id(self, name: str) -> str:
        """The stable id of PC/SC reader ``name`` (called by the monitor on every event)."""
        with self._lock:
            info = self._readers.get(name)
            if info is not None:
                return info.id
            rc = self._reader_config(name)
            base = rc.id if rc is not None else _SLUG.sub("-", name.lower()).strip("-")
            taken = {i.id for i in self._readers.values()}
            rid, n = base, 2
            while rid in taken:  # two readers of one model matching one table
                rid, n = f"{base}-{n}", n + 1
            dialect = (
                rc.dialect_for(name) if rc is not None else ReaderConfig(rid, "*").dialect_for(name)
            )
            self._readers[name] = ReaderInfo(
                rid,
                name,
                rc is not None,
                dialect.name,
                rc.queue_size if rc is not None else DEFAULT_MAX_QUEUE,
                rc.job_deadline_ms if rc is not None else DEFAULT_JOB_DEADLINE_MS,
                rc.match if rc is not None else "",
            )
            trace = ApduTrace(name)
            trace.add_hook(metrics.apdu_hook(rid))  # counted by config id, never a UID
            self._profiles[name] = ReaderProfile(name, dialect, trace)
            return rid

    def readers(self) -> list[ReaderInfo]:
        """The readers attached now, by id."""
        pool = self._running_pool()
        attached = set(pool.names())
        for name in attached:
            self._reader_id(name)
        with self._lock:
            return sorted((i for n, i in self._readers.items() if n in attached), key=_by_id)

    def missing_readers(self) -> list[MissingReader]:
        """The configured readers that no attached reader matches, by id (the attached ones
        are :meth:`readers`; a table counts as present while any reader it matched is there)."""
        attached = self.readers()
        present = {rc.id for i in attached if (rc := self._reader_config(i.name)) is not None}
        taken = present | {i.id for i in attached}
        missing = (r for r in self.config.readers.readers if r.id not in taken)
        return sorted((MissingReader(r.id, r.match, r.dialect) for r in missing), key=_by_id)

    def reader(self, reader: str) -> ReaderInfo:
        """``front`` or ``readers/front`` → the attached reader; :class:`DeviceNotFound`
        (listing the ids there are) when no reader with that id is attached, saying so when
        the id is configured but no PC/SC reader matches its pattern."""
        wanted = reader.removeprefix("readers/")
        found = self.readers()
        for info in found:
            if info.id == wanted:
                return info
        ids = ", ".join(i.path for i in found) or "none attached"
        for gone in self.missing_readers():
            if gone.id == wanted:
                raise DeviceNotFound(
                    gone.path,
                    f"configured but not connected: no reader matching {gone.match!r} is "
                    f"attached (readers: {ids})",
                )
        raise DeviceNotFound(f"readers/{wanted}", f"no such reader on this PC (readers: {ids})")

    def profile(self, reader: str) -> ReaderProfile:
        """The reader's dialect and long-lived APDU trace (what card jobs need)."""
        info = self.reader(reader)
        with self._lock:
            return self._profiles[info.name]

    def submit(
        self, reader: str, job: Callable[[JobContext], T], *, timeout_s: float | None = None
    ) -> concurrent.futures.Future[T]:
        """Queue ``job`` on the reader's worker; ``timeout_s`` defaults to the reader's
        ``job_deadline_ms``. A full queue is refused at once (``READER_BUSY``)."""
        info = self.reader(reader)
        limit = info.job_deadline_ms / 1000 if timeout_s is None else timeout_s
        return self._running_pool().submit(info.name, job, time.monotonic() + limit)

    def run(
        self, reader: str, job: Callable[[JobContext], T], *, timeout_s: float | None = None
    ) -> T:
        """:meth:`submit` and wait for the result (the job's own error is raised as itself).

        A job that has started writing always runs to its end (it never times out halfway),
        so the wait allows for it: the deadline bounds the queueing, not the card write."""
        future = self.submit(reader, job, timeout_s=timeout_s)
        return future.result()

    async def run_async(
        self, reader: str, job: Callable[[JobContext], T], *, timeout_s: float | None = None
    ) -> T:
        """:meth:`run` for asyncio callers: the event loop never blocks on the card."""
        return await asyncio.wrap_future(self.submit(reader, job, timeout_s=timeout_s))

    # --- member cards and diagnostics on a reader ------------------------------------------

    @overload
    def card(self, reader: str, request: ReadCard) -> CardInfo: ...
    @overload
    def card(self, reader: str, request: ValueRequest) -> OpResult: ...
    @overload
    def card(self, reader: str, request: IssueCard | ReplaceCard) -> IssueResult: ...
    @overload
    def card(self, reader: str, request: EraseCard) -> str: ...
    def card(self, reader: str, request: CardRequest) -> object:
        """Run a member card request on ``reader``'s card, on that reader's worker thread."""
        return self.run(reader, self.card_job(reader, request))

    def card_job(self, reader: str, request: CardRequest) -> Callable[[JobContext], Any]:
        """The worker job for ``request``: POS operations go to the member card service,
        issue/erase/replace to the personaliser (the API decides who may ask for which)."""
        profile = self.profile(reader)
        if self.cards is None or self.personaliser is None:
            raise ReaderUnavailable("the station is not running")
        rid = self.reader(reader).id
        if isinstance(request, IssueCard | ReplaceCard):
            return self._measured(rid, card_job(self.personaliser, profile, request))
        if isinstance(request, EraseCard):
            return self._measured(rid, card_job(self.personaliser, profile, request))
        if isinstance(request, ReadCard):
            return self._measured(rid, card_job(self.cards, profile, request))
        return self._measured(rid, card_job(self.cards, profile, request))

    def _measured(
        self, reader_id: str, job: Callable[[JobContext], T]
    ) -> Callable[[JobContext], T]:
        """``job`` counted in the metrics: unconfirmed writes, their resolutions, fraud."""
        journal = self.journal

        def run(ctx: JobContext) -> T:
            try:
                result = job(ctx)
            except WriteUnconfirmed:
                metrics.UNCONFIRMED.labels(reader_id).inc()
                raise
            except FraudDetected as exc:
                metrics.FRAUD.labels(exc.reason).inc()
                raise
            resolved = getattr(result, "resolved", ())
            if resolved and journal is not None and isinstance(resolved, tuple):
                for request_id in resolved:
                    record = journal.get(request_id)
                    applied = record is not None and record.state is RequestState.COMMITTED
                    metrics.RESOLVED.labels("applied" if applied else "not_applied").inc()
            return result

        return run

    def probe(self, reader: str, **options: Any) -> ProbeResult:
        """The technician probe on ``reader`` (block 0, ATR, firmware, latency); the Gen2
        write test only where this station's role allows it (``[daemon] station``)."""
        info = self.reader(reader)
        job = probe_job(
            station=self.config.daemon.station,
            dialect=self.profile(reader).dialect,
            **options,
        )
        return self.run(info.id, job)

    def _running_pool(self) -> ReaderPool:
        if self.pool is None or self._closed:
            raise ReaderUnavailable("the station is not running")
        return self.pool

    # --- liveness (the systemd watchdog) ---------------------------------------------------

    def health(self, stale_after_s: float) -> list[str]:
        """What is dead or wedged, one line each; empty when every part is alive.

        A printer, scanner or the reader monitor counts when its thread has ended. A reader
        worker also counts when it is wedged: each call queues a no-op heartbeat job on every
        worker that has none waiting (it touches no card and takes one queue slot for as long
        as the running job lasts), and a worker whose heartbeat has waited ``stale_after_s``
        is stuck in a job. Card jobs end within their deadline plus one write, far below the
        watchdog's ``stale_after_s`` (15 s under the shipped unit). Call from one thread."""
        if not self.running or self.pool is None:
            return ["the station is not running"]
        now = time.monotonic()
        problems: list[str] = []
        if self.monitor is not None and not self.monitor.alive:
            problems.append("the reader monitor thread has ended")
        if self.ledger is not None and not self.ledger.shipper.alive:
            problems.append("the ledger shipper thread has ended")
        names = self.pool.names()
        for gone in set(self._beats) - set(names):
            del self._beats[gone]
        for name in names:
            problem = self._heartbeat(name, now, stale_after_s)
            if problem is not None:
                problems.append(problem)
        problems += [
            f"printers/{p}: thread has ended" for p, s in self._printers.items() if not s.alive
        ]
        problems += [
            f"scanners/{i}: thread has ended" for i, s in self._scanners.items() if not s.alive
        ]
        return problems

    def alive(self, stale_after_s: float = 15.0) -> bool:
        """No part is dead or wedged (:meth:`health`)."""
        return not self.health(stale_after_s)

    def _heartbeat(self, name: str, now: float, stale_after_s: float) -> str | None:
        assert self.pool is not None
        try:
            worker = self.pool.worker(name)
        except ReaderUnavailable:
            return None  # detached since names(): not ours to watch any more
        if not worker.alive:
            return f"reader {name!r}: worker thread has ended"
        beat = self._beats.get(name)
        if beat is None or beat.worker is not worker:
            beat = self._beats[name] = _Heartbeat(worker, now)
        if beat.pending is not None and beat.pending.done():
            beat.pending, beat.last_ok = None, now
        if beat.pending is None:
            try:  # a deadline it cannot miss: reaching the job at all is the heartbeat
                beat.pending = worker.submit(_heartbeat_job, now + 3600.0)
                beat.sent = now
            except (ReaderBusy, ReaderUnavailable):
                pass  # full queue: the age of the last heartbeat decides
        waited = now - (beat.sent if beat.pending is not None else beat.last_ok)
        if waited >= stale_after_s:
            return f"reader {name!r}: worker wedged (no heartbeat for {waited:.1f} s)"
        return None

    # --- printers and scanners ------------------------------------------------------------

    @property
    def printers(self) -> Mapping[str, PrinterService]:
        return MappingProxyType(self._printers)

    @property
    def scanners(self) -> Mapping[str, Scanner]:
        return MappingProxyType(self._scanners)

    def printer(self, printer: str) -> PrinterService:
        """``receipt`` or ``printers/receipt`` → its service; :class:`DeviceNotFound` else."""
        return _device("printers", printer, self._printers)

    def scanner(self, scanner: str) -> Scanner:
        """``front`` or ``scanners/front`` → the running scanner; :class:`DeviceNotFound` else."""
        return _device("scanners", scanner, self._scanners)

    def wait_for_reader(self, reader: str, timeout_s: float = 5.0) -> ReaderInfo:
        """Block until ``reader`` is attached (right after start the monitor needs a moment);
        :class:`DeviceNotFound` if it is not there in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.reader(reader)
            except DeviceNotFound:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)


@dataclass(slots=True)
class _Heartbeat:
    worker: ReaderWorker
    last_ok: float  # monotonic: the worker last reached a heartbeat job (or was first seen)
    sent: float = 0.0
    pending: concurrent.futures.Future[None] | None = None


def _heartbeat_job(_ctx: JobContext) -> None:
    """Runs on the reader's worker thread and does nothing: that it ran is the heartbeat."""


def _make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _opened(key: str, what: str, path: Path, open_: Callable[[Path], T]) -> T:
    """``open_(path)``, with a failure named by the config key store IT has to fix."""
    try:
        return open_(path)
    except (OSError, sqlite3.Error) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(key, f"cannot open {what} {str(path)!r}: {detail}") from None


def _device(kind: str, wanted: str, devices: Mapping[str, T]) -> T:
    key = wanted.removeprefix(f"{kind}/")
    try:
        return devices[key]
    except KeyError:
        ids = ", ".join(f"{kind}/{k}" for k in sorted(devices)) or "none configured"
        raise DeviceNotFound(
            f"{kind}/{key}", f"no such device on this PC ({kind}: {ids})"
        ) from None


def _by_id(info: ReaderInfo | MissingReader) -> str:
    return info.id
