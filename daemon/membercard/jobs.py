"""Member card operations as reader-worker jobs (``Callable[[JobContext], T]``).

Why: a card operation must run on the reader's worker thread, which owns the connection (MIFARE
authentication state is per connection) and serialises jobs. :func:`card_job` returns a job
that wraps the worker's connection in a :class:`~daemon.readers.storage.StorageCard` with the
reader's dialect and long-lived APDU trace (:class:`ReaderProfile`), then hands the request
(:mod:`.requests`) to the service or the personaliser: one entry for every operation, so no
operation's parameters are restated here. Nothing else: every rule lives in the service.

Deadlines are checked only where no card write is in flight; a started write is never
abandoned, its outcome (or ``WriteUnconfirmed``) is always returned:

1. the worker: a job not started by its deadline never runs (``ReaderWorker``);
2. here, once the connection is open and before the first APDU of the operation;
3. value requests (debit, credit, points, refund, cancelled top-up) and tier change and
   renewal only: inside the service after the card was read and checked, just before the
   journal intent (``check=`` hook), the last point at which nothing of the request has been
   written. An operation stopped there is journalled ABORTED
   and may be retried.

From the intent on, and for the whole of read (which may finish an interrupted purse mirror
update), issue, erase and replace, the job runs to its end whatever the clock says.

The job never closes the :class:`StorageCard`: the connection stays the worker's. Once the
caller has its result - or its error: a failed job whose card is still there, e.g. a write
whose answer was lost, is cleaned up the same way - the worker runs the job's clean-up
(:func:`close_member_sectors`) still inside the job's PC/SC transaction: the card is left
authenticated to the public MAD sector only, so no other client on the PC inherits access to
a member sector.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import overload

from daemon.errors import InvalidArgument
from daemon.membercard.issuing import IssueResult, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import (
    AdjustPoints,
    CancelTopUp,
    CardRequest,
    ChangeTier,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    MembershipRequest,
    ReadCard,
    Refund,
    RenewCard,
    ReplaceCard,
    ValueRequest,
)
from daemon.membercard.service import (
    CardInfo,
    Check,
    MemberCardService,
    MembershipResult,
    OpResult,
)
from daemon.membercard.session import key_slot
from daemon.membercard.state import CardState
from daemon.mifare.geometry import first_block
from daemon.mifare.mad import MAD_KEY_A
from daemon.readers.apdu import KeyType
from daemon.readers.dialects import Dialect, detect_dialect
from daemon.readers.storage import StorageCard
from daemon.readers.trace import ApduTrace
from daemon.readers.workers import Job, JobContext

__all__ = ["ReaderProfile", "card_job", "close_member_sectors"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    """What a job needs about its reader besides the connection: its dialect and APDU trace.

    Make one per reader when it attaches and keep it: the trace ring must outlive cards and
    jobs so technicians see the exchanges that led to an error.
    """

    name: str
    dialect: Dialect
    trace: ApduTrace

    @classmethod
    def for_reader(cls, name: str, dialect: Dialect | None = None) -> ReaderProfile:
        """``dialect`` from config (``ReaderConfig.dialect_for``), else detected from the name."""
        return cls(name, dialect or detect_dialect(name), ApduTrace(name))


def _storage(ctx: JobContext, reader: ReaderProfile) -> StorageCard:
    """The worker's connection in the reader's dialect; deadline checkpoint 2 (see module)."""
    if ctx.reader_name != reader.name:
        raise InvalidArgument(
            "reader", f"job for {reader.name!r} submitted to reader {ctx.reader_name!r}"
        )
    card = StorageCard(ctx.connection, reader.dialect, trace=reader.trace)
    ctx.check_deadline("member card job (nothing sent yet)")
    return card


_RUN_BY: dict[type[CardRequest], type[MemberCardService | Personaliser]] = {
    ReadCard: MemberCardService,
    Debit: MemberCardService,
    Credit: MemberCardService,
    AdjustPoints: MemberCardService,
    ChangeTier: MemberCardService,
    RenewCard: MemberCardService,
    Refund: MemberCardService,
    CancelTopUp: MemberCardService,
    IssueCard: Personaliser,
    EraseCard: Personaliser,
    ReplaceCard: Personaliser,
}
"""Which object runs each request: the POS service or the personaliser."""


@overload
def card_job(
    target: MemberCardService, reader: ReaderProfile, request: ReadCard
) -> Job[CardInfo]: ...
@overload
def card_job(
    target: MemberCardService, reader: ReaderProfile, request: ValueRequest
) -> Job[OpResult]: ...
@overload
def card_job(
    target: MemberCardService, reader: ReaderProfile, request: MembershipRequest
) -> Job[MembershipResult]: ...
@overload
def card_job(
    target: Personaliser, reader: ReaderProfile, request: IssueCard | ReplaceCard
) -> Job[IssueResult]: ...
@overload
def card_job(target: Personaliser, reader: ReaderProfile, request: EraseCard) -> Job[str]: ...
@overload
def card_job(
    target: MemberCardService | Personaliser, reader: ReaderProfile, request: CardRequest
) -> Job[object]: ...
def card_job(
    target: MemberCardService | Personaliser, reader: ReaderProfile, request: CardRequest
) -> Job[object]:
    """The reader-worker job that runs ``request`` on ``reader``'s card with ``target``.

    A request handed to the wrong object (a debit to the personaliser) is refused here, before
    the job is queued.
    """
    want = _RUN_BY.get(type(request))
    if want is None:
        raise InvalidArgument("request", f"{type(request).__name__} is not a card request")
    if not isinstance(target, want):
        raise InvalidArgument(
            "request", f"{type(request).__name__} is run by a {want.__name__}, "
            f"not a {type(target).__name__}",
        )  # fmt: skip

    def job(ctx: JobContext) -> object:
        card = _storage(ctx, reader)
        if isinstance(target, MemberCardService) and isinstance(request, ReadCard):
            notes = _ReaderNotes(ctx)

            def close_unless_recalled() -> None:
                if not notes.recalled:
                    close_member_sectors(card)

            ctx.after(close_unless_recalled)
            return target.read(card, request, notes=notes)
        ctx.after(lambda: close_member_sectors(card))
        return _run(target, request, card, ctx.check_deadline)

    return job


class _ReaderNotes:
    """:class:`~daemon.membercard.service.CardNotes` in the reader worker's per-connection
    notes (:meth:`JobContext.remember`): gone when the card leaves, is swapped, or any job
    but a read takes the card."""

    KEY = "member_card"

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._offered: CardState | None = None
        self.recalled = False  # this read used no key: nothing to close afterwards

    def recall(self, max_age_s: float) -> CardState | None:
        noted = self._ctx.recall(self.KEY)
        if noted is not None and time.monotonic() - noted[0] <= max_age_s:
            self._offered = noted[1]
        return self._offered

    def remember(self, state: CardState) -> None:
        if state is self._offered:
            self.recalled = True  # answered from the notes: no key was used
            return
        self._ctx.remember(self.KEY, (time.monotonic(), state))


def close_member_sectors(card: StorageCard) -> None:
    """Leave the card authenticated to the public MAD sector only (2 APDUs, run by the worker
    after the caller has its answer): no other PC/SC client can ride on the job's
    authentication to a record or purse sector. A reset would do the same but pcscd reports it
    to every other handle as "card was reset"."""
    slot = key_slot(card.dialect, "A")
    card.load_key(MAD_KEY_A, slot, KeyType.A)
    card.authenticate(first_block(0), KeyType.A, slot)


def _run(
    target: MemberCardService | Personaliser,
    request: CardRequest,
    card: StorageCard,
    check: Check,
) -> object:
    """One call per request type; ``check`` (deadline checkpoint 3) only for value requests."""
    if isinstance(target, MemberCardService):
        match request:
            case ReadCard():
                return target.read(card, request)
            case Debit():
                return target.debit(card, request, check=check)
            case Credit():
                return target.credit(card, request, check=check)
            case AdjustPoints():
                return target.adjust_points(card, request, check=check)
            case ChangeTier():
                return target.change_tier(card, request, check=check)
            case RenewCard():
                return target.renew(card, request, check=check)
            case Refund():
                return target.refund(card, request, check=check)
            case CancelTopUp():
                return target.cancel_topup(card, request, check=check)
    else:
        match request:
            case IssueCard():
                return target.issue(card, request)
            case EraseCard():
                return target.erase(card, request)
            case ReplaceCard():
                return replace_card(target, card, request)
    raise AssertionError(f"{type(request).__name__} checked by card_job")  # pragma: no cover
