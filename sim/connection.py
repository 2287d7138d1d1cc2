"""In-process :class:`~daemon.readers.connection.CardConnection` over a :class:`SimReader`.

Maps the simulator's signals to the daemon's transport errors exactly as the pyscard backend
must: card left before the command → ``CardRemoved``; command sent, answer lost (tear, lost
response) → ``ResponseLost``; reader unplugged/closed or connection closed →
``ReaderUnavailable``. Answers get the same sanity checks as PC/SC ones
(:func:`daemon.readers.framing.check_response`), so a scripted broken reader fails the same way
in-process and through pcscd.

A connection is bound to the card insertion it was opened on: after the card is removed (even if
put back) every transmit fails with ``CardRemoved`` until :meth:`SimConnection.reconnect`, which
re-selects whatever card is on the reader now.

PC/SC transactions (:meth:`SimConnection.begin_transaction` / ``end_transaction``) hold the
reader against every other connection on it as pcscd does: their commands wait until the
transaction ends (bounded by ``SimReader.transaction_wait_s``, then ``ReaderBusy``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from daemon.errors import CardRemoved, ReaderUnavailable, ResponseLost
from daemon.readers.connection import ClosesOnExit, Disposition, Response
from daemon.readers.framing import check_response, command_label
from sim.faults import CardGone, ReaderUnplugged, ResponseDropped

if TYPE_CHECKING:
    from sim.reader import SimReader

__all__ = ["SimConnection"]

logger = logging.getLogger(__name__)


class SimConnection(ClosesOnExit):
    """A PC/SC-like handle on the card currently in one simulated reader."""

    def __init__(self, reader: SimReader) -> None:
        self._reader = reader
        self._generation = reader.generation
        self._atr = reader.atr
        self._closed = False

    @property
    def reader(self) -> SimReader:
        return self._reader

    @property
    def reader_name(self) -> str:
        return self._reader.name

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def closed(self) -> bool:
        return self._closed

    def transmit(self, apdu: bytes) -> Response:
        """Send one APDU; transport failures become :mod:`daemon.errors` exceptions."""
        if self._closed:
            raise ReaderUnavailable(f"connection to reader {self.reader_name!r} is closed")
        command = command_label(apdu)
        try:
            with self._reader.turn(self, command):
                raw = self._reader.process(apdu, generation=self._generation)
        except CardGone as exc:
            raise CardRemoved(
                f"card left reader {self.reader_name!r} before {command} executed"
            ) from exc
        except ResponseDropped as exc:
            raise ResponseLost(
                f"no answer to {command} from reader {self.reader_name!r}; it may have executed"
            ) from exc
        except ReaderUnplugged as exc:
            raise ReaderUnavailable(f"reader {self.reader_name!r} is unplugged") from exc
        return check_response(self.reader_name, apdu, raw)

    def reconnect(self, reset: bool = False) -> None:
        """Re-select the card: drops authentication and the transfer buffer, and wakes a card
        that a NAK (failed authentication, refused access...) left halted - the only way to.

        Raises ``CardAbsent`` when no card is on the reader, ``ReaderUnavailable`` when the
        reader is unplugged or this connection is closed.
        """
        if self._closed:
            raise ReaderUnavailable(f"connection to reader {self.reader_name!r} is closed")
        try:
            with self._reader.turn(self, "reconnect"):
                self._generation = self._reader.reselect()
        except ReaderUnplugged as exc:
            raise ReaderUnavailable(f"reader {self.reader_name!r} is unplugged") from exc
        self._atr = self._reader.atr

    def begin_transaction(self) -> None:
        """Hold the reader for this connection (waits while another holds it).

        ``CardRemoved`` when the card this connection selected has left (nothing was sent),
        ``ReaderUnavailable`` when the reader is unplugged or this connection closed.
        """
        self._transaction("begin", lambda: self._reader.begin_transaction(self, self._generation))

    def end_transaction(self, disposition: Disposition = "leave") -> None:
        """Release the hold; ``"reset"`` re-selects the card first (drops authentication)."""
        self._transaction(
            "end",
            lambda: self._reader.end_transaction(
                self, self._generation, reset=disposition == "reset"
            ),
        )

    def _transaction(self, what: str, call: Callable[[], None]) -> None:
        if self._closed:
            raise ReaderUnavailable(f"connection to reader {self.reader_name!r} is closed")
        try:
            call()
        except CardGone as exc:
            raise CardRemoved(
                f"reader {self.reader_name!r}: {what} transaction: the card left the field"
            ) from exc
        except ReaderUnplugged as exc:
            raise ReaderUnavailable(f"reader {self.reader_name!r} is unplugged") from exc

    def close(self) -> None:
        """Idempotent; ends this connection's transaction, as ``SCardDisconnect`` does."""
        self._closed = True
        self._reader.release_transactions(self)
