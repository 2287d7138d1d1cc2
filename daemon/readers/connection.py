"""The one interface between the APDU layer and whatever carries APDUs to a card.

Implemented by the pyscard backend (real pcscd) and by the simulator's in-process connection,
so every layer above runs unchanged on both.

Transport errors a ``transmit`` may raise (all from :mod:`daemon.errors`):

* ``CardAbsent``   - no card was in the field when the command was sent (nothing executed);
* ``CardRemoved``  - the card left the field; the command was not executed;
* ``ResponseLost`` - the command was sent but no valid answer came back: it may have executed;
* ``ReaderUnavailable`` / ``PcscUnavailable`` - the reader or pcscd went away.

PC/SC transactions are an optional capability, :class:`Transacted` (both backends have it),
kept out of :class:`CardConnection` so that every existing connection (test doubles included)
still satisfies the protocol: the reader worker checks for it and wraps each job in one
transaction when it is there.

Status words are *not* errors at this level: they are returned in :class:`Response` and mapped
to typed errors by :mod:`daemon.readers.status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

__all__ = ["CardConnection", "ClosesOnExit", "Disposition", "Response", "Transacted"]

#: What ``end_transaction`` does to the card: leave it as it is, or reset it (which drops any
#: MIFARE authentication, so no one inherits it).
Disposition = Literal["leave", "reset"]


class ClosesOnExit:
    """Mixin for every reader-side device, connection and server: ``with obj:`` closes it.

    Subclasses implement an idempotent :meth:`close`; one definition of the context-manager
    protocol instead of a copy in each class (the simulator may import this module).
    """

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True, repr=False)
class Response:
    """A response APDU split into data and the 16-bit status word (``0x9000`` = success)."""

    data: bytes
    sw: int

    def __repr__(self) -> str:
        """Length and SW only: a trailer read answers key B wherever it is readable, and a
        repr ends up in assertion messages, tracebacks and ``%r`` log lines."""
        return f"Response({len(self.data)} data bytes, SW {self.sw1:02X} {self.sw2:02X})"

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        """Split raw response bytes; fewer than two bytes is the caller's error to report."""
        if len(raw) < 2:
            raise ValueError(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    def to_bytes(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))


@runtime_checkable
class CardConnection(Protocol):
    """A connection to the card currently in one reader's field."""

    @property
    def reader_name(self) -> str:
        """The reader's name as PC/SC (or the simulator) reports it."""
        ...

    @property
    def atr(self) -> bytes:
        """The ATR of the card this connection is talking to."""
        ...

    def transmit(self, apdu: bytes) -> Response:
        """Send one command APDU and return the reader's answer."""
        ...

    def reconnect(self, reset: bool = False) -> None:
        """Re-select the card (drops MIFARE authentication state); ``reset`` cold-resets it."""
        ...

    def close(self) -> None:
        """Release the connection. Idempotent."""
        ...


@runtime_checkable
class Transacted(Protocol):
    """A connection that can hold its reader against other PC/SC clients (a PC/SC transaction).

    While held, another client's commands on the reader wait until :meth:`end_transaction`, so
    nothing can slip in between an AUTHENTICATE and the READ/WRITE that relies on it.
    Errors are the transport errors of ``transmit`` (a card gone at begin: ``CardRemoved``,
    nothing sent). The hold also ends when the card leaves or the connection closes.
    """

    def begin_transaction(self) -> None:
        """Hold the reader; waits while another client holds it."""
        ...

    def end_transaction(self, disposition: Disposition = "leave") -> None:
        """Release the reader, leaving or resetting the card."""
        ...
