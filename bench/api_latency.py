"""What the gRPC API adds to a card operation, and how the daemon holds a lunch rush.

One run, over the real stack: a private pcscd (no debug logging) with two simulated readers
served through vpcd (an ACR1252U on lane ``front``, an ACR122U on lane ``back``; the simulated
card charges no air time, so only the host path is measured), and a
:class:`~daemon.station.Station` built by ``Station.from_config`` from a config file written
into a temporary store folder (reader backend ``pcsc``, one ``[readers.<id>]`` table per vpcd
reader, ``[api] runtime_dir`` in that folder, a fresh key file beside it). The API server runs
in this process (``daemon.api.run.serve`` in an asyncio loop on its own thread, as
``carddaemon serve`` runs it) over the station; the member cards are issued through the station
and laid on the simulated readers behind the vpcd bridge.

The POS is another process (this script with ``--pos-client``), as a till is: it talks to the
POS socket only, with gRPC's Python client, and times its own calls. This process sends it one
call at a time over a pipe (not timed).

1. Latency: ``Debit``, then ``ReadCard`` twice, over the POS socket, alternated round by
   round with the same operations called directly on the station (``station.card``, the
   reader worker, no gRPC), so that drift hits both paths alike; each call after 10 ms of
   quiet, as a till calls (both paths then wake sleeping threads). The read after a debit
   reads the card's sectors (``read_p50_ms``); the second is answered from the reader's notes
   of the card still lying there (one APDU, ``[membercard] reread_after_s``).
   ``api_overhead_p50_ms`` = p50(gRPC Debit) - p50(direct Debit). ``GetOperation`` and a
   health check over gRPC show the transport's own floor in the same conditions.
2. Lunch rush for ``--seconds`` (60): 8 POS clients (one channel each) at 25 calls/s each, a
   fixed schedule (a late call is timed from its scheduled start, so a stall is not hidden):
   of every ten calls 4 ``ReadCard``, 3 ``GetOperation``, 2 health checks and one ``Debit``
   (a fresh ``request_id`` each), clients 0-3 on ``front``, 4-7 on ``back``; meanwhile 4
   ``WatchReaders`` streams are open and read (first the snapshot, then sequence numbers that
   only increase). A failed call, a refused health check, a broken stream or an event out of
   order is a load error. How late the POS process's and the daemon's event loops woke is
   printed too, and how much CPU time the hypervisor stole (``/proc/stat``): on a virtual
   machine whose idle vCPUs halt, every wake-up waits for the host, and a rush of short calls
   is mostly wake-ups.

``--cards-apart`` runs the simulated readers and their cards (CRYPTO1 in Python) in a process
of their own instead of in the daemon's process, where they share its GIL as no real reader
does. ``--quick``: 30 latency rounds and a 5 s rush (``--rounds``, ``--seconds`` override).
``--keep-cpus-awake`` holds a PM QoS request (``/dev/cpu_dma_latency`` = 0) for the run, so
idle CPUs spin instead of halting: a diagnosis that separates the software's time from the
machine's wake-ups, never how the daemon runs. pcscd runs in a mount namespace: root needed.

    .venv/bin/python bench/api_latency.py [--seconds N] [--quick] [--rounds N] [--cards-apart]
                                          [--keep-cpus-awake]

Last line: ``api_latency: read_p50_ms=… debit_p50_ms=… debit_p99_ms=… api_overhead_p50_ms=…
load_p99_ms=… load_errors=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

POS_CLIENT = "--pos-client" in sys.argv
CARD_HOST = "--card-host" in sys.argv
RUN_DIR = "" if POS_CLIENT or CARD_HOST else tempfile.mkdtemp(prefix="carddaemon-bench-pcscd-")
if RUN_DIR:
    # libpcsclite reads this once, at the first PC/SC call: set it before anything can call.
    os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(RUN_DIR, "pcscd.comm")

import grpc  # noqa: E402
from grpc import aio  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from daemon.api.v1 import common_pb2  # noqa: E402
from daemon.api.v1 import member_card_service_pb2 as m  # noqa: E402
from daemon.api.v1 import member_card_service_pb2_grpc as mg  # noqa: E402
from daemon.api.v1 import reader_service_pb2 as r  # noqa: E402
from daemon.api.v1 import reader_service_pb2_grpc as rg  # noqa: E402

OVERHEAD_MAX_MS = 1.0
LOAD_P99_MAX_MS = 20.0
CLIENTS = 8
RATE = 25.0  # calls/s per client
STREAMS = 4
#: one cycle of ten calls per client
MIX = ("read", "get_op", "read", "health", "read", "get_op", "debit", "read", "health", "get_op")
CALL_TIMEOUT_S = 5.0
#: the pause before each timed call of the latency phase (both paths)
IDLE_S = 0.01
#: how late the daemon's own event loop woke, (loop time, ms), filled while it serves
DAEMON_LAG_MS: list[tuple[float, float]] = []

LANES = {  # lane id -> (vpcd FRIENDLYNAME, simulator model)
    "front": ("ACS ACR1252 1S CL Reader PICC", "acr1252u"),
    "back": ("ACS ACR122U PICC Interface", "acr122u"),
}
CONFIG = """\
# bench/api_latency.py: a store PC with two PC/SC readers (vpcd) and the API in this folder
[daemon]
state_dir = "state"
journal_path = "journal.sqlite3"
keystore_file = "keys.toml"
station = "issuing"          # the bench issues its member cards first

