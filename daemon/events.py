"""The one event primitive: every device kind publishes to an :class:`EventHub`.

A subscription first gets a snapshot (one event per source that has state, ``snapshot=True``,
all carrying the hub's last sequence number at that moment), then live events, each with one
daemon-wide ``seq``. Rules, the same for readers, printers and scanners:

- Drop policy: each subscriber has a bounded queue; when it is full the *oldest* queued event
  is dropped and counted, and the next event the subscriber gets says how many it lost
  (``dropped_before``). A filter or view that raises costs that subscriber the event (counted
  the same way), never the publisher or another subscriber. Publishers never block.
- Timeout: ``get(timeout_s)`` raises :class:`~daemon.errors.OperationTimeout` naming the
  subscription; ``timeout_s=None`` waits until an event or close.
- Closed: after ``close()`` what was queued can still be read; then ``get`` raises
  :class:`SubscriptionClosed` and (async) iteration ends.
- Resume: ``subscribe(after=seq)`` replays what was missed while it is still in the hub's
  history ring; if it is not, the subscriber gets a fresh snapshot with ``resync=True``.

Filters and views run on the publishing thread under the hub lock: they must be quick and must
not call the hub. ``notify`` callbacks and asyncio wake-ups run after the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass, replace
from typing import Literal, Self

from daemon.errors import InvalidArgument, OperationTimeout, SubscriptionClosed

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_QUEUE",
    "Event",
    "EventHub",
    "State",
    "Subscription",
    "SubscriptionClosed",
    "subscriber_kind",
]

logger = logging.getLogger(__name__)

DEFAULT_HISTORY = 1024
DEFAULT_QUEUE = 256


@dataclass(frozen=True, slots=True)
class Event:
    """One event. ``source`` is a device path ("readers/<id>", "printers/<id>", ...);
    ``payload`` is the device's own event object; ``time`` is wall-clock seconds."""

    seq: int
    source: str
    kind: str
    payload: object
    time: float
    snapshot: bool = False
    resync: bool = False
    dropped_before: int = 0


@dataclass(frozen=True, slots=True)
class State:
    """What a source's snapshot event will say (when it differs from the event published)."""

    kind: str
    payload: object


StateChange = State | Literal["event", "clear"] | None
View = Callable[[Event], Event | None]


def source_matches(source: str, patterns: Collection[str]) -> bool:
    """``"readers/"`` or ``"readers"`` match "readers" and "readers/<any>"; others are exact."""
    for pattern in patterns:
        base = pattern.rstrip("/")
        if source == base or source.startswith(base + "/"):
            return True
    return False


def subscriber_kind(name: str) -> str:
    """A subscriber's kind from its name, for counting without a label per subscription:
    ``WaitForCard readers/front`` -> ``WaitForCard``; a scan stream's role (``pos``); an
    unnamed one (``#12``) -> ``other``."""
    word = name.split(" ", 1)[0]
    if not word or word.startswith("#") or not word.replace("_", "").isalnum():
        return "other"
    return word[:40]


