"""A running daemon for the API tests: the simulated store's station behind real listeners.

``api`` runs the station and its gRPC listeners in this process (the server's event loop on
its own thread), reached by real gRPC clients over the real Unix sockets: quick, and the test
can script the simulated hardware through ``api.station``. ``served`` starts ``carddaemon
serve`` as a real process on the same kind of store folder (end-to-end, signals, exit codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from daemon.api.run import serve
from daemon.api.services import build_services
from daemon.station import Station
from demo.folder import STORE_CONFIG, make_store_folder

BIN = Path(sys.executable).parent


def store_folder(folder: Path, extra: str = "", base: Path = STORE_CONFIG) -> Path:
    """The simulated store's config (or ``base``) in ``folder``, its sockets in the folder too."""
    config = make_store_folder(folder, base)
    text = config.read_text(encoding="utf-8")
    config.write_text(text + '\n[api]\nruntime_dir = "run"\n' + extra, encoding="utf-8")
    return config


@dataclass
class Api:
    """A station with its listeners; ``channel(role)`` opens a client channel to a socket."""

    station: Station
    run_dir: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    def socket(self, role: str) -> Path:
        return self.run_dir / f"{role}.sock"

    def channel(self, role: str = "pos") -> grpc.Channel:
        channel = grpc.insecure_channel(f"unix:{self.socket(role)}")
        self.channels.append(channel)
        return channel


class _ServerThread(threading.Thread):
    def __init__(self, station: Station) -> None:
        super().__init__(name="api-test-server")
        self.station = station
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None

    def run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop = asyncio.Event()
            out = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            try:
                task = asyncio.create_task(
                    serve(self.station, build_services(self.station), stop=self.stop, out=out)
                )
                while not self.station.config.api.listeners[0].socket.exists():
                    if task.done():
                        await task
                    await asyncio.sleep(0.01)
                self.ready.set()
                await task
            finally:
                out.close()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.failed = exc
            self.ready.set()

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.join(30)


@pytest.fixture(scope="session", autouse=True)
def grpc_runtime(tmp_path_factory: pytest.TempPathFactory) -> None:
    """gRPC's client library starts a process-wide polling thread (and its wake-up sockets)
    with the first call and keeps them for the life of the process: make them exist before
    the per-test leak guard takes its first look, so only what a test leaves counts."""
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    path = tmp_path_factory.mktemp("grpc") / "warm.sock"
    pool = futures.ThreadPoolExecutor(max_workers=1)
    server = grpc.server(pool)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    with grpc.insecure_channel(f"unix:{path}") as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    server.stop(None).wait()
    pool.shutdown(wait=True)


def _await_grpc_aio_shutdown(timeout_s: float = 10.0) -> None:
    """grpc.aio's poller thread ends once its last server object is collected."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        gc.collect()
        if not any("_poll_wrapper" in t.name for t in threading.enumerate()):
            return
        time.sleep(0.05)


@contextlib.contextmanager
def run_api(folder: Path, extra: str = "", base: Path = STORE_CONFIG) -> Iterator[Api]:
    """A station of the simulated store (or of config file ``base``) in ``folder`` with its
    listeners (``extra``: more ``[api]`` lines), stopped and cleaned up on exit."""
    config = store_folder(folder / "store", extra, base)
    with Station.from_config(config) as station:
        station.start()
        station.wait_for_reader("front")
        station.wait_for_reader("back")
        thread = _ServerThread(station)
        thread.start()
        thread.ready.wait(30)
        if thread.failed is not None:
            raise thread.failed
        handle = Api(station, config.parent / "run")
        try:
            yield handle
        finally:
            for channel in handle.channels:
                channel.close()
            thread.shutdown()
            _await_grpc_aio_shutdown()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with run_api(tmp_path) as handle:
        yield handle


@dataclass
class Served:
    """``carddaemon serve`` as a process; ``lines`` is what it printed so far."""

    process: subprocess.Popen[str]
    config: Path
    lines: list[str]

    def socket(self, role: str) -> Path:
        return self.config.parent / "run" / f"{role}.sock"


@contextlib.contextmanager
def serve_config(config: Path) -> Iterator[Served]:
    """``carddaemon serve --config config`` as a real process, from its ``ready`` line until
    the block ends (SIGTERM, then a kill if it does not stop within 30 s)."""
    process = subprocess.Popen(
        [str(BIN / "carddaemon"), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":
            break
    stdout = process.stdout

    def drain() -> None:  # a full pipe would block the daemon's logging
        for line in stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=drain, name="served-stdout")
    reader.start()
    try:
        assert lines, "carddaemon serve printed nothing"
        assert lines[-1] == "ready", lines
        yield Served(process, config, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)
        stdout.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve_config(store_folder(tmp_path / "store")) as handle:
        yield handle
