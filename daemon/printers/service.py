"""The printing service: spool + one worker thread per printer, publishing to an event hub.

``submit`` validates and encodes the receipt, commits it to the spool and returns the job: from
then on the receipt survives a crash. The worker prints queued jobs in order, checks status
before each one, waits out paper-out / cover-open / offline, and polls status while idle.
Status changes (kind ``status``, payload :class:`PrinterStatus`; the current one is the
snapshot) and job state changes (kind ``job``, payload :class:`Job`) go to the
:class:`~daemon.events.EventHub` under ``printers/<id>``; a slow subscriber loses the oldest
events there, it never stalls the printer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Self, TypeVar

from daemon.errors import (
    ConfigError,
    InvalidArgument,
    OperationTimeout,
    PrinterError,
    PrinterOffline,
)
from daemon.events import EventHub, Subscription
from daemon.printers.backend import PrinterBackend, PrinterConfig
from daemon.printers.encoder import ReceiptEncoder
from daemon.printers.printer import ReceiptPrinter
from daemon.printers.profiles import PrinterProfile
from daemon.printers.receipt import Receipt, check_logo
from daemon.printers.spool import Job, JobState, Spool
from daemon.printers.status import PrinterStatus

__all__ = ["JOB", "STATUS", "PrinterService"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATUS = "status"
JOB = "job"


def _stored_logo(config: PrinterConfig, profile: PrinterProfile) -> bytes | None:
    """The configured logo, checked at start: a bad file is a ConfigError naming the key, not
    a crash (or an unprintable image) at the first receipt that asks for the logo."""
    if not config.logo_path:
        return None
    key = f"printers.{config.id}.logo_path"
    try:
        png = Path(config.logo_path).read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {config.logo_path}: {exc.strerror}") from exc
    check_logo(png, profile, key, ConfigError)
    return png


class PrinterService:
    """Owns one printer and its spool; a context manager; ``close`` is idempotent."""

    def __init__(
        self,
        config: PrinterConfig,
        spool: Spool | Path | str,
        backend: PrinterBackend | None = None,
        profile: PrinterProfile | None = None,
        *,
        hub: EventHub | None = None,
    ) -> None:
        self.config = config
        self.source = f"printers/{config.id}"
        self._own_hub = hub is None
        self.hub = hub if hub is not None else EventHub()
        self.printer = ReceiptPrinter(config, backend, profile)
        logo = _stored_logo(config, self.printer.profile)
        self.encoder = ReceiptEncoder(self.printer.profile, stored_logo=logo)
        self._own_spool = not isinstance(spool, Spool)
        self.spool = spool if isinstance(spool, Spool) else Spool(spool)
        self.recovered = self.spool.recover(config.id)
        self._status = PrinterStatus.unreachable()
        #: wall-clock time of the last status change (``status_change_time`` in the API)
        self.status_time = time.time()
        self.hub.publish(self.source, STATUS, self._status, state="event")
        for job in self.recovered:
            logger.warning("printer %s: job %s is UNCERTAIN after restart", config.id, job.id)
            self._job_changed(job)
        self._calls: queue.Queue[tuple[Callable[[], object], Future[object]]] = queue.Queue()
        self._wake = threading.Event()
        self._job_done = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, name=f"printer-{config.id}", daemon=True
        )
        self._thread.start()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """The printer's thread is running (the watchdog pings only while it is)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout=10)
        if thread.is_alive():  # a driver call stuck in the kernel; closing the device ends it
            logger.error("printer %s: worker did not stop within 10 s", self.config.id)
        self.printer.close()
        if self._own_spool:
            self.spool.close()
        if self._own_hub:
            self.hub.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the POS side ---------------------------------------------------------------------

    def submit(self, receipt: Receipt, request_id: str = "", fingerprint: str = "") -> Job:
        """Validate, encode and durably queue ``receipt``; raises ReceiptInvalid. With
        ``request_id`` a retry returns the first call's job (see :meth:`Spool.add`)."""
        data = self.encoder.encode(receipt, self.config.drawer_pin, self.config.drawer_pulse_ms)
        job = self._job_changed(
            self.spool.add(
                self.config.id,
                data,
                summary=receipt.receipt_no,
                request_id=request_id,
                fingerprint=fingerprint,
            )
        )
        self._wake.set()
        return job

    def test_print(self) -> Job:
        """Queue the technician's test page (profile, status, column rulers, Chinese, QR)."""
        data = self.encoder.test_page(self.config.id, self._status.problem or "READY")
        job = self._job_changed(self.spool.add(self.config.id, data, summary="TEST PAGE"))
        self._wake.set()
        return job

    def job(self, job_id: int) -> Job:
        return self.spool.get(job_id)

    def wait_job(self, job_id: int, timeout: float) -> Job:
        """Block until the job left QUEUED/SENDING (or ``timeout``); returns it either way."""
        deadline = time.monotonic() + timeout
        with self._job_done:
            while True:
                job = self.spool.get(job_id)
                left = deadline - time.monotonic()
                if job.state not in (JobState.QUEUED, JobState.SENDING) or left <= 0:
                    return job
                self._job_done.wait(min(left, 0.5))

    def cancel(self, job_id: int) -> Job:
        self._own(job_id)
        return self._job_changed(self.spool.cancel(job_id))

    def confirm_printed(self, job_id: int) -> Job:
        self._own(job_id)
        return self._job_changed(self.spool.confirm_printed(job_id))

    def reprint(self, job_id: int, request_id: str = "", fingerprint: str = "") -> Job:
        """Queue a copy of a PRINTED or UNCERTAIN job, marked as a reprint on paper."""
        old = self._own(job_id)
        mark = self.encoder.text_line(f"*** 重印 REPRINT #{job_id} ***", align="center")
        head = old.data[:2] if old.data.startswith(b"\x1b@") else b""
        job = self.spool.add_reprint(
            job_id,
            head + mark + old.data[len(head) :],
            request_id=request_id,
            fingerprint=fingerprint,
        )
        if old.state is JobState.UNCERTAIN:  # closed as "reprinted as #n" with the copy
            self._job_changed(self.spool.get(job_id))
        self._job_changed(job)
        self._wake.set()
        return job

    def reprint_last(self) -> Job:
        last = self.spool.last_printed(self.config.id)
        if last is None:
            raise InvalidArgument("job_id", f"printer {self.config.id} has printed nothing yet")
        return self.reprint(last.id)

    def _own(self, job_id: int) -> Job:
        job = self.spool.get(job_id)
        if job.printer != self.config.id:
            raise InvalidArgument("job_id", f"job {job_id} belongs to printer {job.printer}")
        return job

    def status(self, refresh: bool = False, timeout: float = 5.0) -> PrinterStatus:
        """Last polled status, or a fresh ``DLE EOT`` round trip when ``refresh``."""
        if refresh:
            return self._call(self._refresh_status, timeout)
        return self._status

    def kick_drawer(self, timeout: float = 5.0) -> None:
        """Open the cash drawer now (not spooled: a drawer kick is never replayed later)."""
        self._call(self.printer.kick_drawer, timeout)

    def subscribe(self, maxsize: int = 64, *, kinds: tuple[str, ...] | None = None) -> Subscription:
        """A hub subscription to this printer: its status first, then status and job changes
        (``kinds=("status",)`` for status only)."""
        return self.hub.subscribe(sources=self.source, kinds=kinds, maxsize=maxsize)

    def _call(self, fn: Callable[[], T], timeout: float) -> T:
        if self._thread is None:
            raise PrinterError(f"printer {self.config.id}: service closed")
        fut: Future[object] = Future()
        self._calls.put((fn, fut))
        self._wake.set()
        try:
            result = fut.result(timeout)
        except TimeoutError:
            raise OperationTimeout(f"printer {self.config.id}: busy for {timeout} s") from None
        return result  # type: ignore[return-value]  # fn returns T; the queue erases it

    # --- the worker -----------------------------------------------------------------------

    def _publish(self, status: PrinterStatus) -> None:
        if status == self._status:
            return
        logger.info("printer %s status: %s", self.config.id, status.problem or "READY")
        self._status = status
        self.status_time = time.time()
        self.hub.publish(self.source, STATUS, status, state="event")

    def _job_changed(self, job: Job) -> Job:
        self.hub.publish(self.source, JOB, job)
        return job

    def _refresh_status(self) -> PrinterStatus:
        status = self.printer.query_status()
        self._publish(status)
        return status

    def _run_calls(self) -> None:
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as exc:  # handed to the caller, not swallowed
                fut.set_exception(exc)

    def _run(self) -> None:
        """The worker: never dies of one bad cycle (a technician would see a silent printer)."""
        while not self._stop.is_set():
            try:
                self._cycle_forever()
            except Exception:
                logger.exception("printer %s: worker cycle failed; retrying", self.config.id)
                self._stop.wait(self.config.poll_interval_s)
        self._run_calls()

    def _cycle_forever(self) -> None:
        poll = self.config.poll_interval_s
        next_poll = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            self._run_calls()
            job = self.spool.next_queued(self.config.id)
            if job is not None and self._status.ready and self.printer.is_online():
                self._print(job)  # last full status was fine and DLE EOT 1 says still online
                next_poll = time.monotonic() + poll  # the printer just answered; no poll due
                continue
            if time.monotonic() >= next_poll or job is not None:
                status = self._refresh_status()
                next_poll = time.monotonic() + poll
                if job is not None and status.ready:
                    self._print(job)
                    next_poll = time.monotonic() + poll
                    continue
            self._wake.wait(max(0.0, next_poll - time.monotonic()))

    def _uncertain(self, job: Job, detail: str) -> None:
        """Mark UNCERTAIN and log the last bytes exchanged, for the technician."""
        self._job_changed(self.spool.mark_uncertain(job.id, detail))
        trace = " | ".join(f"{d} {b[:24].hex(' ')}" for d, b in list(self.printer.trace)[-6:])
        logger.warning(
            "printer %s: job %s UNCERTAIN (%s); last I/O: %s", self.config.id, job.id, detail, trace
        )

    def _print(self, job: Job) -> None:
        try:
            self._print_job(job)
        finally:
            with self._job_done:
                self._job_done.notify_all()

    def _print_job(self, job: Job) -> None:
        """SENDING is durable before the first byte; any doubt afterwards is UNCERTAIN."""
        try:
            self.printer.connect()
        except PrinterOffline:
            self._publish(PrinterStatus.unreachable())
            return
        try:
            self._job_changed(self.spool.mark_sending(job.id))
        except InvalidArgument:  # cancelled between being picked and being sent
            logger.info("printer %s: job %s cancelled before sending", self.config.id, job.id)
            return
        try:
            self._send_and_confirm(job)
        except Exception as exc:
            # A driver bug after SENDING: the bytes may be on paper. The worker only picks
            # QUEUED jobs, so a job left SENDING would wait for a daemon restart to be resolved.
            if self.spool.get(job.id).state is JobState.SENDING:
                self.printer.close()
                self._uncertain(job, f"unexpected {type(exc).__name__} while sending")
            raise

    def _send_and_confirm(self, job: Job) -> None:
        """Send the SENDING job in one write and wait for the printer's confirmation."""
        try:
            self.printer.send_job(job.data)
        except PrinterOffline as exc:
            self._uncertain(job, f"link lost while sending: {exc.message}")
            return
        wire = self.printer.line_busy_s()  # a 9600 baud line needs ~1 s per kilobyte
        confirm_deadline = time.monotonic() + wire + self.config.confirm_timeout_s
        while True:
            try:
                if self.printer.wait_confirmed(min(0.2, self.config.poll_interval_s)):
                    self._job_changed(self.spool.mark_printed(job.id))
                    return
            except PrinterOffline as exc:
                self._uncertain(job, f"link lost before confirmation: {exc.message}")
                self._publish(PrinterStatus.unreachable())
                return
            self._run_calls()  # status calls and drawer kicks still work during a long wait
            status = self._refresh_status()
            if not status.reachable:
                self.printer.close()
                self._uncertain(job, "printer unreachable before confirmation")
                return
            if not status.ready:  # paper out, cover open, offline: the printer holds the rest
                confirm_deadline = time.monotonic() + self.config.confirm_timeout_s
            elif time.monotonic() > confirm_deadline:
                self._uncertain(job, "printer never confirmed the job")
                return
            if self._stop.is_set():
                self._uncertain(job, "service stopped before confirmation")
                return