class Subscription:
    """One subscriber's bounded queue on a hub; a context manager; ``close`` is idempotent."""

    def __init__(
        self,
        hub: EventHub,
        *,
        maxsize: int,
        sources: Collection[str] | None,
        kinds: Collection[str] | None,
        where: Callable[[Event], bool] | None,
        view: View | None,
        notify: Callable[[], None] | None,
        name: str,
    ) -> None:
        self.name = name
        self.kind = subscriber_kind(name)
        self.maxsize = maxsize
        self.dropped = 0  # total lost over the subscription's life
        self.resynced = False  # resumed too late: got a fresh snapshot instead of a replay
        self._hub = hub
        self._sources = tuple(sources) if sources is not None else None
        self._kinds = frozenset(kinds) if kinds is not None else None
        self._where = where
        self._view = view
        self._notify = notify
        self._cond = threading.Condition(hub._lock)
        self._queue: deque[tuple[Event, int]] = deque()  # (event, lost just before it)
        self._lost = 0  # lost since the last queued event, attached to the next one
        self._closed = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- publisher side (hub lock held) -------------------------------------------------------

    def _offer(self, event: Event) -> bool:
        """Queue ``event`` if it passes filter and view; True when a wake-up is due."""
        if self._closed:
            return False
        if self._sources is not None and not source_matches(event.source, self._sources):
            return False
        if self._kinds is not None and event.kind not in self._kinds:
            return False
        try:
            if self._where is not None and not self._where(event):
                return False
            shown = self._view(event) if self._view is not None else event
        except Exception:  # a subscriber's bug costs it this event, not the publisher
            logger.exception("event subscriber %s: filter/view failed on %s", self.name, event.kind)
            self._count_lost()
            return False
        if shown is None:
            return False
        if len(self._queue) >= self.maxsize:  # drop the oldest; its successor says so
            _, carried = self._queue.popleft()
            self._note_loss()
            if self._queue:
                head, head_lost = self._queue[0]
                self._queue[0] = (head, head_lost + carried + 1)
            else:
                self._lost += carried + 1
        self._queue.append((shown, self._lost))
        self._lost = 0
        self._cond.notify()
        return True

    def _count_lost(self) -> None:
        """An event this subscriber should have had and will not: told with the next one."""
        self._lost += 1
        self._note_loss()

    def _note_loss(self) -> None:
        self.dropped += 1
        lost = self._hub._dropped_by_kind
        lost[self.kind] = lost.get(self.kind, 0) + 1
        if self.dropped == 1 or self.dropped % 100 == 0:
            logger.warning(
                "event subscriber %s: %d events lost (too slow, or its filter failed)",
                self.name,
                self.dropped,
            )

    def _take(self) -> Event:
        event, lost = self._queue.popleft()
        return replace(event, dropped_before=lost) if lost else event

    def _wake(self) -> None:
        """Outside the hub lock: the notify callback and any asyncio waiters."""
        with self._hub._lock:
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, fut)
        if self._notify is not None:
            try:
                self._notify()
            except Exception:  # one consumer's bug must not cost the others their event
                logger.exception("event subscriber %s: notify callback failed", self.name)

    # --- consumer side ------------------------------------------------------------------------

    def get(self, timeout_s: float | None = None) -> Event:
        """Next event; OperationTimeout after ``timeout_s``; SubscriptionClosed once closed
        and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._closed, timeout_s):
                raise OperationTimeout(f"no event on subscription {self.name} within {timeout_s} s")
            if self._queue:
                return self._take()
        raise SubscriptionClosed(f"subscription {self.name} is closed")

    def drain(self) -> list[Event]:
        """Everything queued right now, without waiting."""
        with self._cond:
            out = []
            while self._queue:
                out.append(self._take())
            return out

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float = 10.0) -> Event:
        """Skip events until one matches; OperationTimeout if none does within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            event = self.get(max(0.0, deadline - time.monotonic()))
            if predicate(event):
                return event

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._hub._forget(self)
        self._wake()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        """Blocking iteration; ends when the subscription is closed and drained."""
        while True:
            try:
                yield self.get()
            except SubscriptionClosed:
                return

    # --- asyncio ------------------------------------------------------------------------------

    async def get_async(self, timeout_s: float | None = None) -> Event:
        """``get`` for a coroutine: no thread; the publisher wakes this loop when it queues."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            with self._cond:
                if self._queue:
                    return self._take()
                if self._closed:
                    raise SubscriptionClosed(f"subscription {self.name} is closed")
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            left = None if deadline is None else deadline - loop.time()
            try:
                if left is not None and left <= 0:
                    raise TimeoutError
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                with self._cond:
                    self._waiters = [w for w in self._waiters if w[1] is not fut]
                    if self._queue:
                        return self._take()
                raise OperationTimeout(
                    f"no event on subscription {self.name} within {timeout_s} s"
                ) from None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.get_async()
            except SubscriptionClosed:
                return


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class EventHub:
    """Sequence numbers, current state per source, a history ring and the subscribers."""

    def __init__(
        self, *, history: int = DEFAULT_HISTORY, default_queue: int = DEFAULT_QUEUE
    ) -> None:
        if history < 0:
            raise InvalidArgument("history", f"must be >= 0, got {history}")
        if default_queue < 1:
            raise InvalidArgument("default_queue", f"must be >= 1, got {default_queue}")
        self.default_queue = default_queue
        self._lock = threading.Lock()
        self._seq = 0
        self._states: dict[str, Event] = {}
        self._history: deque[Event] = deque(maxlen=history)
        self._subs: list[Subscription] = []
        self._closed = False
        self._names = 0
        #: every event any subscriber lost, by subscriber kind, over the hub's life (kept
        #: here, not on the subscription, so a stream that ends between scrapes still counts)
        self._dropped_by_kind: dict[str, int] = {}

    def subscriber_counts(self) -> dict[str, int]:
        """Open subscriptions by kind (:func:`subscriber_kind`)."""
        counts: dict[str, int] = {}
        with self._lock:
            for sub in self._subs:
                counts[sub.kind] = counts.get(sub.kind, 0) + 1
        return counts

    def dropped_counts(self) -> dict[str, int]:
        """Events lost by subscribers, by kind, since the hub started (only ever grows)."""
        with self._lock:
            return dict(self._dropped_by_kind)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def states(self) -> dict[str, Event]:
        """Each source's current state event (as a new snapshot would show it, unmarked)."""
        with self._lock:
            return dict(self._states)

    # --- publishing ---------------------------------------------------------------------------

    def publish(
        self, source: str, kind: str, payload: object, *, state: StateChange = None
    ) -> Event:
        """Number and fan out one event. ``state``: ``"event"`` makes this event the source's
        snapshot, a :class:`State` sets another one, ``"clear"`` removes it."""
        return self.publish_numbered(source, kind, lambda _seq: payload, state=state)

    def publish_numbered(
        self,
        source: str,
        kind: str,
        build: Callable[[int], object],
        *,
        state: StateChange = None,
    ) -> Event:
        """:meth:`publish` for payloads that carry the hub's sequence number themselves."""
        woken: list[Subscription] = []
        with self._lock:
            self._seq += 1
            event = Event(self._seq, source, kind, build(self._seq), time.time())
            if self._closed:
                return event
            if state == "event":
                self._states[source] = event
            elif state == "clear":
                self._states.pop(source, None)
            elif isinstance(state, State):
                self._states[source] = replace(event, kind=state.kind, payload=state.payload)
            self._history.append(event)
            for sub in self._subs:
                if sub._offer(event):
                    woken.append(sub)
        for sub in woken:
            sub._wake()
        return event

    # --- subscribing --------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        sources: str | Collection[str] | None = None,
        kinds: str | Collection[str] | None = None,
        where: Callable[[Event], bool] | None = None,
        view: View | None = None,
        maxsize: int | None = None,
        notify: Callable[[], None] | None = None,
        after: int | None = None,
        name: str | None = None,
    ) -> Subscription:
        """A subscriber: snapshot then live events, or (``after``) a replay of what it missed.

        ``sources`` are path prefixes ("readers/", "printers/receipt"); ``where`` is any other
        test; ``view`` may replace an event per subscriber (role masking) or hide it (None).
        ``notify`` is called from the publishing thread after each queued event.
        """
        size = self.default_queue if maxsize is None else maxsize
        if size < 1:
            raise InvalidArgument("maxsize", f"must be >= 1, got {size}")
        patterns = (sources,) if isinstance(sources, str) else sources
        kinds = (kinds,) if isinstance(kinds, str) else kinds  # one kind, not its letters
        with self._lock:
            self._names += 1
            sub = Subscription(
                self,
                maxsize=size,
                sources=patterns,
                kinds=kinds,
                where=where,
                view=view,
                notify=notify,
                name=name or f"#{self._names}",
            )
            if self._closed:
                sub._closed = True
                return sub
            if after is None:
                self._offer_snapshot(sub, resync=False)
            else:
                self._offer_missed(sub, after)
            self._subs.append(sub)
            due = bool(sub._queue)
        if due:
            sub._wake()
        return sub

    def _offer_snapshot(self, sub: Subscription, *, resync: bool) -> None:
        for source in sorted(self._states):
            frame = replace(self._states[source], seq=self._seq, snapshot=True, resync=resync)
            sub._offer(frame)

    def _offer_missed(self, sub: Subscription, after: int) -> None:
        if not 0 <= after <= self._seq:
            raise InvalidArgument("after", f"{after} is not in 0..{self._seq} (daemon restarted?)")
        if after == self._seq:
            return
        oldest = self._history[0].seq if self._history else self._seq + 1
        if oldest > after + 1:
            logger.warning("event subscriber %s resumed too late: resync", sub.name)
            sub.resynced = True
            self._offer_snapshot(sub, resync=True)
            return
        for event in self._history:
            if event.seq > after:
                sub._offer(event)

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every subscription (waking its waiters); later publishes are ignored."""
        with self._lock:
            self._closed = True
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
