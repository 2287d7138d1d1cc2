"""The reader/card status loop: one thread turning backend state changes into events.

Built on :meth:`ReaderBackend.wait_for_change` (``SCardGetStatusChange`` with the PnP
pseudo-reader for PC/SC), not on pyscard's CardMonitor, which dies silently when pcscd restarts.
When the service goes away the monitor reports ``SERVICE_LOST`` (and every reader detached),
retries with a capped exponential backoff, and reports ``SERVICE_RESTORED`` plus fresh attach
and card events when it is back: nobody has to restart the daemon. The thread never dies of an
exception: unexpected errors are logged and retried.

Events go to an :class:`~daemon.events.EventHub` (the daemon's, or a private one) with source
``readers/<reader_id>`` (``readers`` for the service itself); the hub keeps each attached
reader's state (``reader_attached`` or ``card_present`` with its card) for snapshots, and a
``ReaderEvent.seq`` is the hub's sequence number. Plain callbacks (:meth:`ReaderMonitor.subscribe`,
called on the monitor thread: keep them short) serve the reader pool.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from daemon.errors import CardDaemonError, PcscUnavailable
from daemon.events import EventHub, State, StateChange
from daemon.readers.apdu import get_uid
from daemon.readers.atr import card_type
from daemon.readers.backends import ReaderBackend, ReaderState
from daemon.readers.connection import ClosesOnExit

__all__ = ["SERVICE_SOURCE", "EventKind", "ReaderEvent", "ReaderMonitor"]

logger = logging.getLogger(__name__)

_GET_UID = get_uid().apdu

SERVICE_SOURCE = "readers"  # the hub source of SERVICE_LOST / SERVICE_RESTORED


class EventKind(enum.Enum):
    READER_ATTACHED = "reader_attached"
    READER_DETACHED = "reader_detached"
    CARD_PRESENT = "card_present"
    CARD_REMOVED = "card_removed"
    SERVICE_LOST = "service_lost"
    SERVICE_RESTORED = "service_restored"


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """One change; ``seq`` is the hub's. ``uid`` is ``None`` when GET DATA failed (``error``
    says why)."""

    seq: int
    kind: EventKind
    reader: str | None = None
    atr: bytes = b""
    uid: bytes | None = None
    card_type: str | None = None
    error: str | None = None


class ReaderMonitor(ClosesOnExit):
    """Start/stop a status loop over one backend; a context manager that joins its thread."""

    def __init__(
        self,
        backend: ReaderBackend,
        *,
        hub: EventHub | None = None,
        reader_id: Callable[[str], str] | None = None,
        read_uid: bool = True,
        poll_timeout_s: float = 0.5,
        backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._backend = backend
        self._read_uid = read_uid
        self._poll = poll_timeout_s
        self._backoff_min, self._backoff_max = backoff_s
        # not closed by close(): the monitor is restartable and the hub may be shared
        self.hub = hub if hub is not None else EventHub()
        self._reader_id = reader_id if reader_id is not None else _same
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[ReaderEvent], None]] = []
        self._attached: dict[str, ReaderEvent] = {}
        self._known: dict[str, ReaderState] = {}
        self._cards: dict[str, ReaderEvent] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.service_up: bool | None = None

    # --- subscribers ---------------------------------------------------------------------

    def source(self, reader: str) -> str:
        """The hub source of the PC/SC reader ``reader``."""
        return f"readers/{self._reader_id(reader)}"

    def subscribe(self, callback: Callable[[ReaderEvent], None]) -> None:
        """Call ``callback`` on the monitor thread after each event reached the hub; queues
        for clients come from ``monitor.hub.subscribe(...)``."""
        with self._lock:
            self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[ReaderEvent], None]) -> None:
        with self._lock:
            self._callbacks = [c for c in self._callbacks if c is not callback]

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

    @property
    def alive(self) -> bool:
        """The monitor's thread is running (the watchdog pings only while it is)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

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
                    self._emit(EventKind.SERVICE_RESTORED, state="event")
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
        self._emit(EventKind.SERVICE_LOST, error=exc.reason, state="event")
        self._apply({})

    def _apply(self, states: dict[str, ReaderState]) -> None:
        known = self._known
        for name, old in known.items():
            new = states.get(name)
            if old.present and (new is None or not new.present or _swapped(old, new)):
                self._card_removed(name)
            if new is None:
                self._attached.pop(name, None)
                self._emit(EventKind.READER_DETACHED, name, state="clear")
        for name, state in states.items():
            before = known.get(name)
            if before is None:
                self._attached[name] = self._emit(EventKind.READER_ATTACHED, name, state="event")
            if state.present and (before is None or not before.present or _swapped(before, state)):
                self._card_present(state)
        with self._lock:
            self._known = dict(states)

    def _card_removed(self, name: str) -> None:
        with self._lock:
            self._cards.pop(name, None)
        attached = self._attached.get(name)
        back = State(EventKind.READER_ATTACHED.value, attached) if attached else None
        self._emit(EventKind.CARD_REMOVED, name, state=back)

    def _card_present(self, state: ReaderState) -> None:
        uid, error = self._fetch_uid(state.name) if self._read_uid else (None, None)

        def build(seq: int) -> ReaderEvent:
            return ReaderEvent(
                seq,
                EventKind.CARD_PRESENT,
                state.name,
                atr=state.atr,
                uid=uid,
                card_type=card_type(state.atr),
                error=error,
            )

        event = self._publish(EventKind.CARD_PRESENT, state.name, build, "event")
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

    def _emit(
        self,
        kind: EventKind,
        reader: str | None = None,
        error: str | None = None,
        state: StateChange = None,
    ) -> ReaderEvent:
        def build(seq: int) -> ReaderEvent:
            return ReaderEvent(seq, kind, reader, error=error)

        return self._publish(kind, reader, build, state)

    def _publish(
        self,
        kind: EventKind,
        reader: str | None,
        build: Callable[[int], ReaderEvent],
        state: StateChange,
    ) -> ReaderEvent:
        source = SERVICE_SOURCE if reader is None else self.source(reader)
        payload = self.hub.publish_numbered(source, kind.value, build, state=state).payload
        assert isinstance(payload, ReaderEvent)
        logger.debug("reader event %s", payload)
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(payload)
            except Exception:
                logger.exception("reader event subscriber failed on %s", kind.value)
        return payload


def _same(name: str) -> str:
    return name


def _swapped(old: ReaderState, new: ReaderState) -> bool:
    return new.generation != old.generation or new.atr != old.atr
