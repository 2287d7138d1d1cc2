"""The PC/SC transaction around one reader-worker job (kept out of ``workers.py``).

Why: MIFARE authentication state belongs to the card, so another PC/SC client on the store PC
that sends a command between a job's AUTHENTICATE and its READ/WRITE rides on the job's session.
pcscd makes other clients' commands wait while a transaction is held.
"""

from __future__ import annotations

import logging

from daemon.errors import (
    CardAbsent,
    CardRemoved,
    PcscUnavailable,
    ReaderUnavailable,
    ResponseLost,
    WriteUnconfirmed,
)
from daemon.readers.connection import CardConnection, Transacted

__all__ = ["JobTransaction", "card_in_doubt"]

logger = logging.getLogger(__name__)

#: Job failures after which the card is gone or its state in doubt: nothing to reset.
_CARD_IN_DOUBT = (
    CardAbsent,
    CardRemoved,
    ResponseLost,
    WriteUnconfirmed,
    ReaderUnavailable,
    PcscUnavailable,
)


def card_in_doubt(exc: BaseException | None) -> bool:
    """Did the job fail because the card went away (even wrapped by a higher layer)? Then a
    reset has no authentication to drop, and one sent just after a pull wedged pcscd's vpcd slot.
    """
    while exc is not None:
        if isinstance(exc, _CARD_IN_DOUBT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class JobTransaction:
    """At most one held transaction: begun at the job's first use of the connection."""

    def __init__(self, reader: str) -> None:
        self._reader = reader
        self._held: Transacted | None = None

    def hold(self, connection: CardConnection) -> None:
        """Begin the transaction on ``connection`` unless already held (no-op for connections
        without the capability). A card gone raises here, before any APDU of the job."""
        if isinstance(connection, Transacted) and self._held is not connection:
            connection.begin_transaction()
            self._held = connection

    def end(self, failure: BaseException | None) -> bool:
        """End it: leave the card after success, reset it after a failure with the card still
        there (authentication state unknown). False if ending failed: drop the connection."""
        held, self._held = self._held, None
        if held is None:
            return True
        try:
            held.end_transaction(
                "reset" if failure is not None and not card_in_doubt(failure) else "leave"
            )
        except Exception as exc:  # card gone or service lost: the hold is void anyway
            logger.info("reader %r: ending the job's transaction failed: %s", self._reader, exc)
            return False
        return True

    def forget(self) -> None:
        """The connection is being closed: a disconnect ends any transaction."""
        self._held = None