[readers]
backend = "pcsc"

[readers.front]
match = "ACS ACR1252*PICC*"
dialect = "acr1252u"
queue_size = 8
job_deadline_ms = 10000

[readers.back]
match = "ACS ACR122U*"
dialect = "acr122u"
queue_size = 8
job_deadline_ms = 10000

[membercard]
balance_cap = 500000

[api]
runtime_dir = "run"
max_streams = 16
"""


def cny(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code="CNY", amount_fen=fen)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the POS process: gRPC calls only, timed here -------------------------------------------


class PosClient:
    """One sequential till on the POS socket (the latency phase)."""

    def __init__(self, socket: str) -> None:
        self.channel = grpc.insecure_channel(f"unix:{socket}")
        self.cards = mg.MemberCardServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def read(self, reader: str, uid: str) -> dict[str, Any]:
        request = m.ReadCardRequest(reader=reader, expected_uid=uid)
        t0 = time.perf_counter()
        reply = self.cards.ReadCard(request, timeout=CALL_TIMEOUT_S)
        ms = (time.perf_counter() - t0) * 1e3
        return {"ms": ms, "balance": reply.card.balance.amount_fen}

    def debit(self, reader: str, uid: str, request_id: str) -> dict[str, Any]:
        request = m.DebitRequest(
            reader=reader, request_id=request_id, expected_uid=uid, amount=cny(1)
        )
        t0 = time.perf_counter()
        reply = self.cards.Debit(request, timeout=CALL_TIMEOUT_S)
        ms = (time.perf_counter() - t0) * 1e3
        return {"ms": ms, "balance": reply.result.balance_after.amount_fen}

    def get_op(self, request_id: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.cards.GetOperation(m.GetOperationRequest(request_id=request_id), timeout=5)
        return {"ms": (time.perf_counter() - t0) * 1e3}

    def health(self) -> dict[str, Any]:
        request = health_pb2.HealthCheckRequest(service="carddaemon.v1.MemberCardService")
        t0 = time.perf_counter()
        self.health_stub.Check(request, timeout=CALL_TIMEOUT_S)
        return {"ms": (time.perf_counter() - t0) * 1e3}


async def _till(
    n: int, socket: str, reader: str, uid: str, start: float, end: float, out: dict[str, Any]
) -> None:
    """One till of the rush: a call every 1/RATE s on a fixed schedule until ``end``."""
    async with aio.insecure_channel(f"unix:{socket}") as channel:
        cards = mg.MemberCardServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        await channel.channel_ready()
        last_debit = f"never-{n}"
        k = n  # the tills start at different points of the mix
        loop = asyncio.get_running_loop()
        while True:
            due = start + (k - n) / RATE + n / (RATE * CLIENTS)
            if due >= end:
                return
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = MIX[k % len(MIX)]
            k += 1
            now = loop.time()
            began = min(due, now)  # a late call counts from when it was due
            out["late"] += int(now - due > 0.001)
            try:
                if kind == "read":
                    await cards.ReadCard(
                        m.ReadCardRequest(reader=reader, expected_uid=uid),
                        timeout=CALL_TIMEOUT_S,
                    )
                elif kind == "get_op":
                    await cards.GetOperation(
                        m.GetOperationRequest(request_id=last_debit), timeout=CALL_TIMEOUT_S
                    )
                elif kind == "health":
                    reply = await health.Check(
                        health_pb2.HealthCheckRequest(service="carddaemon.v1.MemberCardService"),
                        timeout=CALL_TIMEOUT_S,
                    )
                    if reply.status != health_pb2.HealthCheckResponse.SERVING:
                        raise RuntimeError(f"health {reply.status}")
                else:
                    rid = f"rush-{uuid.uuid4()}"
                    await cards.Debit(
                        m.DebitRequest(
                            reader=reader, request_id=rid, expected_uid=uid, amount=cny(1)
                        ),
                        timeout=CALL_TIMEOUT_S,
                    )
                    last_debit = rid
            except (grpc.RpcError, RuntimeError) as exc:
                out["errors"].append(f"{kind} on {reader}: {_describe(exc)}")
                continue
            ms = (loop.time() - began) * 1e3
            out["ms"].setdefault(kind, []).append(ms)


async def _watch(n: int, socket: str, stop: asyncio.Event, out: dict[str, Any]) -> None:
    """One event stream: snapshot first, then only increasing sequence numbers."""
    async with aio.insecure_channel(f"unix:{socket}") as channel:
        call = rg.ReaderServiceStub(channel).WatchReaders(r.WatchReadersRequest())
        seen = {"messages": 0, "snapshots": 0}
        last = 0

        async def read() -> None:
            nonlocal last
            async for message in call:
                header = message.header
                if seen["messages"] == 0 and not header.snapshot:
                    out["errors"].append(f"stream {n}: first message is not a snapshot")
                if header.sequence <= last and not header.snapshot:
                    out["errors"].append(f"stream {n}: sequence {header.sequence} after {last}")
                last = max(last, header.sequence)
                seen["messages"] += 1
                seen["snapshots"] += int(header.snapshot)
                if header.dropped_before:
                    out["errors"].append(f"stream {n}: {header.dropped_before} events dropped")

        reader = asyncio.create_task(read())
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done:  # a stream never ends on its own
            exc = reader.exception()
            out["errors"].append(f"stream {n} ended: {_describe(exc) if exc else 'no error'}")
        call.cancel()
        for task in (reader, stopped):
            task.cancel()
            with suppress(asyncio.CancelledError, grpc.RpcError):
                await task
        out["streams"].append(seen)


async def _loop_lag(out: dict[str, Any]) -> None:
    """How late this POS process's own event loop wakes (its share of the measured times)."""
    loop = asyncio.get_running_loop()
    out["loop_lag_ms"] = lags = []
    while True:
        t0 = loop.time()
        await asyncio.sleep(0.005)
        lags.append((loop.time() - t0 - 0.005) * 1e3)


