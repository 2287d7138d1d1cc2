"""One reader thread per scanner: open, read, deliver, and reopen after an unplug.

The thread never dies of a device problem: every failure closes the backend, waits (exponential
backoff, capped) and tries again, so a scanner that comes back is re-attached without a restart.
Only :meth:`Scanner.close` ends it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Protocol

from daemon.errors import ConfigError, ScannerUnavailable
from daemon.scanners.base import RawScan, ScannerBackend, ScannerState

__all__ = ["ScanSink", "Scanner"]

logger = logging.getLogger(__name__)


class ScanSink(Protocol):
    """Where a scanner's thread delivers; called from that thread, must not block."""

    def on_scan(self, scanner_id: str, raw: RawScan) -> None: ...

    def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None: ...


class Scanner:
    """A running scanner: a backend plus its reader thread. Context manager; idempotent close."""

    def __init__(
        self,
        scanner_id: str,
        backend: ScannerBackend,
        sink: ScanSink,
        *,
        poll_s: float = 0.05,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> None:
        if not scanner_id:
            raise ConfigError("scanners.id", "must not be empty")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ConfigError(
                f"scanners.{scanner_id}.backoff_initial_s",
                f"must be > 0 and <= backoff_max_s ({backoff_initial_s} / {backoff_max_s})",
            )
        self.scanner_id = scanner_id
        self.backend = backend
        self.sink = sink
        self.poll_s = poll_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.state = ScannerState.STARTING
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> Scanner:
        with self._lock:
            if self._stop.is_set():
                raise ScannerUnavailable(f"scanner {self.scanner_id} is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"scanner-{self.scanner_id}", daemon=True
                )
                self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """The scanner's thread is running (the watchdog pings only while it is)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self.backend.close()
        if self.state is not ScannerState.CLOSED:
            self._set_state(ScannerState.CLOSED, "closed")

    def __enter__(self) -> Scanner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set_state(self, state: ScannerState, detail: str) -> None:
        if state is self.state and state is not ScannerState.CONNECTED:
            return
        self.state = state
        try:
            self.sink.on_status(self.scanner_id, state, detail)
        except Exception:
            logger.exception("scanner %s: status sink failed", self.scanner_id)

    def _run(self) -> None:
        delay = self.backoff_initial_s
        connected_before = False
        while not self._stop.is_set():
            try:
                self.backend.open()
            except Exception as exc:
                if self.state is not ScannerState.DISCONNECTED:
                    logger.warning("scanner %s unavailable: %s", self.scanner_id, exc)
                self._set_state(ScannerState.DISCONNECTED, str(exc))
                self.backend.close()
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_initial_s
            if connected_before:
                self.reconnects += 1
            connected_before = True
            self._set_state(ScannerState.CONNECTED, self.backend.description)
            self._pump()
            self.backend.close()
            if not self._stop.is_set():
                self._set_state(ScannerState.DISCONNECTED, "device went away")
        logger.debug("scanner %s thread ends", self.scanner_id)

    def _pump(self) -> None:
        """Read until the device fails or close() is called."""
        while not self._stop.is_set():
            try:
                scans = self.backend.read(self.poll_s)
            except ScannerUnavailable as exc:
                logger.warning("scanner %s lost: %s", self.scanner_id, exc)
                return
            except Exception:
                logger.exception("scanner %s: unexpected read failure", self.scanner_id)
                return
            for raw in scans:
                try:
                    self.sink.on_scan(self.scanner_id, raw)
                except Exception as exc:
                    # A consumer's message may quote the scan (a payment code): log the type
                    # and where it was raised, never the message.
                    logger.error(
                        "scanner %s: scan sink failed: %s\n%s",
                        self.scanner_id,
                        type(exc).__name__,
                        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
                    )
