"""Prometheus metrics: the daemon's own registry and its localhost-only ``/metrics`` endpoint.

Served only when ``[api] metrics_address`` is set (a loopback address, checked by
:mod:`daemon.api.settings`), by a small HTTP handler on the gRPC server's asyncio loop (no
thread of its own, closed with the listeners). Every name starts with ``carddaemon_`` except
the gRPC ones, which reuse go-grpc-prometheus's names.

Labels are low-cardinality by construction: an RPC's method and status code, a reader's or a
printer's config id, a fraud reason, a subscriber kind. Never a card UID, member id, request id
or the content of a scanned code (``tests/test_metrics.py`` scrapes after a full flow and
greps for each of them).

Two kinds of sources: instruments updated where things happen (the guard for RPCs, the
station's hooks for APDUs, card jobs and journal writes) and :class:`StationCollector`, which
reads the station's state at scrape time (journal pending, spool depth, printer state, scans,
event subscribers and their losses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from daemon.readers.trace import TraceEntry
    from daemon.station import Station

__all__ = [
    "REGISTRY",
    "MetricsEndpoint",
    "StationCollector",
    "apdu_hook",
    "timed",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: the daemon's own registry (not the process-global default one)
REGISTRY: Final = CollectorRegistry()

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FSYNC_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

BUILD_INFO: Final = Gauge(
    "carddaemon_build_info", "Always 1; the daemon's version.", ["version"], registry=REGISTRY
)

# --- gRPC (the guard) -------------------------------------------------------------------------
RPC_STARTED: Final = Counter(
    "grpc_server_started", "RPCs started.", ["grpc_method"], registry=REGISTRY
)
RPC_HANDLED: Final = Counter(
    "grpc_server_handled",
    "RPCs finished, by status code.",
    ["grpc_method", "grpc_code"],
    registry=REGISTRY,
)
RPC_SECONDS: Final = Histogram(
    "grpc_server_handling_seconds",
    "RPC latency until the answer (a stream: until it ended).",
    ["grpc_method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

# --- readers and card jobs (the station's hooks) -----------------------------------------------
APDUS: Final = Counter(
    "carddaemon_apdus", "APDUs exchanged, per reader.", ["reader"], registry=REGISTRY
)
APDU_ERRORS: Final = Counter(
    "carddaemon_apdu_errors",
    "APDUs without an answer or answered with a status word other than 90 00, per reader.",
    ["reader"],
    registry=REGISTRY,
)
UNCONFIRMED: Final = Counter(
    "carddaemon_writes_unconfirmed",
    "Card writes whose outcome was unknown (WRITE_UNCONFIRMED), per reader.",
    ["reader"],
    registry=REGISTRY,
)
RESOLVED: Final = Counter(
    "carddaemon_writes_resolved",
    "Unconfirmed writes settled by a later read of the card (applied or not_applied).",
    ["outcome"],
    registry=REGISTRY,
)
FRAUD: Final = Counter(
    "carddaemon_fraud_refusals",
    "Cards refused as forged, rolled back or cloned, by reason.",
    ["reason"],
    registry=REGISTRY,
)
JOURNAL_WRITE_SECONDS: Final = Histogram(
    "carddaemon_journal_write_seconds",
    "Journal transactions committed with fsync (intent: before a card write; finish).",
    ["op"],
    buckets=_FSYNC_BUCKETS,
    registry=REGISTRY,
)
LEDGER_CHECK_SECONDS: Final = Histogram(
    "carddaemon_ledger_check_seconds",
    "Online checks answered by the chain ledger (one round trip each).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
LEDGER_FALLBACKS: Final = Counter(
    "carddaemon_ledger_check_fallbacks",
    "Online checks the ledger did not answer within the budget (offline rules applied).",
    registry=REGISTRY,
)
LEDGER_SHIPPED: Final = Counter(
    "carddaemon_ledger_shipped_rows",
    "Outbox rows the chain ledger confirmed.",
    registry=REGISTRY,
)


def _version() -> str:
    try:
        return metadata.version("carddaemon")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(_version()).set(1)


def apdu_hook(reader_id: str) -> Callable[[TraceEntry], None]:
    """An :class:`~daemon.readers.trace.ApduTrace` hook counting one reader's APDUs by its
    config id (never its PC/SC name's card, never a UID)."""
    total = APDUS.labels(reader_id)
    errors = APDU_ERRORS.labels(reader_id)

    def hook(entry: TraceEntry) -> None:
        total.inc()
        if entry.sw != 0x9000:
            errors.inc()

    return hook


def timed(op: str, fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` observed in :data:`JOURNAL_WRITE_SECONDS` under ``op``."""
    histogram = JOURNAL_WRITE_SECONDS.labels(op)

    def call(*args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - start)

    return call


_PRINTER_STATES: Final = (
    "ready",
    "reachable",
    "online",
    "cover_open",
    "paper_near_end",
    "paper_end",
    "error",
)


class StationCollector(Collector):
    """What the station is now, read at scrape time (on the server's event loop)."""

    def __init__(self, station: Station) -> None:
        self.station = station

    def describe(self) -> list[Metric]:
        return []  # no fixed set: the station's devices decide the series

    def collect(self) -> Iterator[Metric]:
        station = self.station
        if not station.running:
            return
        yield from self._readers()
        yield from self._journal()
        yield from self._printers()
        yield from self._scans()
        yield from self._events()

    def _readers(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "carddaemon_reader_up", "1 while the reader is attached.", labels=["reader"]
        )
        try:
            readers = station_readers(self.station)
        except Exception:  # the station closing under the scrape
            readers = []
        for rid in readers:
            up.add_metric([rid], 1)
        yield up

    def _journal(self) -> Iterator[Metric]:
        journal = self.station.journal
        if journal is None:
            return
        pending = GaugeMetricFamily(
            "carddaemon_value_journal_pending",
            "Value operations journalled whose card outcome is not settled yet (should be 0).",
        )
        with contextlib.suppress(Exception):
            pending.add_metric([], len(journal.pending()))
            yield pending

    def _printers(self) -> Iterator[Metric]:
        from daemon.printers.spool import JobState

        printers = self.station.printers
        if not printers:
            return
        depth = GaugeMetricFamily(
            "carddaemon_spool_jobs",
            "Print jobs in the spool, by state.",
            labels=["printer", "state"],
        )
        state = GaugeMetricFamily(
            "carddaemon_printer_status",
            "1 when the printer's last status says so.",
            labels=["printer", "state"],
        )
        spool = self.station.spool
        for pid, service in sorted(printers.items()):
            if spool is not None:
                for job_state in (JobState.QUEUED, JobState.UNCERTAIN):
                    with contextlib.suppress(Exception):
                        depth.add_metric([pid, job_state.value], spool.count(pid, job_state))
            status = service.status()
            for name in _PRINTER_STATES:
                state.add_metric([pid, name], 1 if getattr(status, name) else 0)
        yield depth
        yield state

    def _scans(self) -> Iterator[Metric]:
        scans = self.station.scans
        if scans is None:
            return
        total = CounterMetricFamily("carddaemon_scans", "Scans published to subscribers.")
        total.add_metric([], scans.stats.published)
        yield total

    def _events(self) -> Iterator[Metric]:
        hub = self.station.hub
        live = GaugeMetricFamily(
            "carddaemon_event_subscribers", "Open event subscriptions, by kind.", labels=["kind"]
        )
        for kind, n in sorted(hub.subscriber_counts().items()):
            live.add_metric([kind], n)
        yield live
        lost = CounterMetricFamily(
            "carddaemon_events_dropped",
            "Events a too slow subscriber lost, by subscriber kind (every loss, ended "
            "subscriptions included).",
            labels=["kind"],
        )
        for kind, n in sorted(hub.dropped_counts().items()):
            lost.add_metric([kind], n)
        yield lost


def station_readers(station: Station) -> list[str]:
    return [info.id for info in station.readers()]


class MetricsEndpoint:
    """``GET /metrics`` over plain HTTP/1.1 on the running asyncio loop; one answer per
    connection. Binds in :meth:`start`, closes every connection in :meth:`stop`."""

    def __init__(self, address: str, registry: CollectorRegistry = REGISTRY) -> None:
        self.address = address
        self.registry = registry
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        """Bind; the bound ``HOST:PORT`` (port 0 in the config: the one the OS chose)."""
        host, _, port = self.address.rpartition(":")
        host = host.strip("[]")
        self._server = await asyncio.start_server(self._handle, host, int(port))
        bound = self._server.sockets[0].getsockname()
        self.address = f"{host}:{bound[1]}" if ":" not in host else f"[{host}]:{bound[1]}"
        logger.info("serving metrics on http://%s/metrics", self.address)
        return self.address

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            for _ in range(100):  # the headers: not needed, read to the blank line
                line = await asyncio.wait_for(reader.readline(), 5)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request.split()
            path = parts[1].split(b"?", 1)[0] if len(parts) >= 2 else b""
            if not parts or parts[0] not in (b"GET", b"HEAD"):
                self._answer(writer, b"405 Method Not Allowed", b"text/plain", b"GET only\n")
            elif path not in (b"/metrics", b"/"):
                self._answer(writer, b"404 Not Found", b"text/plain", b"see /metrics\n")
            else:
                body = generate_latest(self.registry)
                head = parts[0] == b"HEAD"
                self._answer(writer, b"200 OK", CONTENT_TYPE_LATEST.encode(), body, head=head)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("metrics: answering a scrape failed")
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _answer(
        writer: asyncio.StreamWriter,
        status: bytes,
        content_type: bytes,
        body: bytes,
        *,
        head: bool = False,
    ) -> None:
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + (b"" if head else body)
        )  # fmt: skip