async def rush(socket: str, lanes: list[list[str]], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"ms": {}, "errors": [], "late": 0, "streams": []}
    stop = asyncio.Event()
    watchers = [asyncio.create_task(_watch(i, socket, stop, out)) for i in range(STREAMS)]
    await asyncio.sleep(0.5)  # the streams are open and past their snapshot
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    end = start + seconds
    tills = []
    for i in range(CLIENTS):  # the first half of the tills on the first lane, ...
        reader, uid = lanes[i * len(lanes) // CLIENTS]
        tills.append(_till(i, socket, reader, uid, start, end, out))
    lag = asyncio.create_task(_loop_lag(out))
    await asyncio.gather(*tills)
    out["seconds"] = loop.time() - start
    lag.cancel()
    stop.set()
    await asyncio.gather(*watchers)
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name} {exc.details()}"
    return repr(exc)


def pos_client_main(socket: str) -> int:
    """Answer one JSON command per line on stdin with one JSON line on stdout."""
    client = PosClient(socket)
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        try:
            if op == "read":
                reply = client.read(**command)
            elif op == "debit":
                reply = client.debit(**command)
            elif op == "get_op":
                reply = client.get_op(**command)
            elif op == "health":
                reply = client.health()
            elif op == "rush":
                reply = asyncio.run(rush(socket, **command))
            else:
                break
        except grpc.RpcError as exc:
            reply = {"error": _describe(exc)}
        print(json.dumps(reply), flush=True)
    client.channel.close()
    return 0


