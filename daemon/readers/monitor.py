"""The reader/card status loop: one thread turning backend state changes into events.

Built on :meth:`ReaderBackend.wait_for_change` (``SCardGetStatusChange`` with the PnP
pseudo-reader for PC/SC), not on pyscard's CardMonitor, which dies silently when pcscd restarts.
When the service goes away the monitor reports ``SERVICE_LOST`` (and every reader detached),
retries with a capped exponential backoff, and reports ``SERVICE_RESTORED`` plus fresh attach
and card events when it is back: nobody has to restart the daemon. The thread never dies of an
exception: unexpected errors are logged and retried.

Events carry a per-monitor sequence number; subscribers get them through a callback (called on
the monitor thread: keep it short) or a bounded :class:`Subscription` queue that counts drops
instead of blocking the monitor.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from daemon.errors import CardDaemonError, PcscUnavailable
from daemon.readers.apdu import get_uid
from daemon.readers.atr import card_type
from daemon.readers.backends import ReaderBackend, ReaderState
from daemon.readers.connection import ClosesOnExit

__all__ = ["EventKind", "ReaderEvent", "ReaderMonitor", "Subscription"]

logger = logging.getLogger(__name__)

_GET_UID = get_uid().apdu


class EventKind(enum.Enum):
    READER_ATTACHED = "reader_attached"
    READER_DETACHED = "reader_detached"
    CARD_PRESENT = "card_present"
    CARD_REMOVED = "card_removed"
    SERVICE_LOST = "service_lost"
    SERVICE_RESTORED = "service_restored"


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """One change. ``uid`` is ``None`` when GET DATA failed (``error`` says why)."""

    seq: int
    kind: EventKind
    reader: str | None = None
    atr: bytes = b""
    uid: bytes | None = None
    card_type: str | None = None
    error: str | None = None


class Subscription:
    """A bounded event queue; when full the oldest event is dropped and counted."""

    def __init__(self, maxsize: int = 256) -> None:
        self._queue: queue.Queue[ReaderEvent] = queue.Queue(maxsize)
        self.dropped = 0

    def put(self, event: ReaderEvent) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout_s: float | None = None) -> ReaderEvent:
        """Next event; ``queue.Empty`` after ``timeout_s``."""
        return self._queue.get(timeout=timeout_s)

    def wait_for(
        self, predicate: Callable[[ReaderEvent], bool], timeout_s: float = 10.0
    ) -> ReaderEvent:
        """Skip events until one matches; ``queue.Empty`` if none does in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            event = self.get(max(0.0, deadline - time.monotonic()))
            if predicate(event):
                return event


