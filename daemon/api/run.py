"""``carddaemon serve``: the daemon process — one station, its listeners, until a signal.

Start order: config (validated whole, keys loaded) → station (journal, readers, printers,
scanners) → listeners → health SERVING → "ready" on stdout (and READY=1 to systemd when it
asked, with a ``STATUS=`` line; the watchdog is fed while the station's workers are alive:
:mod:`daemon.systemd`). SIGTERM/SIGINT: STOPPING=1, health NOT_SERVING, running calls get
``grace`` seconds, sockets are removed, the station closes (a running card job finishes first;
the journal and spool keep every intent and receipt). Health per service follows the devices:
a service whose devices are all gone is NOT_SERVING until one comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from daemon import metrics
from daemon.api.server import ApiServer, Service
from daemon.errors import ReaderUnavailable
from daemon.events import Event
from daemon.station import Station
from daemon.systemd import Notifier

__all__ = ["DEVICE_SERVICES", "run", "serve"]

logger = logging.getLogger(__name__)

#: which device kind a service needs: NOT_SERVING while none of that kind is up
DEVICE_SERVICES: Mapping[str, tuple[str, ...]] = {
    "readers": (
        "carddaemon.v1.ReaderService",
        "carddaemon.v1.MemberCardService",
        "carddaemon.v1.IssuingService",
        "carddaemon.v1.DiagnosticsService",
    ),
    "printers": ("carddaemon.v1.PrinterService",),
    "scanners": ("carddaemon.v1.ScannerService",),
}


class _Health:
    """Keeps each service's health in step with the station's devices, from the event hub."""

    def __init__(self, station: Station, server: ApiServer) -> None:
        self.station = station
        self.server = server
        self.up: dict[str, set[str]] = {kind: set() for kind in DEVICE_SERVICES}
        self.offered = {s.name for s in server.services}

    def _apply(self, event: Event) -> None:
        kind, _, device = event.source.partition("/")
        if kind not in self.up or not device:
            if event.kind == "service_lost":
                self.up["readers"].clear()
            return
        alive = {
            "reader_attached": True,
            "card_present": True,
            "card_removed": True,
            "reader_detached": False,
        }.get(event.kind)
        if event.kind == "status":
            alive = _device_alive(event.payload)
        if alive is True:
            self.up[kind].add(device)
        elif alive is False:
            self.up[kind].discard(device)

    async def publish(self) -> None:
        for kind, names in DEVICE_SERVICES.items():
            configured = bool(getattr(self.station.config, kind, None)) or kind == "readers"
            for name in names:
                if name in self.offered:
                    await self.server.set_serving(name, bool(self.up[kind]) or not configured)

    async def follow(self, notifier: Notifier | None = None) -> None:
        with self.station.hub.subscribe(name="health") as sub:
            async for event in sub:
                self._apply(event)
                await self.publish()
                if notifier is not None:
                    notifier.status(self.status())

    def status(self) -> str:
        """The one ``STATUS=`` line: ``2 reader(s), 1/1 printer(s) up, 1/1 scanner(s) up``."""
        try:
            readers = len(self.station.readers())
        except ReaderUnavailable:
            readers = 0
        printers = len(self.up["printers"] & set(self.station.printers))
        scanners = len(self.up["scanners"] & set(self.station.scanners))
        return (
            f"{readers} reader(s), {printers}/{len(self.station.printers)} printer(s) up, "
            f"{scanners}/{len(self.station.scanners)} scanner(s) up"
        )


def _device_alive(payload: object) -> bool | None:
    """A printer status (``reachable``) or a scanner status (``state`` CONNECTED)."""
    reachable = getattr(payload, "reachable", None)
    if isinstance(reachable, bool):
        return reachable
    state = getattr(payload, "state", None)
    if state is not None:
        return str(getattr(state, "value", state)) == "CONNECTED"
    return None


async def serve(
    station: Station,
    services: Sequence[Service],
    *,
    stop: asyncio.Event | None = None,
    out: TextIO = sys.stdout,
    grace_s: float = 5.0,
    notifier: Notifier | None = None,
) -> None:
    """Run the listeners over a started ``station`` until ``stop`` is set.

    ``notifier``: sd_notify (default: from ``$NOTIFY_SOCKET``/``$WATCHDOG_USEC``, a no-op
    when systemd did not start us)."""
    notify = notifier if notifier is not None else Notifier()
    journal = station.journal

    def audit(event: str, detail: dict[str, Any]) -> None:
        if journal is not None:
            journal.audit(event, detail=detail)

    server = ApiServer(station.config.api, services, audit=audit)
    stop = stop or asyncio.Event()
    collector = metrics.StationCollector(station)
    metrics.REGISTRY.register(collector)
    try:
        await server.start()  # every listener is bound (the journal was opened by station.start)
    except BaseException:
        metrics.REGISTRY.unregister(collector)
        await server.stop(0)
        raise
    health = _Health(station, server)
    tasks = [
        asyncio.create_task(health.follow(notify), name="health"),
        asyncio.create_task(notify.keep_alive(station.health), name="watchdog"),
    ]
    try:
        for role, address in server.addresses().items():
            print(f"listening: {role:<10} {address}", file=out, flush=True)
        if server.metrics is not None:
            print(f"metrics:   http://{server.metrics.address}/metrics", file=out, flush=True)
        print("ready", file=out, flush=True)
        notify.ready(health.status())
        await stop.wait()
    finally:
        notify.stopping()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.stop(grace_s)
        metrics.REGISTRY.unregister(collector)


def run(
    config: Path, build_services: Callable[[Station], Sequence[Service]], out: TextIO = sys.stdout
) -> int:
    """The whole process: station + listeners until SIGTERM/SIGINT; the exit code."""
    with Station.from_config(config) as station:
        station.start()

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await serve(station, build_services(station), stop=stop, out=out)

        asyncio.run(main())
    print("stopped", file=out, flush=True)
    return 0
