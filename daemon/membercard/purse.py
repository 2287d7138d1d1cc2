"""The purse mirror in sector 3: primary (12) then backup (13), always in that order.

Why the order matters: the record slot is the commit point; the mirror follows it. Changing
primary before backup keeps every torn state inside the set :mod:`daemon.membercard.state`
accepts as an interrupted mirror update. A debit on an ACS reader uses the native DECREMENT
(+TRANSFER) and RESTORE+TRANSFER with key A; top-ups and repairs write both blocks with key B.
"""

from __future__ import annotations

import logging

from daemon.membercard.layout import PURSE_ADR, PURSE_BACKUP, PURSE_PRIMARY, PURSE_SECTOR
from daemon.membercard.session import CardSession
from daemon.membercard.state import decode_purse_block
from daemon.mifare.value import encode_value_block
from daemon.readers.dialects import ValueOp

__all__ = ["mirror_balance", "read_purse", "store_purse"]

logger = logging.getLogger(__name__)


def _native(session: CardSession, *ops: ValueOp) -> bool:
    have = session.card.dialect.native_value_ops()
    return all(op in have for op in ops)


def store_purse(session: CardSession, value: int) -> None:
    """Write ``value`` into primary, then backup (key B): top-ups on readers without value
    commands, and repairs. A repair rewrites both blocks even when one already reads right: a
    block left unstable by a tear can read right once and differently the next time."""
    block = encode_value_block(value, PURSE_ADR)
    session.write(PURSE_SECTOR, PURSE_PRIMARY, block, "B")
    session.write(PURSE_SECTOR, PURSE_BACKUP, block, "B")


def mirror_balance(session: CardSession, old: int, new: int) -> None:
    """Bring the purse from a consistent ``old`` to ``new`` after the record committed."""
    if new == old:
        return
    if new < old and _native(session, ValueOp.DECREMENT, ValueOp.RESTORE):
        session.auth(PURSE_SECTOR, "A")
        session.card.value_decrement(PURSE_PRIMARY, old - new)
        session.card.value_restore_transfer(PURSE_PRIMARY, PURSE_BACKUP)
    elif new > old and _native(session, ValueOp.INCREMENT, ValueOp.RESTORE):
        session.auth(PURSE_SECTOR, "B")
        session.card.value_increment(PURSE_PRIMARY, new - old)
        session.card.value_restore_transfer(PURSE_PRIMARY, PURSE_BACKUP)
    else:
        store_purse(session, new)


def read_purse(session: CardSession) -> tuple[int | None, int | None]:
    """Both mirror values as read back now (``None`` = not a value block)."""
    primary, backup = session.read_purse()
    return decode_purse_block(primary, PURSE_PRIMARY), decode_purse_block(backup, PURSE_BACKUP)