# --- the store PC: pcscd + vpcd + station + API server --------------------------------------


class ServerThread(threading.Thread):
    """``daemon.api.run.serve`` over ``station`` in an asyncio loop of its own."""

    def __init__(self, station: Any) -> None:
        super().__init__(name="api-server", daemon=True)
        self.station = station
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        DAEMON_LAG_MS.clear()
        self.lag_ms = DAEMON_LAG_MS  # (when, how late the daemon's loop woke)

    def run(self) -> None:
        from daemon.api.run import serve
        from daemon.api.services import build_services

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop = asyncio.Event()
            with open(os.devnull, "w", encoding="utf-8") as out:
                task = asyncio.create_task(
                    serve(self.station, build_services(self.station), stop=self.stop, out=out)
                )
                while not self.station.config.api.listeners[0].socket.exists():
                    if task.done():
                        await task
                    await asyncio.sleep(0.01)
                self.ready.set()
                lag = asyncio.create_task(self._lag())
                await task
                lag.cancel()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.failed = exc
            self.ready.set()

    async def _lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.005)
            self.lag_ms.append((t0, (loop.time() - t0 - 0.005) * 1e3))

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.join(30)


def write_store(folder: Path) -> Path:
    """The bench's config file in a new store folder, with a fresh key file beside it."""
    from daemon.keystore import Keystore

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "carddaemon.toml"
    config.write_text(CONFIG, encoding="utf-8")
    Keystore.create_file(folder / "keys.toml")
    return config


def uid_for(n: int) -> bytes:
    return bytes((0x04, 0xA1, 0x00, n))


def card_host_main(ports: list[int]) -> int:
    """The simulated readers, each with a blank card, served to pcscd on ``ports`` (one per
    lane, in LANES order) until stdin closes: the hardware, in a process of its own."""
    from sim.card import SimCard
    from sim.reader import SimReader
    from sim.vpcd import VpcdBridge

    logging.disable(logging.WARNING)
    readers = []
    for n, (name, model) in enumerate(LANES.values(), start=1):
        reader = SimReader(f"{name} 00 00", model=model, latency="none")  # type: ignore[arg-type]
        reader.insert(SimCard.blank(uid=uid_for(n)))
        readers.append(reader)
    with VpcdBridge(zip(readers, ports, strict=True)) as bridge:
        bridge.wait_connected()
        print("ready", flush=True)
        sys.stdin.read()
    return 0