class ReaderMonitor(ClosesOnExit):
    """Start/stop a status loop over one backend; a context manager that joins its thread."""

    def __init__(
        self,
        backend: ReaderBackend,
        *,
        read_uid: bool = True,
        poll_timeout_s: float = 0.5,
        backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._backend = backend
        self._read_uid = read_uid
        self._poll = poll_timeout_s
        self._backoff_min, self._backoff_max = backoff_s
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[ReaderEvent], None]] = []
        self._subs: list[Subscription] = []
        self._known: dict[str, ReaderState] = {}
        self._cards: dict[str, ReaderEvent] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.service_up: bool | None = None

    # --- subscribers ---------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ReaderEvent], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def subscription(self, maxsize: int = 256) -> Subscription:
        sub = Subscription(maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, target: Subscription | Callable[[ReaderEvent], None]) -> None:
        with self._lock:
            if isinstance(target, Subscription):
                self._subs = [s for s in self._subs if s is not target]
            else:
                self._callbacks = [c for c in self._callbacks if c is not target]

    def snapshot(self) -> dict[str, ReaderEvent | None]:
        """Readers known now, each with its last card event (``None``: no card)."""
        with self._lock:
            return {name: self._cards.get(name) for name in self._known}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        # not a daemon thread: close() joins it, and a monitor nobody closed must show up as
        # a process that does not exit rather than vanish silently
        self._thread = threading.Thread(target=self._run, name="reader-monitor")
        self._thread.start()

    def close(self) -> None:
        """Stop the loop and join the thread. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            while thread.is_alive():
                self._backend.cancel()
                thread.join(timeout=0.2)

    stop = close

    def __enter__(self) -> Self:
        """``with monitor:`` starts the loop (and closes it on the way out)."""
        self.start()
        return self

    # --- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        """Wait, apply, repeat; any failure (service gone, driver or subscriber bug) is logged
        and retried with backoff, so the thread only ends when :meth:`close` asks it to."""
        backoff = self._backoff_min
        in_sync = False
        while not self._stop.is_set():
            try:
                states = self._backend.wait_for_change(self._known if in_sync else None, self._poll)
                if self._stop.is_set():
                    break
                if self.service_up is False:
                    logger.info("reader monitor: PC/SC service is back")
                    self._emit(EventKind.SERVICE_RESTORED)
                self.service_up = True
                self._apply(states)
            except PcscUnavailable as exc:
                self._service_lost(exc)
            except Exception:
                logger.exception("reader monitor: status loop failed; retrying")
            else:
                backoff = self._backoff_min
                in_sync = True
                continue
            in_sync = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    def _service_lost(self, exc: CardDaemonError) -> None:
        if self.service_up is False:
            return
        logger.warning("reader monitor: service lost: %s", exc)
        self.service_up = False
        self._emit(EventKind.SERVICE_LOST, error=exc.reason)
        self._apply({})

    def _apply(self, states: dict[str, ReaderState]) -> None:
        known = self._known
        for name, old in known.items():
            new = states.get(name)
            if old.present and (new is None or not new.present or _swapped(old, new)):
                self._card_removed(name)
            if new is None:
                self._emit(EventKind.READER_DETACHED, name)
        for name, state in states.items():
            before = known.get(name)
            if before is None:
                self._emit(EventKind.READER_ATTACHED, name)
            if state.present and (before is None or not before.present or _swapped(before, state)):
                self._card_present(state)
        with self._lock:
            self._known = dict(states)

    def _card_removed(self, name: str) -> None:
        with self._lock:
            self._cards.pop(name, None)
        self._emit(EventKind.CARD_REMOVED, name)

    def _card_present(self, state: ReaderState) -> None:
        uid, error = self._fetch_uid(state.name) if self._read_uid else (None, None)
        event = ReaderEvent(
            next(self._seq),
            EventKind.CARD_PRESENT,
            state.name,
            atr=state.atr,
            uid=uid,
            card_type=card_type(state.atr),
            error=error,
        )
        self._publish(event)
        with self._lock:
            self._cards[state.name] = event

    def _fetch_uid(self, reader: str) -> tuple[bytes | None, str | None]:
        try:
            with contextlib.closing(self._backend.connect(reader)) as conn:
                response = conn.transmit(_GET_UID)
        except CardDaemonError as exc:
            logger.info("reader monitor: no UID from %r: %s", reader, exc)
            return None, exc.reason
        except Exception as exc:  # a driver bug costs the UID of this event, not the monitor
            logger.exception("reader monitor: reading the UID from %r failed", reader)
            return None, type(exc).__name__
        if not response.ok or not response.data:
            return None, f"GET DATA answered {response.sw:04X}"
        return response.data, None

    def _emit(self, kind: EventKind, reader: str | None = None, error: str | None = None) -> None:
        self._publish(ReaderEvent(next(self._seq), kind, reader, error=error))

    def _publish(self, event: ReaderEvent) -> None:
        kind = event.kind
        logger.debug("reader event %s", event)
        with self._lock:
            callbacks = list(self._callbacks)
            subs = list(self._subs)
        for sub in subs:
            sub.put(event)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                logger.exception("reader event subscriber failed on %s", kind.value)


def _swapped(old: ReaderState, new: ReaderState) -> bool:
    return new.generation != old.generation or new.atr != old.atr
