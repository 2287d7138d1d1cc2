"""The reader contract stack: the same scripted stack on two paths.

* ``sim``: :class:`sim.backend.SimBackend` over in-process :class:`SimReader` objects;
* ``pcsc``: the same SimReaders served by :class:`sim.vpcd.VpcdBridge` to a private pcscd
  (:class:`sim.pcscd.PrivatePcscd`, one per test session) and reached by the real pyscard
  backend. ``tests/conftest.py`` points ``PCSCLITE_CSOCK_NAME`` at its socket at import time.

The ``stack`` and ``private_pcscd`` fixtures that build it are in ``tests/conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from daemon.errors import CardDaemonError, CardRemoved, PcscUnavailable, ResponseLost
from daemon.events import Event
from daemon.readers.backends import ReaderBackend, ReaderState
from daemon.readers.monitor import EventKind, ReaderEvent
from sim.backend import SimBackend
from sim.card import SimCard
from sim.models import ModelName
from sim.pcscd import PrivatePcscd
from sim.reader import SimReader
from sim.vpcd import VpcdBridge

__all__ = [
    "AFTER_PULL",
    "READERS",
    "ScriptableReader",
    "Stack",
    "is_event",
    "make_readers",
]

# (pcscd FRIENDLYNAME, simulated model); the PC/SC name is FRIENDLYNAME + " 00 00".
READERS: tuple[tuple[str, ModelName], ...] = (
    ("ACS ACR1252 1S CL Reader PICC", "acr1252u"),
    ("HID Global OMNIKEY 5x21 Smart Card Reader", "omnikey5x21"),
)
WAIT_S = 10.0
# The error of the next command on a handle whose card left, per stack kind: pcscd answers
# REMOVED_CARD once its 400 ms presence poll has run, a 0-byte answer (ResponseLost) before that.
AFTER_PULL: dict[str, tuple[type[CardDaemonError], ...]] = {
    "sim": (CardRemoved,),
    "pcsc": (CardRemoved, ResponseLost),
}


def is_event(kind: EventKind, reader: str | None = None) -> Callable[[Event], bool]:
    """A hub ``Subscription.wait_for`` predicate: a reader event of ``kind`` (on ``reader``,
    if given); snapshot frames count too."""

    def match(event: Event) -> bool:
        payload = event.payload
        return (
            isinstance(payload, ReaderEvent)
            and payload.kind is kind
            and (reader is None or payload.reader == reader)
        )

    return match


class ScriptableReader(SimReader):
    """A SimReader that can be told to answer garbage (a broken reader or firmware): every
    command whose INS is ``garbage_ins`` (READ BINARY unless changed) gets ``garbage``."""

    garbage: bytes | None = None
    garbage_ins: int = 0xB0

    def process(self, apdu: bytes, *, generation: int | None = None) -> bytes:
        if self.garbage is not None and len(apdu) > 1 and apdu[1] == self.garbage_ins:
            return self.garbage
        return super().process(apdu, generation=generation)


@dataclass
class Stack:
    """Readers, backend and (for ``pcsc``) pcscd + bridge, scripted the same way on both."""

    kind: str
    backend: ReaderBackend
    readers: list[ScriptableReader]
    pcscd: PrivatePcscd | None = None
    bridge: VpcdBridge | None = None
    _closed: bool = field(default=False, repr=False)

    def name(self, i: int) -> str:
        return self.readers[i].name

    def states(self, known: dict[str, ReaderState] | None = None) -> dict[str, ReaderState]:
        """Current reader states; a restarted service is simply asked again."""
        try:
            return self.backend.wait_for_change(known, 0.5 if known is not None else 0)
        except PcscUnavailable:
            return self.backend.wait_for_change(None, 0)

    def wait_until(self, i: int, present: bool, timeout_s: float = WAIT_S) -> ReaderState:
        """Block until the backend sees reader ``i`` with/without a card (no fixed sleeps)."""
        deadline = time.monotonic() + timeout_s
        states = self.states()
        while True:
            state = states.get(self.name(i))
            if state is not None and state.present == present:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name(i)} never became present={present}: {states}")
            states = self.states(states)

    def insert(self, i: int, card: SimCard) -> ReaderState:
        """Put a card on reader ``i`` and wait until the backend sees it."""
        self.readers[i].insert(card)
        return self.wait_until(i, True)

    def remove(self, i: int) -> None:
        self.readers[i].remove()
        self.wait_until(i, False)

    def unplug(self, i: int) -> None:
        """Reader ``i`` leaves. Through vpcd a reader can only vanish when pcscd restarts
        without it (pcsc-lite 1.9.9 reads reader.conf.d at start only)."""
        self.readers[i].unplug()
        if self.pcscd is not None:
            keep = [n for j, (n, _) in enumerate(READERS) if j != i]
            self.pcscd.restart(keep, kill=True)

    def restart_service(self) -> None:
        """pcscd crashes and comes back (``SimBackend`` scripts the same)."""
        if self.pcscd is not None:
            self.pcscd.restart(kill=True)
        else:
            assert isinstance(self.backend, SimBackend)
            self.backend.stop_service()
            self.backend.start_service()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.bridge is not None:
            self.bridge.close()
        self.backend.close()
        for reader in self.readers:
            reader.close()


def make_readers() -> list[ScriptableReader]:
    return [ScriptableReader(f"{name} 00 00", model=model) for name, model in READERS]
