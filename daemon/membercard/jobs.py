"""Member card operations as reader-worker jobs (``Callable[[JobContext], T]``).

Why: a card operation must run on the reader's worker thread, which owns the connection (MIFARE
authentication state is per connection) and serialises jobs. Each factory here returns a job
that wraps the worker's connection in a :class:`~daemon.readers.storage.StorageCard` with the
reader's dialect and long-lived APDU trace (:class:`ReaderProfile`), then calls the service.
Nothing else: every rule lives in the service.

Deadlines are checked only where no card write is in flight; a started write is never
abandoned, its outcome (or ``WriteUnconfirmed``) is always returned:

1. the worker: a job not started by its deadline never runs (``ReaderWorker``);
2. here, once the connection is open and before the first APDU of the operation;
3. debit, credit and points only: inside the service after the card was read and checked, just
   before the journal intent (``check=`` hook), the last point at which nothing of the request
   has been written. An operation stopped there is journalled ABORTED and may be retried.

From the intent on, and for the whole of read (which may finish an interrupted purse mirror
update), issue, erase and replace, the job runs to its end whatever the clock says.

The job never closes the :class:`StorageCard`: the connection stays the worker's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.errors import InvalidArgument
from daemon.membercard.issuing import IssueResult, IssueSpec, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.service import CardInfo, MemberCardService, OpResult
from daemon.readers.dialects import Dialect, detect_dialect
from daemon.readers.storage import StorageCard
from daemon.readers.trace import ApduTrace
from daemon.readers.workers import Job, JobContext

__all__ = [
    "ReaderProfile",
    "credit_job",
    "debit_job",
    "erase_job",
    "issue_job",
    "points_job",
    "read_job",
    "replace_job",
]

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


def read_job(
    service: MemberCardService, reader: ReaderProfile, *, expected_uid: str | None = None
) -> Job[CardInfo]:
    def job(ctx: JobContext) -> CardInfo:
        return service.read(_storage(ctx, reader), expected_uid=expected_uid)

    return job


def debit_job(
    service: MemberCardService,
    reader: ReaderProfile,
    *,
    request_id: str,
    amount: int,
    earn_points: bool = True,
    points: int | None = None,
    expected_uid: str | None = None,
    expected_balance: int | None = None,
) -> Job[OpResult]:
    def job(ctx: JobContext) -> OpResult:
        return service.debit(
            _storage(ctx, reader),
            request_id=request_id,
            amount=amount,
            earn_points=earn_points,
            points=points,
            expected_uid=expected_uid,
            expected_balance=expected_balance,
            check=ctx.check_deadline,
        )

    return job


def credit_job(
    service: MemberCardService,
    reader: ReaderProfile,
    *,
    request_id: str,
    amount: int,
    bonus: int | None = None,
    expected_uid: str | None = None,
    expected_balance: int | None = None,
) -> Job[OpResult]:
    def job(ctx: JobContext) -> OpResult:
        return service.credit(
            _storage(ctx, reader),
            request_id=request_id,
            amount=amount,
            bonus=bonus,
            expected_uid=expected_uid,
            expected_balance=expected_balance,
            check=ctx.check_deadline,
        )

    return job


def points_job(
    service: MemberCardService,
    reader: ReaderProfile,
    *,
    request_id: str,
    delta: int,
    expected_uid: str | None = None,
) -> Job[OpResult]:
    def job(ctx: JobContext) -> OpResult:
        return service.adjust_points(
            _storage(ctx, reader),
            request_id=request_id,
            delta=delta,
            expected_uid=expected_uid,
            check=ctx.check_deadline,
        )

    return job


def issue_job(
    personaliser: Personaliser, reader: ReaderProfile, spec: IssueSpec, *, request_id: str
) -> Job[IssueResult]:
    def job(ctx: JobContext) -> IssueResult:
        return personaliser.issue(_storage(ctx, reader), spec, request_id=request_id)

    return job


def erase_job(
    personaliser: Personaliser, reader: ReaderProfile, *, request_id: str, force: bool = False
) -> Job[str]:
    def job(ctx: JobContext) -> str:
        return personaliser.erase(_storage(ctx, reader), request_id=request_id, force=force)

    return job


def replace_job(
    personaliser: Personaliser, reader: ReaderProfile, *, old_uid: str, request_id: str
) -> Job[IssueResult]:
    def job(ctx: JobContext) -> IssueResult:
        return replace_card(
            personaliser, _storage(ctx, reader), old_uid=old_uid, request_id=request_id
        )

    return job
