"""Scripted faults for a simulated reader: card removal, torn writes, lost responses.

Each :class:`FaultPlan` counts the APDUs sent to its reader since it was armed (1-based) and
fires the faults scheduled for that number, once:

* ``remove_before(n)`` - the card leaves before APDU n executes: :class:`CardGone`;
* ``remove_after(n)``  - APDU n executes and is answered, then the card leaves;
* ``tear(n, outcome)`` - the EEPROM programming of APDU n (UPDATE BINARY, or the TRANSFER of a
  value command) ends ``"old"`` (nothing written), ``"new"`` (fully written), ``"garbage"``
  (random bytes; for a value block a copy mismatch) or ``"unstable"`` (half-programmed cells:
  every later READ returns a different mix of old and new bits until the block is written
  again, :class:`~sim.chiprules.WeakCells`), the card leaves the field and the response is
  lost: :class:`ResponseDropped`. On an APDU that programs nothing the card simply leaves
  mid-command (executed, answer lost). Multi-block writes tear one block chosen by the seed:
  blocks before it are new, blocks after it old;
* ``lose_response(n)`` - APDU n executes, the response is lost, the card stays:
  :class:`ResponseDropped`.

Randomness (garbage bytes, the torn block of a multi-block write) comes from a
``random.Random(seed)``: the same seed and the same APDUs give the same card image.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Literal

from daemon.errors import InvalidArgument
from sim.card import TearFunction, WeakCells, is_value_format

__all__ = [
    "CardGone",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "ReaderUnplugged",
    "ResponseDropped",
    "TearFunction",
    "TearOutcome",
]

logger = logging.getLogger(__name__)

FaultKind = Literal["remove_before", "remove_after", "tear", "lose_response"]
TearOutcome = Literal["old", "new", "garbage", "unstable"]

_OUTCOMES: tuple[TearOutcome, ...] = ("old", "new", "garbage", "unstable")


class CardGone(Exception):
    """The card left the field before the APDU executed (nothing happened on the card)."""


class ResponseDropped(Exception):
    """The APDU reached the card (it may have executed) but its response was lost."""


class ReaderUnplugged(Exception):
    """The simulated reader is unplugged or closed."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: ``kind`` at APDU number ``n`` (``outcome`` for tears)."""

    kind: FaultKind
    n: int
    outcome: TearOutcome | None = None


class FaultPlan:
    """The faults scheduled on one reader; thread-safe (tests arm it while a bridge runs)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._faults: list[Fault] = []
        self._seed = seed
        self.rng = random.Random(seed)  # noqa: S311  (fault scripts, not crypto)

    @property
    def count(self) -> int:
        """APDUs seen since the plan was (re-)armed."""
        with self._lock:
            return self._count

    @property
    def pending(self) -> tuple[Fault, ...]:
        with self._lock:
            return tuple(self._faults)

    def arm(self, seed: int | None = None) -> None:
        """Restart APDU numbering at 1 (scheduled faults keep their numbers); optionally reseed."""
        with self._lock:
            self._count = 0
            if seed is not None:
                self._seed = seed
                self.rng = random.Random(seed)  # noqa: S311  (fault scripts, not crypto)

    def clear(self) -> None:
        """Drop every scheduled fault."""
        with self._lock:
            self._faults.clear()

    def remove_before(self, n: int) -> None:
        self._add(Fault("remove_before", self._check_n(n)))

    def remove_after(self, n: int) -> None:
        self._add(Fault("remove_after", self._check_n(n)))

    def tear(self, n: int, outcome: TearOutcome = "garbage") -> None:
        if outcome not in _OUTCOMES:
            raise InvalidArgument("outcome", f"{outcome!r} is not one of {', '.join(_OUTCOMES)}")
        self._add(Fault("tear", self._check_n(n), outcome))

    def lose_response(self, n: int) -> None:
        self._add(Fault("lose_response", self._check_n(n)))

    def _check_n(self, n: int) -> int:
        if isinstance(n, bool) or n < 1:
            raise InvalidArgument("n", f"APDU number must be an int >= 1, got {n!r}")
        with self._lock:
            if n <= self._count:
                raise InvalidArgument(
                    "n", f"APDU {n} was already sent ({self._count} since armed); arm() first"
                )
        return n

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)
        logger.debug("fault scheduled: %s at APDU %d", fault.kind, fault.n)

    def next_apdu(self) -> list[Fault]:
        """Count one APDU and return (and consume) the faults scheduled for it."""
        with self._lock:
            self._count += 1
            due = [f for f in self._faults if f.n == self._count]
            self._faults = [f for f in self._faults if f.n != self._count]
            return due

    def tear_function(self, outcome: TearOutcome) -> TearFunction:
        """What the EEPROM holds after a programming cycle torn with ``outcome``."""

        def program(old: bytes, new: bytes) -> bytes | WeakCells:
            if outcome == "old":
                return old
            if outcome == "new":
                return new
            if outcome == "unstable":
                with self._lock:
                    seed = self.rng.randrange(2**32)
                return WeakCells(old, new, random.Random(seed))  # noqa: S311  (fault script)
            with self._lock:
                if is_value_format(new):
                    # first copy programmed, the rest still old: V, ~V, V no longer agree
                    torn = bytearray(new[0:4] + old[4:16])
                    if is_value_format(bytes(torn)):
                        torn[8] ^= 1 << self.rng.randrange(8)
                    return bytes(torn)
                return bytes(self.rng.randrange(256) for _ in range(len(new)))

        return program

    def pick(self, count: int) -> int:
        """A seeded choice in ``range(count)`` (which block of a multi-block write tears)."""
        with self._lock:
            return self.rng.randrange(count)

    def __repr__(self) -> str:
        return f"FaultPlan(count={self.count}, pending={list(self.pending)!r})"