@contextmanager
def store_pc(workdir: Path, cards_apart: bool) -> Iterator[tuple[Any, Path]]:
    """pcscd + the simulated readers + the station + its API listeners: ``(station, pos
    socket)``.

    ``cards_apart``: the simulated readers (and their cards, which compute CRYPTO1 in Python)
    run in a process of their own, as hardware would be, instead of in the daemon's process
    where they take its GIL. A blank card lies on each reader from the start (as in
    bench/card_ops.py): a card laid on a vpcd reader is reset once more by pcscd within its
    first second, which a job would see as ``CARD_REMOVED``."""
    from daemon.station import Station
    from sim.card import SimCard
    from sim.pcscd import PrivatePcscd
    from sim.reader import SimReader
    from sim.vpcd import VpcdBridge

    names = [name for name, _ in LANES.values()]
    with PrivatePcscd(names, run_dir=RUN_DIR, debug=False) as pcscd:
        ports = [pcscd.slot(name).port for name in names]
        if not cards_apart:
            readers = []
            for n, (name, model) in enumerate(LANES.values(), start=1):
                reader = SimReader(f"{name} 00 00", model=model, latency="none")  # type: ignore[arg-type]
                reader.insert(SimCard.blank(uid=uid_for(n)))
                readers.append(reader)
            with (
                VpcdBridge(zip(readers, ports, strict=True)) as bridge,
                Station.from_config(write_store(workdir / "store")) as station,
            ):
                bridge.wait_connected()
                yield from _serving(station)
            return
        cards = subprocess.Popen(
            [sys.executable, __file__, "--card-host", *map(str, ports)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert cards.stdout is not None
            if cards.stdout.readline().strip() != "ready":
                raise SystemExit(f"the simulated readers did not start (exit {cards.wait()})")
            with Station.from_config(write_store(workdir / "store")) as station:
                yield from _serving(station)
        finally:
            if cards.stdin is not None:
                cards.stdin.close()
            cards.wait(30)


def _serving(station: Any) -> Iterator[tuple[Any, Path]]:
    with station.hub.subscribe(sources="readers", kinds="card_present") as seen:
        station.start()
        lanes: set[str] = set()
        while len(lanes) < len(LANES):  # pcscd sees both simulated cards
            lanes.add(seen.wait_for(lambda e: True, timeout_s=10).source)
    server = ServerThread(station)
    server.start()
    server.ready.wait(30)
    if server.failed is not None:
        raise server.failed
    pos = station.config.api.listener("pos")
    assert pos is not None
    try:
        yield station, pos.socket
    finally:
        server.shutdown()


def issue_cards(station: Any) -> dict[str, str]:
    """Issue the card on each lane through the station; lane -> UID."""
    from daemon.membercard.requests import IssueCard, IssueSpec, ReadCard

    today = dt.date.today()
    uids = {}
    for n, lane in enumerate(LANES, start=1):
        spec = IssueSpec(f"88000000{n:02d}", 2, today.replace(year=today.year + 3), 400_000, 0)
        station.card(lane, IssueCard(spec, request_id=f"bench-issue-{lane}"))
        station.card(lane, ReadCard())  # first sight: the journal learns the counter
        uids[lane] = uid_for(n).hex().upper()
    return uids


class Pos:
    """The POS process, one command at a time."""

    def __init__(self, socket: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--pos-client", str(socket)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, **command: Any) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise SystemExit(f"the POS client died (exit {self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"POS {command['op']} failed: {reply['error']}")
        return reply

    def close(self) -> None:
        stdin: IO[str] | None = self.process.stdin
        if stdin is not None:
            stdin.close()
        self.process.wait(30)


def latency(station: Any, pos: Pos, uid: str, rounds: int, warmup: int) -> dict[str, list[float]]:
    """``rounds`` of debit, read, read again, direct then over gRPC, alternated; ms per path.

    The read right after a debit reads the card's sectors (the debit changed the card); the
    read after it is answered from the reader's notes of the card lying there (one APDU)."""
    from daemon.membercard.requests import Debit, ReadCard

    lane = "front"
    names = ("read", "read_repeat", "read_direct", "read_repeat_direct", "debit",
             "debit_direct", "get_op", "health")  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in names}

    def direct(request: Any) -> float:
        t0 = time.perf_counter()
        station.card(lane, request)
        return (time.perf_counter() - t0) * 1e3

    def grpc_read(i: int) -> float:
        ms: float = pos.call(op="read", reader=f"readers/{lane}", uid=uid)["ms"]
        return ms

    direct_block: list[tuple[str, Callable[[int], float]]] = [
        ("debit_direct", lambda i: direct(Debit(f"direct-{i}", amount=1, expected_uid=uid))),
        ("read_direct", lambda i: direct(ReadCard(expected_uid=uid))),
        ("read_repeat_direct", lambda i: direct(ReadCard(expected_uid=uid))),
    ]
    grpc_block: list[tuple[str, Callable[[int], float]]] = [
        (
            "debit",
            lambda i: pos.call(
                op="debit", reader=f"readers/{lane}", uid=uid, request_id=f"grpc-{i}"
            )["ms"],
        ),
        ("read", grpc_read),
        ("read_repeat", grpc_read),
    ]
    tail: list[tuple[str, Callable[[int], float]]] = [
        ("get_op", lambda i: pos.call(op="get_op", request_id=f"grpc-{i}")["ms"]),
        ("health", lambda i: pos.call(op="health")["ms"]),
    ]
    for i in range(warmup + rounds):
        blocks = [direct_block, grpc_block] if i % 2 == 0 else [grpc_block, direct_block]
        for name, step in [*blocks[0], *blocks[1], *tail]:
            time.sleep(IDLE_S)  # a till between two calls: nothing in flight, threads asleep
            ms = step(i)
            if i >= warmup:
                times[name].append(ms)
    return times


class CpuTime:
    """What the CPUs did between two points (``/proc/stat``): busy, and stolen - the
    hypervisor of a virtual machine running something else while this one's vCPUs waited."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> list[int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()[1:]
        return [int(f) for f in fields] + [0] * (8 - len(fields))

    def shares(self) -> tuple[float, float]:
        """(busy, steal), each a share of all CPU time since this object was made."""
        now = self._read()
        delta = [b - a for a, b in zip(self._start, now, strict=False)]
        total = sum(delta[:8]) or 1
        user, nice, system, _idle, _iowait, irq, softirq, steal = delta[:8]
        return (user + nice + system + irq + softirq) / total, steal / total


def idle_setting() -> str:
    """How this machine's idle CPUs wait (a halted vCPU wakes slowly under a hypervisor)."""
    base = Path("/sys/devices/system/cpu/cpuidle")
    try:
        driver = (base / "current_driver").read_text(encoding="ascii").strip()
    except OSError:
        return "cpuidle: unknown"
    poll = Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    if driver == "haltpoll" and poll.exists():
        ns = poll.read_text(encoding="ascii").strip()
        return f"cpuidle {driver}, guest_halt_poll_ns={ns}"
    return f"cpuidle {driver}"


@contextmanager
def cpus_awake(wanted: bool) -> Iterator[None]:
    """``--keep-cpus-awake``: hold a PM QoS request of 0 µs wake-up latency for the run, so
    idle CPUs spin instead of halting (what ``tuned``'s latency profiles do). A diagnosis of
    the machine, never the daemon's default: it tells the software's time from the wake-ups'."""
    if not wanted:
        yield
        return
    fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    try:
        os.write(fd, (0).to_bytes(4, sys.byteorder))
        yield
    finally:
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="lunch rush length (60)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a 5 s rush")
    parser.add_argument("--rounds", type=int, default=None, help="latency rounds per path")
    parser.add_argument(
        "--cards-apart", action="store_true", help="the simulated readers in a process apart"
    )
    parser.add_argument(
        "--keep-cpus-awake",
        action="store_true",
        help="hold /dev/cpu_dma_latency at 0 for the run (diagnosis: idle CPUs never halt)",
    )
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (5.0 if args.quick else 60.0)
    rounds = args.rounds if args.rounds is not None else (30 if args.quick else 200)
    logging.disable(logging.WARNING)
    try:
        with (
            cpus_awake(args.keep_cpus_awake),
            tempfile.TemporaryDirectory(prefix="carddaemon-bench-") as tmp,
            store_pc(Path(tmp), args.cards_apart) as (station, socket),
        ):
            uids = issue_cards(station)
            pos = Pos(socket)
            try:
                cpu = CpuTime()
                times = latency(station, pos, uids["front"], rounds, warmup=10)
                cpu_latency = cpu.shares()
                lanes = [[f"readers/{lane}", uids[lane]] for lane in LANES]
                cpu = CpuTime()
                load = pos.call(op="rush", lanes=lanes, seconds=seconds)
                load["cpu"] = cpu.shares()
                load["cpu_latency"] = cpu_latency
                daemon_lags = [ms for _at, ms in DAEMON_LAG_MS] or [0.0]
                load["daemon_lag_ms"] = daemon_lags
            finally:
                pos.close()
    finally:
        shutil.rmtree(RUN_DIR, ignore_errors=True)
    awake = " (--keep-cpus-awake: idle CPUs spin)" if args.keep_cpus_awake else ""
    print(f"machine: {os.cpu_count()} CPUs, {idle_setting()}{awake}")
    return report(times, load)


def report(times: dict[str, list[float]], load: dict[str, Any]) -> int:
    print(f"{'path':34} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")

    def row(name: str, values: list[float]) -> None:
        print(
            f"{name:34} {len(values):6d} {statistics.median(values):8.2f} {pct(values, 0.9):8.2f}"
            f" {pct(values, 0.99):8.2f} {max(values):8.2f}"
        )

    row("ReadCard over gRPC (POS socket)", times["read"])
    row("ReadCard direct (station.card)", times["read_direct"])
    row("ReadCard again, over gRPC (notes)", times["read_repeat"])
    row("ReadCard again, direct (notes)", times["read_repeat_direct"])
    row("Debit over gRPC (POS socket)", times["debit"])
    row("Debit direct (station.card)", times["debit_direct"])
    row("GetOperation over gRPC (journal)", times["get_op"])
    row("Health.Check over gRPC (no card)", times["health"])
    every: list[float] = []
    for kind in ("read", "get_op", "health", "debit"):
        values = load["ms"].get(kind, [])
        every += values
        if values:
            row(f"rush: {kind}", values)
    if every:
        row("rush: every call", every)
    expected = CLIENTS * RATE * load["seconds"]
    print(
        f"rush: {len(every)} calls in {load['seconds']:.1f} s ({len(every) / load['seconds']:.0f}"
        f"/s of {CLIENTS * RATE:.0f}/s planned, ~{expected:.0f}), {load['late']} started late; "
        f"streams: "
        + ", ".join(f"{s['messages']} msgs ({s['snapshots']} snapshot)" for s in load["streams"])
    )
    lags = load.get("loop_lag_ms") or [0.0]
    print(
        f"rush: the POS process's own event loop woke late by p50 {statistics.median(lags):.2f} ms,"
        f" p99 {pct(lags, 0.99):.2f} ms, max {max(lags):.2f} ms (included in the times above)"
    )
    daemon_lags = load["daemon_lag_ms"]
    print(
        f"rush: the daemon's event loop woke late by p50 {statistics.median(daemon_lags):.2f} ms,"
        f" p99 {pct(daemon_lags, 0.99):.2f} ms, max {max(daemon_lags):.2f} ms"
    )
    for phase, (busy, steal) in (("latency", load["cpu_latency"]), ("rush", load["cpu"])):
        print(
            f"{phase}: CPUs busy {busy:.0%}, stolen by the hypervisor {steal:.0%} of the time"
            " (steal: vCPUs that were ready to run and waited, e.g. after waking from a halt)"
        )
    errors: list[str] = load["errors"]
    for line in errors[:10]:
        print(f"  load error: {line}")
    if len(errors) > 10:
        print(f"  ... {len(errors) - 10} more load errors")
    read_p50 = statistics.median(times["read"])
    debit_p50 = statistics.median(times["debit"])
    overhead = debit_p50 - statistics.median(times["debit_direct"])
    load_p99 = pct(every, 0.99)
    overhead_ok = overhead <= OVERHEAD_MAX_MS
    load_ok = load_p99 <= LOAD_P99_MAX_MS and not errors
    print(
        f"targets: api_overhead_p50_ms <= {OVERHEAD_MAX_MS}: "
        f"{'met' if overhead_ok else 'MISSED'}; load_p99_ms <= {LOAD_P99_MAX_MS:.0f} with "
        f"load_errors=0: {'met' if load_ok else 'MISSED'}"
    )
    print(
        f"api_latency: read_p50_ms={read_p50:.2f} debit_p50_ms={debit_p50:.2f} "
        f"debit_p99_ms={pct(times['debit'], 0.99):.2f} api_overhead_p50_ms={overhead:.2f} "
        f"load_p99_ms={load_p99:.2f} load_errors={len(errors)}"
    )
    return 0 if overhead_ok and load_ok else 1


if __name__ == "__main__":
    if POS_CLIENT:
        sys.exit(pos_client_main(sys.argv[sys.argv.index("--pos-client") + 1]))
    if CARD_HOST:
        sys.exit(card_host_main([int(p) for p in sys.argv[sys.argv.index("--card-host") + 1 :]]))
    sys.exit(main())
