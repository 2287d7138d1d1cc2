"""Reader workers over the in-process simulator: ordering, deadlines, back-pressure, unplug."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from daemon.errors import (
    CardAbsent,
    CardRemoved,
    InvalidArgument,
    OperationTimeout,
    ReaderBusy,
    ReaderUnavailable,
)
from daemon.readers.connection import CardConnection, Response
from daemon.readers.monitor import EventKind, ReaderMonitor
from daemon.readers.workers import JobContext, ReaderPool, ReaderWorker
from sim.backend import SimBackend
from sim.card import SimCard
from sim.reader import SimReader
from tests.pcscd_stack import AFTER_PULL, Stack, is_event

GET_UID = bytes.fromhex("FFCA000000")  # GET DATA: UID
UID_A = bytes.fromhex("A1B2C3D4")
UID_B = bytes.fromhex("04112233445566")  # 7-byte UID
UID_C = bytes.fromhex("C0FFEE42")
WAIT = 5.0  # generous bound for "does not hang"; never a timing assertion


class FakeClock:
    """A monotonic clock the test moves by hand, so deadlines never depend on real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A job that holds the worker until the test opens the gate."""

    def __init__(self, then: Callable[[JobContext], object] | None = None) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.then = then

    def __call__(self, ctx: JobContext) -> object:
        self.started.set()
        assert self.release.wait(WAIT), "test forgot to open the gate"
        return self.then(ctx) if self.then is not None else None


def read_uid(ctx: JobContext) -> bytes:
    response = ctx.connection.transmit(GET_UID)
    assert response.ok
    return response.data


@pytest.fixture
def reader() -> SimReader:
    reader = SimReader("ACS ACR1252U 00 00", model="acr1252u")
    reader.insert(SimCard.blank(uid=UID_A))
    return reader


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def worker(reader: SimReader, clock: FakeClock) -> Iterator[ReaderWorker]:
    with ReaderWorker(reader.name, reader.connect, max_queue=3, clock=clock) as w:
        yield w


def test_jobs_run_one_at_a_time_in_submission_order(worker: ReaderWorker, clock: FakeClock) -> None:
    gate = Gate()
    order: list[int] = []
    inside = 0
    overlap = False
    lock = threading.Lock()

    def job(i: int) -> Callable[[JobContext], bytes]:
        def run(ctx: JobContext) -> bytes:
            nonlocal inside, overlap
            with lock:
                inside += 1
                overlap = overlap or inside > 1
            order.append(i)
            uid = read_uid(ctx)
            with lock:
                inside -= 1
            return uid

        return run

    first = worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    futures = [worker.submit(job(i), clock() + 60) for i in range(3)]
    gate.release.set()
    assert first.result(WAIT) is None
    assert [f.result(WAIT) for f in futures] == [UID_A] * 3
    assert order == [0, 1, 2]
    assert not overlap


def test_job_not_started_by_its_deadline_fails_without_touching_the_card(
    worker: ReaderWorker, reader: SimReader, clock: FakeClock
) -> None:
    gate = Gate()
    ran = threading.Event()

    def late(ctx: JobContext) -> bytes:
        ran.set()
        return read_uid(ctx)

    worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    apdus_before = reader.apdu_count
    doomed = worker.submit(late, clock() + 1)
    clock.now += 2  # the deadline passes while the job waits behind the gate
    gate.release.set()
    with pytest.raises(OperationTimeout, match=r"ACR1252U.*deadline passed before it started"):
        doomed.result(WAIT)
    assert not ran.is_set()
    assert reader.apdu_count == apdus_before


def test_running_job_gets_the_remaining_time(worker: ReaderWorker, clock: FakeClock) -> None:
    assert worker.submit(lambda ctx: ctx.remaining(), clock() + 7.5).result(WAIT) == 7.5

    def overrun(ctx: JobContext) -> None:
        clock.now += 10
        ctx.check_deadline("reading the member record")

    with pytest.raises(OperationTimeout, match="reading the member record ran past its deadline"):
        worker.submit(overrun, clock() + 5).result(WAIT)


def test_full_queue_rejects_at_once_with_reader_busy(
    worker: ReaderWorker, clock: FakeClock
) -> None:
    gate = Gate()
    worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    queued = [worker.submit(read_uid, clock() + 60) for _ in range(3)]
    with pytest.raises(ReaderBusy, match=r"ACR1252U.*3 jobs already waiting \(limit 3\)"):
        worker.submit(read_uid, clock() + 60)
    gate.release.set()
    assert [f.result(WAIT) for f in queued] == [UID_A] * 3
    assert worker.submit(read_uid, clock() + 60).result(WAIT) == UID_A  # room again


def test_expired_waiting_jobs_make_room_in_a_full_queue(
    worker: ReaderWorker, clock: FakeClock
) -> None:
    gate = Gate()
    worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    stale = [worker.submit(read_uid, clock() + 1) for _ in range(3)]
    clock.now += 2
    fresh = worker.submit(read_uid, clock() + 60)  # accepted: the stale jobs no longer count
    for future in stale:
        with pytest.raises(OperationTimeout):
            future.result(WAIT)
    gate.release.set()
    assert fresh.result(WAIT) == UID_A


def test_unplugged_reader_fails_waiting_jobs_naming_the_reader(
    worker: ReaderWorker, reader: SimReader, clock: FakeClock
) -> None:
    gate = Gate(then=read_uid)
    running = worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    waiting = [worker.submit(read_uid, clock() + 60) for _ in range(3)]
    reader.unplug()
    gate.release.set()
    with pytest.raises(ReaderUnavailable):
        running.result(WAIT)
    for future in waiting:
        with pytest.raises(ReaderUnavailable, match=r"ACR1252U 00 00.*disappeared"):
            future.result(WAIT)
    assert worker.alive
    with pytest.raises(ReaderUnavailable):  # still unplugged: a new job fails, never hangs
        worker.submit(read_uid, clock() + 60).result(WAIT)
    reader.replug()
    if reader.card is None:
        reader.insert(SimCard.blank(uid=UID_A))
    assert worker.submit(read_uid, clock() + 60).result(WAIT) == UID_A


def test_a_crashing_job_does_not_kill_the_worker(worker: ReaderWorker, clock: FakeClock) -> None:
    def crash(ctx: JobContext) -> None:
        ctx.connection.transmit(GET_UID)
        raise RuntimeError("bug in a job")

    def exit_(ctx: JobContext) -> None:
        raise SystemExit(3)

    with pytest.raises(RuntimeError, match="bug in a job"):
        worker.submit(crash, clock() + 60).result(WAIT)
    with pytest.raises(SystemExit):
        worker.submit(exit_, clock() + 60).result(WAIT)
    assert worker.alive
    assert worker.submit(read_uid, clock() + 60).result(WAIT) == UID_A


def test_no_card_fails_the_job_not_the_worker(
    worker: ReaderWorker, reader: SimReader, clock: FakeClock
) -> None:
    reader.remove()
    with pytest.raises(CardAbsent):
        worker.submit(read_uid, clock() + 60).result(WAIT)
    reader.insert(SimCard.blank(uid=UID_B))
    assert worker.submit(read_uid, clock() + 60).result(WAIT) == UID_B


def test_swapped_card_is_read_after_the_monitor_reports_removal(
    reader: SimReader, clock: FakeClock
) -> None:
    readers = {"ACS ACR1252U 00 00": reader}
    with ReaderPool(lambda name: readers[name].connect(), clock=clock) as pool:
        pool.reader_attached("ACS ACR1252U 00 00")
        assert pool.submit("ACS ACR1252U 00 00", read_uid, clock() + 60).result(WAIT) == UID_A
        reader.remove()
        reader.insert(SimCard.blank(uid=UID_B))
        pool.card_removed("ACS ACR1252U 00 00")
        assert pool.submit("ACS ACR1252U 00 00", read_uid, clock() + 60).result(WAIT) == UID_B


def test_close_fails_waiting_jobs_joins_the_thread_and_is_idempotent(
    reader: SimReader, clock: FakeClock
) -> None:
    worker = ReaderWorker("ACS ACR1252U 00 00", reader.connect, clock=clock)
    gate = Gate()
    worker.submit(gate, clock() + 60)
    assert gate.started.wait(WAIT)
    waiting = worker.submit(read_uid, clock() + 60)
    closer = threading.Thread(target=worker.close, name="test-closer")
    closer.start()
    with pytest.raises(ReaderUnavailable, match=r"ACR1252U 00 00.*worker closed"):
        waiting.result(WAIT)
    gate.release.set()
    closer.join(WAIT)
    assert not worker.alive
    worker.close()
    with pytest.raises(ReaderUnavailable, match="worker closed"):
        worker.submit(read_uid, clock() + 60)


def test_bad_queue_size_is_refused(reader: SimReader) -> None:
    with pytest.raises(InvalidArgument, match="max_queue: must be at least 1, got 0"):
        ReaderWorker("r", reader.connect, max_queue=0)


def test_pool_creates_and_closes_workers_as_readers_come_and_go(clock: FakeClock) -> None:
    acr = SimReader("ACS ACR1252U 00 00", model="acr1252u")
    omni = SimReader("HID Global OMNIKEY 5022 Smart Card Reader 00 00", model="omnikey5x21")
    acr.insert(SimCard.blank(uid=UID_A))
    omni.insert(SimCard.blank(uid=UID_B))
    readers = {r.name: r for r in (acr, omni)}

    def connect(name: str) -> CardConnection:
        return readers[name].connect()

    pool = ReaderPool(connect, clock=clock)
    first = pool.reader_attached(acr.name)
    assert pool.reader_attached(acr.name) is first  # attach events may repeat
    pool.reader_attached(omni.name)
    assert pool.names() == sorted(readers)
    assert pool.submit(acr.name, read_uid, clock() + 60).result(WAIT) == UID_A
    assert pool.submit(omni.name, read_uid, clock() + 60).result(WAIT) == UID_B

    gate = Gate()
    pool.submit(omni.name, gate, clock() + 60)
    assert gate.started.wait(WAIT)
    waiting = pool.submit(omni.name, read_uid, clock() + 60)
    detacher = threading.Thread(target=pool.reader_detached, args=(omni.name,), name="detacher")
    detacher.start()
    with pytest.raises(ReaderUnavailable, match="OMNIKEY 5022"):
        waiting.result(WAIT)
    gate.release.set()
    detacher.join(WAIT)
    with pytest.raises(ReaderUnavailable, match=r"OMNIKEY 5022.*not attached"):
        pool.submit(omni.name, read_uid, clock() + 60)
    pool.reader_detached(omni.name)  # a repeated detach is harmless

    again = pool.reader_attached(omni.name)
    assert again.submit(read_uid, clock() + 60).result(WAIT) == UID_B
    pool.close()
    pool.close()
    assert not first.alive
    assert not again.alive
    with pytest.raises(ReaderUnavailable, match="pool is closed"):
        pool.reader_attached(acr.name)


def test_async_run_returns_the_result_and_times_out_jobs_that_never_started(
    reader: SimReader,
) -> None:
    async def scenario(worker: ReaderWorker) -> None:
        assert await worker.run(read_uid, timeout=WAIT) == UID_A
        gate = Gate()
        held = worker.submit_within(gate, WAIT)
        assert await asyncio.to_thread(gate.started.wait, WAIT)
        ran = threading.Event()

        def never(ctx: JobContext) -> None:
            ran.set()

        with pytest.raises(OperationTimeout, match="did not start within"):
            await worker.run(never, timeout=0.05)
        gate.release.set()
        await asyncio.wrap_future(held)
        assert await worker.run(read_uid, timeout=WAIT) == UID_A
        assert not ran.is_set()

    with ReaderWorker("ACS ACR1252U 00 00", reader.connect) as worker:
        asyncio.run(scenario(worker))


def test_pool_follows_the_monitor_and_an_unplug_fails_waiting_jobs() -> None:
    acr = SimReader("ACS ACR1252U 00 00", model="acr1252u")
    acr.insert(SimCard.blank(uid=UID_A))
    backend = SimBackend([acr])
    pool = ReaderPool(backend.connect)
    monitor = ReaderMonitor(backend, read_uid=False, poll_timeout_s=0.05)
    events = monitor.hub.subscribe()
    monitor.subscribe(pool.handle_event)
    with backend, pool, monitor:  # closed in reverse: monitor, pool, backend
        events.wait_for(is_event(EventKind.CARD_PRESENT), WAIT)
        assert pool.names() == [acr.name]
        assert pool.submit(acr.name, read_uid, time.monotonic() + WAIT).result(WAIT) == UID_A

        gate = Gate(then=read_uid)
        running = pool.submit(acr.name, gate, time.monotonic() + WAIT)
        assert gate.started.wait(WAIT)
        waiting = pool.submit(acr.name, read_uid, time.monotonic() + WAIT)
        acr.unplug()  # the monitor sees the reader vanish and detaches it
        with pytest.raises(ReaderUnavailable, match=r"ACR1252U 00 00.*worker closed"):
            waiting.result(WAIT)  # failed at once, while the gate job still runs
        gate.release.set()
        with pytest.raises(ReaderUnavailable, match="unplugged"):
            running.result(WAIT)
        assert pool.names() == []

        acr.replug()
        # CARD_PRESENT follows READER_ATTACHED, whose callback (the pool) has run by then
        events.wait_for(is_event(EventKind.CARD_PRESENT), WAIT)
        assert pool.submit(acr.name, read_uid, time.monotonic() + WAIT).result(WAIT) == UID_A


def test_pool_jobs_on_the_simulator_and_through_real_pcscd(stack: Stack) -> None:
    """The workers own pyscard handles on their own threads; a swapped card is read afresh."""
    with ReaderPool(stack.backend.connect) as pool:
        for i in range(2):
            pool.reader_attached(stack.name(i))
        stack.insert(0, SimCard.blank(uid=UID_A))
        stack.insert(1, SimCard.blank(uid=UID_B))
        deadline = time.monotonic() + 30
        futures = [pool.submit(stack.name(i % 2), read_uid, deadline) for i in range(6)]
        assert [f.result(30) for f in futures] == [UID_A, UID_B] * 3

        stack.remove(0)
        with pytest.raises(AFTER_PULL[stack.kind]):  # the worker's handle is the old card's
            pool.submit(stack.name(0), read_uid, deadline).result(30)
        stack.insert(0, SimCard.blank(uid=UID_C))
        pool.card_removed(stack.name(0))
        assert pool.submit(stack.name(0), read_uid, deadline).result(30) == UID_C
        stack.remove(0)
        stack.remove(1)


class CloseFails:
    """A connection whose driver throws on disconnect (seen with pyscard after pcscd died)."""

    def __init__(self, reader: SimReader) -> None:
        self.inner = reader.connect()

    @property
    def reader_name(self) -> str:
        return self.inner.reader_name

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> Response:
        return self.inner.transmit(apdu)

    def reconnect(self, reset: bool = False) -> None:
        self.inner.reconnect(reset)

    def close(self) -> None:
        raise RuntimeError("SCardDisconnect failed")


def test_a_connection_that_fails_to_close_does_not_kill_the_worker(
    reader: SimReader, clock: FakeClock
) -> None:
    with ReaderWorker(reader.name, lambda: CloseFails(reader), clock=clock) as worker:
        worker.submit(lambda ctx: ctx.connection, clock() + 60).result(WAIT)  # opens it
        reader.remove()
        with pytest.raises(CardRemoved):
            worker.submit(read_uid, clock() + 60).result(WAIT)  # dropped: close() raises
        reader.insert(SimCard.blank(uid=UID_C))
        assert worker.submit(read_uid, clock() + 60).result(WAIT) == UID_C
        assert worker.alive


def test_a_job_right_after_a_card_arrives_reaches_that_card(stack: Stack) -> None:
    """A till reads the card the moment the monitor reports it; the worker's connection may
    predate the card (or pcscd may still be resetting it): the job must not fail with
    CARD_REMOVED when nothing of it was sent yet."""

    def uid(ctx: JobContext) -> bytes:
        return ctx.connection.transmit(GET_UID).data

    with ReaderPool(stack.backend.connect) as pool:
        name = stack.name(0)
        pool.reader_attached(name)
        for n in range(8):
            card = SimCard.blank(uid=bytes([0x04, 0xA0, 0x00, n]))
            stack.readers[0].insert(card)  # the till does not wait for pcscd to notice
            deadline = time.monotonic() + 10
            while True:
                try:
                    got = pool.submit(name, uid, time.monotonic() + 10).result(10)
                    break
                except CardAbsent:  # pcscd has not seen it yet: no card is the right answer
                    assert time.monotonic() < deadline
                    time.sleep(0.005)
            assert got == card.uid
            stack.remove(0)
            pool.card_removed(name)
