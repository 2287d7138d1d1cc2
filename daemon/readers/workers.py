"""One worker thread per reader: it owns the reader's connection and runs card jobs one at a time.

Why a thread per reader: MIFARE authentication state lives in the connection, so two jobs that
interleave APDUs on one reader would break each other's authentication. Serialising all jobs
for a reader on one thread makes that impossible, and keeps blocking PC/SC calls off the
asyncio loop.

Rules the worker keeps (each one a promise to callers):

* every job has a deadline; a job that has not started by then fails with
  :class:`~daemon.errors.OperationTimeout` and never touches the card; a job that runs gets the
  remaining time through :class:`JobContext`;
* the queue is bounded; a full queue rejects at once with :class:`~daemon.errors.ReaderBusy`,
  the caller never blocks;
* a reader that disappears (:class:`~daemon.errors.ReaderUnavailable` from the connection, or
  :meth:`ReaderPool.reader_detached`) fails every queued job with an error naming the reader;
* a job raising anything never kills the worker; the connection is dropped after any failure
  (authentication state unknown) and opened again by the next job that needs it;
* a job runs inside one PC/SC transaction (if the connection is ``Transacted``), begun when it
  first takes the connection: no other PC/SC client can slip a command in between its
  AUTHENTICATE and its READ/WRITE. It ends leaving the card, or resetting it after a job that
  failed with the card still there (authentication state unknown); one that cannot begin fails
  the job before any APDU is sent. A job's clean-ups (:meth:`JobContext.after`, e.g. dropping
  a member sector's authentication) run inside the transaction after the caller has its
  result, so they never add to the caller's wait; after a failure too (a write whose answer
  was lost is "card in doubt", left without a reset, yet the card may still be there and
  authenticated), unless the reader itself is gone;
* what a job noted about the card lying on the reader (:meth:`JobContext.remember`) lives only
  as long as the connection it was learnt on (forgotten when the card leaves, is swapped or a
  job fails), and only across jobs that take part: a job that took the connection without
  calling :meth:`JobContext.recall` (a write, a probe, anything else) forgets it, because it
  may have changed the card.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from daemon.errors import (
    CardDaemonError,
    InvalidArgument,
    OperationTimeout,
    PcscUnavailable,
    ReaderBusy,
    ReaderUnavailable,
)
from daemon.readers.connection import CardConnection, ClosesOnExit
from daemon.readers.jobtxn import JobTransaction
from daemon.readers.monitor import EventKind, ReaderEvent

__all__ = ["DEFAULT_MAX_QUEUE", "Job", "JobContext", "ReaderPool", "ReaderWorker"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Waiting jobs per reader (the running job not counted). A POS has one customer at a time;
#: more than a few waiting jobs means something upstream is retrying in a loop.
DEFAULT_MAX_QUEUE = 8

#: How long :meth:`ReaderWorker.close` waits for a running job before giving up on joining.
DEFAULT_CLOSE_TIMEOUT_S = 10.0


class JobContext:
    """What a running job may use: the reader's connection (opened lazily) and its deadline."""

    def __init__(self, worker: ReaderWorker, deadline: float) -> None:
        self._worker = worker
        self.deadline = deadline
        self.cleanups: list[Callable[[], None]] = []
        self.took_connection = False
        self.kept_notes = False

    def after(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` once the job ended and its caller has the result or the error (a
        failed job too, unless the reader is gone), still inside the job's transaction (no
        other PC/SC client in between); a card error there (the card left) is logged, never
        the job's outcome."""
        self.cleanups.append(cleanup)

    def recall(self, key: str) -> Any:
        """What an earlier job :meth:`remember`-ed under ``key`` about the card on this
        connection, else None. Calling it says this job keeps the notes true (it only reads, or
        remembers what it changed); any other job that takes the connection forgets them."""
        self.kept_notes = True
        return self._worker._notes.get(key)

    def remember(self, key: str, value: Any) -> None:
        """Note ``value`` about the card on this connection for the next jobs (see
        :meth:`recall`)."""
        self.kept_notes = True
        self._worker._notes[key] = value

    @property
    def reader_name(self) -> str:
        return self._worker.name

    @property
    def connection(self) -> CardConnection:
        """The card connection, opened on first use (raises ``CardAbsent`` with no card) and
        held in the job's PC/SC transaction from then on."""
        self.took_connection = True
        return self._worker._job_connection()

    def remaining(self) -> float:
        """Seconds left before this job's deadline (never negative)."""
        return max(0.0, self.deadline - self._worker._clock())

    def check_deadline(self, what: str = "job") -> None:
        """Raise ``OperationTimeout`` if the deadline passed; call only *between* card writes."""
        if self.remaining() <= 0.0:
            raise OperationTimeout(f"reader {self._worker.name!r}: {what} ran past its deadline")


Job = Callable[[JobContext], T]


@dataclass(eq=False)
class _Pending(Generic[T]):
    job: Callable[[JobContext], T]
    deadline: float
    future: concurrent.futures.Future[T] = field(default_factory=concurrent.futures.Future)
    #: the submitter's context variables (the request id of the RPC being served): the job,
    #: its clean-ups and their log lines run in a copy of it on the worker thread
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class ReaderWorker(ClosesOnExit):
    """Owns one reader's connection on its own thread and runs submitted jobs in order."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], CardConnection],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 1:
            raise InvalidArgument("max_queue", f"must be at least 1, got {max_queue}")
        self.name = name
        self._connect = connect
        self._max_queue = max_queue
        self._clock = clock
        self._queue: collections.deque[_Pending[Any]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._connection: CardConnection | None = None
        self._transaction = JobTransaction(name)  # the running job's, once it took the card
        self._drop_connection = False
        #: what jobs noted about the card on this connection (JobContext.remember)
        self._notes: dict[str, Any] = {}
        self._running = False  # a job (or its clean-up) is on the thread
        # not a daemon thread: interpreter exit must never cut a card write in half
        self._thread = threading.Thread(target=self._run, name=f"reader-worker[{name}]")
        self._thread.start()

    # --- caller side ------------------------------------------------------------------------

    def submit(
        self, job: Callable[[JobContext], T], deadline: float
    ) -> concurrent.futures.Future[T]:
        """Queue ``job`` to run before ``deadline`` (on this worker's clock, ``time.monotonic``).

        Never blocks: raises ``ReaderBusy`` when the queue is full and ``ReaderUnavailable`` when
        the worker is closed. Cancelling the returned future before the job starts skips it.
        """
        pending: _Pending[T] = _Pending(job, deadline)
        with self._cond:
            if self._closed:
                raise ReaderUnavailable(f"reader {self.name!r} is gone (worker closed)")
            self._expire_locked()
            if len(self._queue) >= self._max_queue:
                raise ReaderBusy(
                    f"reader {self.name!r}: {len(self._queue)} jobs already waiting "
                    f"(limit {self._max_queue}); retry later"
                )
            self._queue.append(pending)
            self._cond.notify()
        return pending.future

    def submit_within(
        self, job: Callable[[JobContext], T], timeout: float
    ) -> concurrent.futures.Future[T]:
        """:meth:`submit` with a deadline ``timeout`` seconds from now."""
        return self.submit(job, self._clock() + timeout)

    async def run(self, job: Callable[[JobContext], T], timeout: float) -> T:
        """Asyncio front door (for the gRPC servicers): submit and await the result.

        If the job has not started when ``timeout`` runs out it is cancelled and
        ``OperationTimeout`` is raised. A job that already started is awaited to its end: it
        got the remaining time and may be in the middle of a card write, whose outcome the
        caller must learn rather than guess.
        """
        future = self.submit_within(job, timeout)
        wrapped = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(wrapped), timeout)
        except TimeoutError:
            if future.cancel():
                raise OperationTimeout(
                    f"reader {self.name!r}: job did not start within {timeout:.3f} s"
                ) from None
            return await wrapped

    @property
    def queued(self) -> int:
        """Jobs waiting (not counting the one running)."""
        with self._cond:
            return len(self._queue)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (its clean-up included) and none is queued; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running and not self._queue, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def drop_connection(self) -> None:
        """Forget the connection before the next job (card removed or swapped, per the monitor)."""
        with self._cond:
            self._drop_connection = True

    def fail_pending(self, exc_factory: Callable[[], BaseException]) -> int:
        """Fail every job still waiting with a fresh exception each; returns how many."""
        with self._cond:
            drained = list(self._queue)
            self._queue.clear()
        failed = 0
        for pending in drained:
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(exc_factory())
                failed += 1
        return failed

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT_S, *, wait: bool = True) -> None:
        """Stop taking jobs, fail the waiting ones with ``ReaderUnavailable``, join. Idempotent.

        ``wait=False`` returns without joining (the running job finishes, then the thread
        ends): for callers on the monitor thread, which must never block on a card job.
        """
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
        if not already:
            failed = self.fail_pending(
                lambda: ReaderUnavailable(f"reader {self.name!r} is gone (worker closed)")
            )
            if failed:
                logger.info("reader %r closed with %d jobs still waiting", self.name, failed)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "reader %r: worker thread still running a job after %.1f s", self.name, timeout
                )

    # --- worker side ------------------------------------------------------------------------

    def _expire_locked(self) -> None:
        """Fail queued jobs whose deadline passed (caller holds the lock)."""
        now = self._clock()
        keep: collections.deque[_Pending[Any]] = collections.deque()
        for pending in self._queue:
            if pending.deadline <= now:
                self._fail_expired(pending)
            else:
                keep.append(pending)
        self._queue = keep

    def _fail_expired(self, pending: _Pending[Any]) -> None:
        if pending.future.set_running_or_notify_cancel():
            pending.future.set_exception(
                OperationTimeout(f"reader {self.name!r}: job deadline passed before it started")
            )

    def _ensure_connection(self) -> CardConnection:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _job_connection(self) -> CardConnection:
        connection = self._ensure_connection()
        self._transaction.hold(connection)  # card gone: the job fails here, nothing sent
        return connection

    def _close_connection(self) -> None:
        self._notes.clear()
        self._transaction.forget()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # a failing close must not take the worker down
                logger.warning("reader %r: closing the connection failed: %s", self.name, exc)

    def _next(self) -> _Pending[Any] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            drop, self._drop_connection = self._drop_connection, False
            pending = None if self._closed else self._queue.popleft()
            self._running = pending is not None
        if drop:
            self._close_connection()
        return pending

    def _run(self) -> None:
        try:
            while (pending := self._next()) is not None:
                try:
                    pending.context.run(self._execute, pending)
                finally:
                    # the finished job (and an exception holding its caller's frames) must not
                    # stay referenced while the worker waits for the next one
                    del pending
                    with self._cond:
                        self._running = False
                        self._cond.notify_all()
        finally:
            self._close_connection()
            logger.debug("reader %r worker stopped", self.name)

    def _execute(self, pending: _Pending[Any]) -> None:
        if pending.deadline <= self._clock():
            self._fail_expired(pending)
            return
        if not pending.future.set_running_or_notify_cancel():
            return
        ctx = JobContext(self, pending.deadline)
        started = self._clock()
        try:
            result = pending.job(ctx)
        except BaseException as exc:  # a job must never kill the worker (its notes go with
            # the connection, closed on every failure below)
            logger.debug(
                "reader %r: job failed after %.1f ms: %s",
                self.name,
                (self._clock() - started) * 1000,
                getattr(exc, "reason", type(exc).__name__),
            )
            if ctx.cleanups and not isinstance(exc, ReaderUnavailable | PcscUnavailable):
                # the card may still be there and authenticated to a member sector (a write
                # whose answer was lost): the caller has its answer first, then the clean-up
                pending.future.set_exception(exc)
                self._after(ctx)
                self._transaction.end(exc)
                self._close_connection()
            else:
                self._transaction.end(exc)
                self._close_connection()
                pending.future.set_exception(exc)
            if isinstance(exc, ReaderUnavailable | PcscUnavailable):
                self._reader_lost(exc)
            elif not isinstance(exc, CardDaemonError):
                logger.exception("reader %r: job crashed", self.name, exc_info=exc)
        else:
            logger.debug(
                "reader %r: job done in %.1f ms", self.name, (self._clock() - started) * 1000
            )
            if ctx.took_connection and not ctx.kept_notes:
                self._notes.clear()  # it may have changed the card
            # the caller has its answer first: the job's clean-up is not its wait
            pending.future.set_result(result)
            if not self._after(ctx) or not self._transaction.end(None):
                self._close_connection()

    def _after(self, ctx: JobContext) -> bool:
        """Run the job's clean-ups (:meth:`JobContext.after`), still inside its transaction;
        False if one failed (the card left after the job): drop the connection."""
        for cleanup in ctx.cleanups:
            try:
                cleanup()
            except CardDaemonError as exc:
                logger.debug("reader %r: job clean-up skipped: %s", self.name, exc)
                return False
        return True

    def _reader_lost(self, exc: ReaderUnavailable | PcscUnavailable) -> None:
        kind = type(exc)
        failed = self.fail_pending(
            lambda: kind(f"reader {self.name!r} disappeared before this job started ({exc.reason})")
        )
        logger.warning("reader %r lost (%s); failed %d waiting jobs", self.name, exc, failed)


class ReaderPool(ClosesOnExit):
    """One :class:`ReaderWorker` per attached reader, created and closed as readers come and go.

    Fed by the reader monitor: ``monitor.subscribe(pool.handle_event)``, which only calls
    :meth:`reader_attached`, :meth:`reader_detached` and :meth:`card_removed`.
    """

    def __init__(
        self,
        connect: Callable[[str], CardConnection],
        *,
        max_queue: int | Callable[[str], int] = DEFAULT_MAX_QUEUE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_queue``: one size for every reader, or a function of the reader's name (the
        station gives each reader its ``[readers.<id>] queue_size``)."""
        self._connect = connect
        self._max_queue = max_queue if callable(max_queue) else (lambda _name: max_queue)
        self._clock = clock
        self._workers: dict[str, ReaderWorker] = {}
        self._retired: list[ReaderWorker] = []  # closed without joining; joined by close()
        self._lock = threading.Lock()
        self._closed = False

    def reader_attached(self, name: str) -> ReaderWorker:
        """Start a worker for ``name`` (or return the existing one)."""
        with self._lock:
            if self._closed:
                raise ReaderUnavailable(f"reader {name!r}: reader pool is closed")
            worker = self._workers.get(name)
            if worker is None or not worker.alive:
                worker = ReaderWorker(
                    name,
                    lambda: self._connect(name),
                    max_queue=self._max_queue(name),
                    clock=self._clock,
                )
                self._workers[name] = worker
                logger.info("reader %r attached", name)
            return worker

    def reader_detached(self, name: str, *, wait: bool = True) -> None:
        """Close ``name``'s worker; its waiting jobs fail with ``ReaderUnavailable``.

        ``wait=False`` does not wait for a running job (it is joined later by :meth:`close`).
        """
        with self._lock:
            worker = self._workers.pop(name, None)
            if worker is not None and not wait:
                self._retired = [w for w in self._retired if w.alive]
                self._retired.append(worker)
        if worker is not None:
            logger.info("reader %r detached", name)
            worker.close(wait=wait)

    def handle_event(self, event: ReaderEvent) -> None:
        """Monitor callback: attach/detach workers, renew the connection when cards change.

        Runs on the monitor thread, so it never waits for a card job.
        """
        if event.reader is None or self._closed:
            return
        if event.kind is EventKind.READER_ATTACHED:
            self.reader_attached(event.reader)
        elif event.kind is EventKind.READER_DETACHED:
            self.reader_detached(event.reader, wait=False)
        elif event.kind in (EventKind.CARD_REMOVED, EventKind.CARD_PRESENT):
            self.card_removed(event.reader)

    def card_removed(self, name: str) -> None:
        """The card left ``name``'s field: the next job opens a fresh connection."""
        with self._lock:
            worker = self._workers.get(name)
        if worker is not None:
            worker.drop_connection()

    def worker(self, name: str) -> ReaderWorker:
        with self._lock:
            worker = self._workers.get(name)
        if worker is None:
            raise ReaderUnavailable(f"reader {name!r} is not attached")
        return worker

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._workers)

    def submit(
        self, name: str, job: Callable[[JobContext], T], deadline: float
    ) -> concurrent.futures.Future[T]:
        return self.worker(name).submit(job, deadline)

    def close(self) -> None:
        """Close every worker. Idempotent."""
        with self._lock:
            self._closed = True
            workers = [*self._workers.values(), *self._retired]
            self._workers.clear()
            self._retired.clear()
        for worker in workers:
            worker.close()
