"""A simulated PC/SC contactless reader holding at most one :class:`~sim.card.SimCard`.

``SimReader(name=None, model="acr1252u", latency=None, clock=None, realtime=False, seed=0)``:
``name`` defaults to the model's realistic PC/SC name, ``latency`` to the model's profile
(``acr122u`` for the ACR122U, ``acr1252u`` otherwise; ``"none"`` charges nothing).

* :meth:`SimReader.process` takes raw command APDU bytes and returns the raw response exactly as
  that model answers (see :mod:`sim.models`). It raises :class:`~sim.faults.CardGone` when no
  card is there (or a fault removed it first), :class:`~sim.faults.ResponseDropped` when the
  command reached the card but the answer was lost, :class:`~sim.faults.ReaderUnplugged` when
  the reader is unplugged or closed.
* :meth:`insert` / :meth:`remove` at any moment; :meth:`unplug` drops power (volatile key slots
  and the card's chip state are lost), :meth:`replug` powers up and re-selects the card.
* ``.faults`` (:class:`~sim.faults.FaultPlan`), ``.clock`` (:class:`~sim.clock.VirtualClock`),
  ``.apdu_count``, ``.history`` (the last 64 exchanges, for debugging).
* One re-entrant lock per reader: a vpcd bridge thread and a test thread may both use it.
* PC/SC transactions as pcscd keeps them (:meth:`begin_transaction`, :meth:`turn`): while one
  connection holds the reader, another connection's command waits (bounded by
  ``transaction_wait_s``, then ``ReaderBusy``); the hold ends with the card insertion it was
  taken on, as pcscd drops it when the card leaves. The vpcd path does not use these: there
  the real pcscd keeps the transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from daemon.errors import CardAbsent, InvalidArgument, ReaderBusy, ReaderError, ReaderUnavailable
from daemon.readers.connection import ClosesOnExit
from sim.card import CardSize, SimCard, WriteTorn
from sim.clock import VirtualClock
from sim.connection import SimConnection
from sim.faults import CardGone, Fault, FaultKind, FaultPlan, ReaderUnplugged, ResponseDropped
from sim.latency import ChipOp, LatencyProfile, get_profile
from sim.models import ApduContext, ModelName, OmnikeyModel, ReaderMemory, ReaderModel
from sim.models_acs import Acr122uModel, AcsModel

__all__ = ["MODELS", "SimReader", "pcsc_atr"]

logger = logging.getLogger(__name__)

MODELS: dict[str, ReaderModel] = {
    "acr1252u": AcsModel(),
    "acr122u": Acr122uModel(),
    "omnikey5x21": OmnikeyModel(),
    "generic": ReaderModel(),
}
_CARD_NAME = {"mini": 0x0026, "1k": 0x0001, "4k": 0x0002}


def pcsc_atr(size: CardSize) -> bytes:
    """The ATR a PC/SC Part 3 reader synthesises for a MIFARE Classic card of this size."""
    nn = _CARD_NAME[size]
    body = bytes.fromhex("8F8001804F0CA000000306") + bytes((0x03, nn >> 8, nn & 0xFF, 0, 0, 0, 0))
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


class SimReader(ClosesOnExit):
    """One reader model with its key slots, fault plan, clock and (maybe) a card."""

    def __init__(
        self,
        name: str | None = None,
        model: ModelName = "acr1252u",
        latency: str | LatencyProfile | None = None,
        clock: VirtualClock | None = None,
        realtime: bool = False,
        seed: int = 0,
    ) -> None:
        if model not in MODELS:
            raise InvalidArgument("model", f"{model!r} is not one of {', '.join(MODELS)}")
        self._model = MODELS[model]
        self.name = name if name is not None else self._model.default_name
        if isinstance(latency, LatencyProfile):
            self.profile = latency
        else:
            self.profile = get_profile(latency or self._model.default_latency)
        self.clock = clock if clock is not None else VirtualClock()
        self.realtime = realtime
        self.faults = FaultPlan(seed)
        self.apdu_count = 0
        self.history: deque[tuple[bytes, bytes | None]] = deque(maxlen=64)
        self.memory = ReaderMemory()
        self._lock = threading.RLock()
        self._card: SimCard | None = None
        self._plugged = True
        self._closed = False
        self._generation = 0
        self.transaction_wait_s = 30.0
        self._txn_cond = threading.Condition(self._lock)
        self._txn: tuple[object, int, int] | None = None  # holder, generation, nesting count

    # --- properties ------------------------------------------------------------------------

    @property
    def model(self) -> ModelName:
        return self._model.model

    @property
    def card(self) -> SimCard | None:
        return self._card

    @property
    def plugged(self) -> bool:
        return self._plugged and not self._closed

    @property
    def generation(self) -> int:
        """Changes whenever a card is inserted or the reader is power-cycled."""
        return self._generation

    @property
    def atr(self) -> bytes:
        with self._lock:
            if self._card is None:
                raise CardAbsent(f"no card on reader {self.name!r}")
            return pcsc_atr(self._card.size)

    # --- card and power --------------------------------------------------------------------

    def insert(self, card: SimCard) -> None:
        """Put a card on the reader; the reader selects it at once."""
        with self._lock:
            if self._card is not None:
                raise InvalidArgument("card", f"reader {self.name!r} already holds a card")
            card.leave_field()
            if self._plugged:
                card.select()
            self._card = card
            self._generation += 1
            self._txn_cond.notify_all()
        logger.debug("card %s inserted into %s", card.uid.hex(), self.name)

    def remove(self) -> SimCard | None:
        """Take the card away (its volatile chip state is lost); returns it, or None."""
        with self._lock:
            card, self._card = self._card, None
            if card is not None:
                card.leave_field()
                logger.debug("card %s removed from %s", card.uid.hex(), self.name)
            self._txn_cond.notify_all()
            return card

    def unplug(self) -> None:
        """USB cable out: volatile key slots and the card's chip state are lost."""
        with self._lock:
            self._plugged = False
            self.memory.power_loss()
            if self._card is not None:
                self._card.leave_field()
            self._txn_cond.notify_all()

    def replug(self) -> None:
        """USB cable back in: power up and select the card lying on the reader."""
        with self._lock:
            self._plugged = True
            if self._card is not None:
                self._card.select()
            self._generation += 1
            self._txn_cond.notify_all()

    def reselect(self) -> int:
        """Re-select the card (PC/SC reconnect): clears its auth state and wakes it from the
        halt a NAK left it in; returns the generation."""
        with self._lock:
            self._check_plugged()
            if self._card is None:
                raise CardAbsent(f"no card on reader {self.name!r}")
            self._card.select()
            self._advance(self.profile.select_ms)
            return self._generation

    def connect(self) -> SimConnection:
        """Open an in-process :class:`~daemon.readers.connection.CardConnection`."""
        with self._lock:
            if not self.plugged:
                raise ReaderUnavailable(f"reader {self.name!r} is unplugged")
            if self._card is None:
                raise CardAbsent(f"no card on reader {self.name!r}")
            return SimConnection(self)

    def _check_plugged(self) -> None:
        if self._closed:
            raise ReaderUnplugged(f"reader {self.name!r} is closed")
        if not self._plugged:
            raise ReaderUnplugged(f"reader {self.name!r} is unplugged")

    # --- PC/SC transactions ----------------------------------------------------------------

    def _holder(self) -> object | None:
        """Who holds the reader now; a hold taken on a card that has since left is void."""
        if self._txn is not None and (
            self._txn[1] != self._generation or self._card is None or not self.plugged
        ):
            self._txn = None
        return None if self._txn is None else self._txn[0]

    def _wait_turn(self, owner: object, what: str) -> None:
        """Wait (lock held) until no other connection holds the reader, as pcscd does."""
        deadline = time.monotonic() + self.transaction_wait_s
        while (holder := self._holder()) is not None and holder is not owner:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReaderBusy(
                    f"reader {self.name!r}: {what}: another application held a PC/SC "
                    f"transaction for {self.transaction_wait_s:.1f} s"
                )
            self._txn_cond.wait(remaining)

    @contextmanager
    def turn(self, owner: object, what: str) -> Iterator[None]:
        """Hold the reader lock once no other connection holds a transaction: a command of
        ``owner`` (a connection) inside this block cannot interleave with another's transaction."""
        with self._txn_cond:
            self._wait_turn(owner, what)
            yield

    def begin_transaction(self, owner: object, generation: int) -> None:
        """``SCardBeginTransaction``: waits for another holder; nests for the same one.
        Raises ``CardGone`` when the card ``owner`` selected has left, ``ReaderUnplugged``."""
        with self._txn_cond:
            self._wait_turn(owner, "begin transaction")
            self._check_plugged()
            if generation != self._generation or self._card is None:
                raise CardGone(f"the card this connection selected left {self.name!r}")
            count = self._txn[2] if self._txn is not None else 0
            self._txn = (owner, generation, count + 1)

    def end_transaction(self, owner: object, generation: int, *, reset: bool = False) -> None:
        """``SCardEndTransaction``; ``reset`` re-selects the card (drops its authentication).
        A card that left since is ``CardGone`` (its hold is already void, as in pcscd)."""
        with self._txn_cond:
            self._check_plugged()
            if generation != self._generation or self._card is None:
                raise CardGone(f"the card this connection selected left {self.name!r}")
            if self._holder() is not owner or self._txn is None:
                raise ReaderError(f"reader {self.name!r}: end transaction: none was begun")
            count = self._txn[2] - 1
            self._txn = (owner, generation, count) if count else None
            if reset:
                self._card.select()
            self._txn_cond.notify_all()

    def release_transactions(self, owner: object | None = None) -> None:
        """Drop ``owner``'s hold (its handle closed), or every hold (the service died)."""
        with self._txn_cond:
            if self._txn is not None and (owner is None or self._txn[0] is owner):
                self._txn = None
                self._txn_cond.notify_all()

    # --- APDUs -----------------------------------------------------------------------------

    def process(self, apdu: bytes, *, generation: int | None = None) -> bytes:
        """Execute one command APDU; ``generation`` (connections) refuses a swapped card."""
        apdu = bytes(apdu)
        with self._lock:
            self._check_plugged()
            if generation is not None and (generation != self._generation or self._card is None):
                raise CardGone(f"the card this connection selected left {self.name!r}")
            self.apdu_count += 1
            due = {f.kind: f for f in self.faults.next_apdu()}
            spent = [self.profile.reader_overhead_ms]
            try:
                return self._execute(apdu, due, spent)
            finally:
                self._advance(sum(spent))

    def _execute(self, apdu: bytes, due: dict[FaultKind, Fault], spent: list[float]) -> bytes:
        card = self._card
        if "remove_before" in due or card is None:
            self.remove()
            self.history.append((apdu, None))
            raise CardGone(f"no card on {self.name!r} when APDU {self.faults.count} arrived")

        def charge(op: ChipOp) -> None:
            spent.append(self.profile.air_ms(op))

        tear = due.get("tear")
        ctx = ApduContext(card, self.memory, charge, pick=self.faults.pick)
        if tear is not None and tear.outcome is not None:
            ctx.tear = self.faults.tear_function(tear.outcome)
        try:
            response: bytes | None = self._model.handle(apdu, ctx)
        except WriteTorn:
            response = None
        lost = "tear" in due or "lose_response" in due
        self.history.append((apdu, None if lost else response))
        if "tear" in due:
            self.remove()
            raise ResponseDropped(f"card torn away from {self.name!r} during APDU")
        if "lose_response" in due:
            if "remove_after" in due:
                self.remove()
            raise ResponseDropped(f"response of {self.name!r} lost")
        if "remove_after" in due:
            self.remove()
        assert response is not None
        return response

    def _advance(self, ms: float) -> None:
        self.clock.advance(ms)
        if self.realtime and ms > 0:
            time.sleep(ms / 1000.0)

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Idempotent; afterwards every APDU fails as if the reader were unplugged."""
        with self._lock:
            self._closed = True
            self._txn_cond.notify_all()

    def __repr__(self) -> str:
        return f"SimReader(name={self.name!r}, model={self.model!r}, card={self._card!r})"
