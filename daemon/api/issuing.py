"""``IssuingService``: issue, verify, erase and replace member cards, batch issue, the hotlist.

Issuer role only. The card-writing RPCs (issue, erase, replace, batch) run only on a station
configured ``[daemon] station = "issuing"``: anywhere else they are PERMISSION_DENIED /
``OPERATION_NOT_ALLOWED`` before any card is touched. Every card call is a job on the reader's
worker (``Station.run_async``), never on the event loop: a call the client cancels before its job
started is dropped from the queue (nothing written), one whose job started runs to its end and
its outcome is in the journal under its ``request_id``: never half-done.

The hotlist lives in the journal as ``uid -> reason text``; the API stores the reason as its
enum name, followed by ``": note"`` when a note was given (``LOST: report 42``). Entries the
daemon made itself (``replaced (<request_id>)`` by ReplaceCard, a fraud reason such as
``MAC_INVALID``) are shown as REPLACED / FRAUD with that text as the note.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, TypeVar, cast

from grpc import aio

from daemon.api import convert
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import common_pb2
from daemon.api.v1 import issuing_service_pb2 as pb
from daemon.api.v1 import issuing_service_pb2_grpc as pb_grpc
from daemon.api.v1 import member_card_service_pb2 as mc
from daemon.errors import (
    AmountOutOfRange,
    CardDaemonError,
    CardError,
    CardMismatch,
    DeviceError,
    InvalidAmount,
    InvalidArgument,
    OperationNotAllowed,
    OperationTimeout,
    ReaderUnavailable,
)
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard.issuing import IssueResult
from daemon.membercard.layout import (
    ACCESS_MAD,
    ACCESS_PURSE,
    ACCESS_SLOT,
    MAX_AMOUNT,
)
from daemon.membercard.requests import (
    EraseCard,
    IssueCard,
    IssueSpec,
    ReplaceCard,
    check_request_id,
    normalise_uid,
)
from daemon.membercard.rules import Programme
from daemon.membercard.session import CardSession, key_slot
from daemon.membercard.state import CardState, evaluate
from daemon.mifare.geometry import first_block, trailer_block
from daemon.mifare.trailer import DEFAULT_KEY
from daemon.readers.apdu import KeyType
from daemon.readers.monitor import ReaderEvent
from daemon.readers.storage import StorageCard
from daemon.readers.workers import JobContext
from daemon.station import Station

__all__ = [
    "IssuingServicer",
    "hotlist_entry",
    "page",
    "run_on_reader",
    "service",
    "state_member_card",
]

Context = aio.ServicerContext[Any, Any]
T = TypeVar("T")

MAX_NOTE: Final = 200
MAX_BATCH_ID: Final = 48
MAX_BATCH: Final = 1000
MAX_CARD_WAIT_S: Final = 120.0
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 500
_BR = pb.BatchIssueCardsResponse

_REASON_NAMES: Final = {
    pb.HOTLIST_REASON_LOST: "LOST",
    pb.HOTLIST_REASON_STOLEN: "STOLEN",
    pb.HOTLIST_REASON_REPLACED: "REPLACED",
    pb.HOTLIST_REASON_FRAUD: "FRAUD",
    pb.HOTLIST_REASON_DAMAGED: "DAMAGED",
    pb.HOTLIST_REASON_OTHER: "OTHER",
}
_REASON_OF: Final = {name: value for value, name in _REASON_NAMES.items()}
#: reasons the member card guard hotlists a card under (``hotlist_on_fraud``)
_FRAUD_REASONS: Final = frozenset(
    {"FRAUD_DETECTED", "MAC_INVALID", "COUNTER_ROLLBACK", "CARD_CLONED", "HISTORY_FORKED",
     "VALUE_BLOCK_MISMATCH"}
)  # fmt: skip
#: the access bytes each sector of the member card layout must have (VerifyCard)
_LAYOUT_ACCESS: Final = {0: ACCESS_MAD, 1: ACCESS_SLOT, 2: ACCESS_SLOT, 3: ACCESS_PURSE}


# --- request fields -----------------------------------------------------------------------------


def _request_id(value: str, field: str = "request_id") -> str:
    rid = convert.request_id(value)
    if not rid.isprintable():
        raise InvalidArgument(field, "must be printable text on one line")
    return check_request_id(rid)


def _uid(value: str, field: str, *, required: bool) -> str | None:
    if not value:
        if required:
            raise InvalidArgument(field, "required: a card UID in hex, e.g. 04A1B2C3")
        return None
    return normalise_uid(field, value)


def _text(value: str, field: str, *, required: bool) -> str:
    if not value and required:
        raise InvalidArgument(field, f"required: 1..{MAX_NOTE} characters")
    if len(value) > MAX_NOTE:
        raise InvalidArgument(field, f"{len(value)} characters; at most {MAX_NOTE}")
    if value and not value.isprintable():
        raise InvalidArgument(field, "must be printable text on one line")
    return value


def card_spec(spec: pb.CardSpec, programme: Programme, field: str) -> IssueSpec:
    """A request's ``CardSpec`` checked against the programme; errors name ``field.<name>``."""
    member = spec.member_id
    if not member:
        raise InvalidArgument(f"{field}.member_id", "required: the member ID (1-16 digits)")
    if len(member) > 16 or not (member.isascii() and member.isdigit()):
        raise InvalidArgument(f"{field}.member_id", f"must be 1-16 digits, got {member[:40]!r}")
    if not 0 <= spec.tier < len(programme.tiers):
        known = ", ".join(f"{i} {t.name}" for i, t in enumerate(programme.tiers))
        raise InvalidArgument(f"{field}.tier", f"{spec.tier} is not in the tier table ({known})")
    until = (
        convert.from_date(spec.valid_until, f"{field}.valid_until")
        if spec.HasField("valid_until")
        else None
    )
    balance = 0
    if spec.HasField("opening_balance"):
        balance = convert.amount(spec.opening_balance, f"{field}.opening_balance", allow_zero=True)
        if balance > programme.balance_cap:
            raise AmountOutOfRange(
                f"{field}.opening_balance",
                f"{balance} fen is above the card cap ({programme.balance_cap} fen)",
            )
    if not 0 <= spec.opening_points <= MAX_AMOUNT:
        raise InvalidAmount(
            f"{field}.opening_points", f"{spec.opening_points} is outside 0..{MAX_AMOUNT}"
        )
    return IssueSpec(member, spec.tier, until, balance, spec.opening_points)


def issued_card(result: IssueResult) -> pb.IssuedCard:
    return pb.IssuedCard(
        request_id=result.request_id,
        uid=result.uid,
        member_id=result.member_id,
        balance=convert.money(result.balance),
        points=result.points,
        replayed=result.replayed,
    )


def hotlist_entry(uid: str, text: str, at: float, member_id: str | None = None) -> pb.HotlistEntry:
    """A journal hotlist row as the contract shows it (see the module docstring)."""
    name, _, note = text.partition(": ")
    reason = _REASON_OF.get(name)
    if reason is None:
        note = text
        if text.startswith("replaced"):
            reason = pb.HOTLIST_REASON_REPLACED
        elif text in _FRAUD_REASONS:
            reason = pb.HOTLIST_REASON_FRAUD
        else:
            reason = pb.HOTLIST_REASON_OTHER
    return pb.HotlistEntry(
        uid=uid,
        reason=reason,
        note=note,
        member_id=member_id or "",
        create_time=convert.timestamp(at),
    )


def page(size: int, token: str) -> tuple[int, int]:
    """``(offset, size)`` of a page request (``page_size`` 0 means 100, above 500 is 500)."""
    if size < 0:
        raise InvalidArgument("page_size", f"must not be negative, got {size}")
    if token and (not token.isdigit() or len(token) > 9):
        raise InvalidArgument("page_token", "not a token this daemon gave out")
    return (int(token) if token else 0), min(size or DEFAULT_PAGE, MAX_PAGE)


# --- card jobs ----------------------------------------------------------------------------------


def _storage(station: Station, reader: str, ctx: JobContext) -> StorageCard:
    profile = station.profile(reader)
    return StorageCard(ctx.connection, profile.dialect, trace=profile.trace)


def _on_card(
    station: Station, reader: str, expected: str | None, inner: Callable[[JobContext], T]
) -> Callable[[JobContext], T]:
    """``inner`` after checking that the card on the reader is ``expected`` (when given)."""
    if expected is None:
        return inner

    def job(ctx: JobContext) -> T:
        ctx.check_deadline("card check (nothing sent yet)")
        uid = _storage(station, reader, ctx).uid().hex().upper()
        if uid != expected:
            raise CardMismatch(f"expected card {expected}, presented {uid}; nothing written")
        return inner(ctx)

    return job


def _finding(code: str, message: str, sector: int = -1) -> pb.VerifyFinding:
    return pb.VerifyFinding(code=code, message=message, sector=sector)


def _opens_with_transport_key(card: StorageCard, sector: int) -> bool:
    slot = key_slot(card.dialect, "A")
    card.load_key(DEFAULT_KEY, slot, KeyType.A)
    try:
        card.authenticate(first_block(sector), KeyType.A, slot)
    except CardError:
        card.reconnect()
        return False
    return True


def state_member_card(state: CardState, programme: Programme, expired: bool) -> mc.MemberCard:
    header, cur = state.header, state.current
    known = header.tier < len(programme.tiers)
    tier = programme.tiers[header.tier] if known else None
    return mc.MemberCard(
        uid=state.uid_hex,
        member_id=header.member_id,
        tier=header.tier,
        tier_name=tier.name if tier else f"tier {header.tier}",
        price_rate_bp=tier.discount if tier else 10000,
        valid_until=convert.date(header.valid_until),
        balance=convert.money(cur.balance),
        points=cur.points,
        counter=cur.counter,
        status=mc.MEMBER_CARD_STATUS_EXPIRED if expired else mc.MEMBER_CARD_STATUS_ACTIVE,
    )


def verify_job(
    station: Station, reader: str, expected: str | None
) -> Callable[[JobContext], pb.VerifyCardResponse]:
    """Read-only checks of the card, collecting every problem instead of failing on one."""
    keystore: Keystore = station.keystore
    journal = station.journal
    programme = station.programme
    if journal is None:
        raise ReaderUnavailable("the station is not running")

    def job(ctx: JobContext) -> pb.VerifyCardResponse:
        card = _storage(station, reader, ctx)
        ctx.check_deadline("verify (nothing sent yet)")
        uid = card.uid().hex().upper()
        if expected is not None and uid != expected:
            raise CardMismatch(f"expected card {expected}, presented {uid}")
        out = pb.VerifyCardResponse()
        hot = journal.hotlist_reason(uid)
        if hot is not None:
            out.findings.append(_finding("CARD_HOTLISTED", f"card {uid} is hotlisted ({hot})"))
        session = CardSession(card, keystore)
        state: CardState | None = None
        try:
            state = evaluate(keystore, session.read_image())
        except CardError as exc:
            card.reconnect()
            if all(_opens_with_transport_key(card, s) for s in (0, 1, 2, 3)):
                out.blank = True
            else:
                out.findings.append(_finding(exc.reason, exc.message))
        if state is not None:
            checks: list[Callable[[], None]] = [
                lambda: journal.check_counter(uid, state.current.counter),
                lambda: journal.check_binding(state.header.member_id, uid),
                lambda: journal.check_history(uid, _records(state)),
            ]
            for check in checks:
                try:
                    check()
                except CardError as exc:
                    out.findings.append(_finding(exc.reason, exc.message))
            if not state.mirror_ok:
                out.findings.append(_finding(
                    "PURSE_MIRROR_BEHIND",
                    f"purse primary {state.primary} / backup {state.backup} differ from the "
                    f"record balance {state.current.balance} (an interrupted write; the next "
                    "read at a till finishes it)", 3,
                ))  # fmt: skip
            for sector, wanted in _LAYOUT_ACCESS.items():
                if sector == 0:
                    continue  # sector 0 opens with the MAD key, checked by DumpCard
                try:
                    session.auth(sector, "A")
                    raw = card.read_block(trailer_block(sector))
                except CardError as exc:
                    out.findings.append(_finding(exc.reason, exc.message, sector))
                    card.reconnect()
                    session.forget_auth()
                    continue
                if raw[6:9] != wanted.to_bytes():
                    out.findings.append(_finding(
                        "UNSAFE_ACCESS_BITS",
                        f"sector {sector} access bytes {raw[6:9].hex().upper()}, the layout "
                        f"has {wanted.to_bytes().hex().upper()}", sector,
                    ))  # fmt: skip
            pending = [r.request_id for r in journal.pending_for_uid(uid)]
            if pending:
                out.findings.append(_finding(
                    "PENDING_OPERATIONS",
                    f"operations of unknown outcome: {', '.join(pending)} (a read settles them)",
                ))  # fmt: skip
            until = state.header.valid_until
            expired = until is not None and until < station._today()
            if expired:
                out.findings.append(_finding("CARD_EXPIRED", f"card {uid} expired on {until}"))
            out.card.CopyFrom(state_member_card(state, programme, expired))
        out.valid = state is not None and not out.findings
        return out

    return job


def _records(state: CardState) -> list[tuple[int, str]]:
    found = [state.current, state.previous]
    return [(s.counter, s.tag.hex()) for s in found if s is not None]


async def run_on_reader(
    station: Station, rid: str, job: Callable[[JobContext], T], timeout_s: float
) -> T:
    """``station.run_async``; a job's error is raised as a fresh copy.

    Why: the reader worker holds its last job (future and exception) until the next job comes.
    Raised as itself, that exception would gather this call's frames (the servicer context, and
    through it the server) on its traceback and pin them as long as the reader stays idle."""
    try:
        return await station.run_async(rid, job, timeout_s=timeout_s)
    except CardDaemonError as exc:
        copy = type(exc).__new__(type(exc), *exc.args)
        copy.__dict__.update(exc.__dict__)
        copy.__cause__ = exc.__cause__
        exc.__traceback__ = None
        raise copy from exc.__cause__


# --- the servicer ---------------------------------------------------------------------------------


class IssuingServicer(pb_grpc.IssuingServiceServicer):
    def __init__(self, station: Station, api: ApiConfig) -> None:
        self.station = station
        self.max_call_s = api.max_call_ms / 1000

    def _issuing(self, what: str) -> None:
        station = self.station.config.daemon.station
        if station != "issuing":
            raise OperationNotAllowed(
                f"{what} writes member cards: only an issuing station may ([daemon] station = "
                f'"issuing"; this station is {station!r})'
            )

    def _reader(self, name: str) -> str:
        rid = convert.resource_id(name, "readers", "reader")
        self.station.reader(rid)  # NOT_FOUND before anything else is judged
        return rid

    def _limit(self, context: Context) -> float:
        left = cast("float | None", context.time_remaining())
        limit = self.max_call_s if left is None else min(left, self.max_call_s)
        return max(limit, 0.0)

    async def _run(self, rid: str, job: Callable[[JobContext], T], context: Context) -> T:
        return await run_on_reader(self.station, rid, job, self._limit(context))

    def _replayed(self, request_id: str) -> bool:
        journal = self.station.journal
        record = journal.get(request_id) if journal is not None else None
        return record is not None and record.state is RequestState.COMMITTED

    async def IssueCard(
        self, request: pb.IssueCardRequest, context: Context
    ) -> pb.IssueCardResponse:
        rid = self._reader(request.reader)
        issue = IssueCard(
            card_spec(request.spec, self.station.programme, "spec"),
            _request_id(request.request_id),
        )
        expected = _uid(request.expected_uid, "expected_uid", required=False)
        self._issuing("IssueCard")
        job = _on_card(self.station, rid, expected, self.station.card_job(rid, issue))
        result: IssueResult = await self._run(rid, job, context)
        return pb.IssueCardResponse(card=issued_card(result))

    async def VerifyCard(
        self, request: pb.VerifyCardRequest, context: Context
    ) -> pb.VerifyCardResponse:
        rid = self._reader(request.reader)
        expected = _uid(request.expected_uid, "expected_uid", required=False)
        return await self._run(rid, verify_job(self.station, rid, expected), context)

    async def EraseCard(
        self, request: pb.EraseCardRequest, context: Context
    ) -> pb.EraseCardResponse:
        rid = self._reader(request.reader)
        erase = EraseCard(_request_id(request.request_id), force=request.force)
        expected = _uid(request.expected_uid, "expected_uid", required=True)
        self._issuing("EraseCard")
        inner = self.station.card_job(rid, erase)

        def job(ctx: JobContext) -> tuple[str, bool]:
            replayed = self._replayed(erase.request_id)
            return inner(ctx), replayed

        uid, replayed = await self._run(rid, _on_card(self.station, rid, expected, job), context)
        return pb.EraseCardResponse(uid=uid, replayed=replayed)

    async def ReplaceCard(
        self, request: pb.ReplaceCardRequest, context: Context
    ) -> pb.ReplaceCardResponse:
        rid = self._reader(request.reader)
        old = _uid(request.old_uid, "old_uid", required=True)
        assert old is not None
        replace = ReplaceCard(old, _request_id(request.request_id))
        expected = _uid(request.expected_uid, "expected_uid", required=False)
        if expected == old:
            raise InvalidArgument("expected_uid", "is the lost card itself; present a new card")
        self._issuing("ReplaceCard")
        inner = self.station.card_job(rid, replace)

        def job(ctx: JobContext) -> IssueResult:
            replayed = self._replayed(replace.request_id)
            result: IssueResult = inner(ctx)
            return IssueResult(
                result.request_id, result.uid, result.member_id, result.balance,
                result.points, replayed=result.replayed or replayed,
            )  # fmt: skip

        result = await self._run(rid, _on_card(self.station, rid, expected, job), context)
        return pb.ReplaceCardResponse(card=issued_card(result), old_uid=old)

    async def BatchIssueCards(
        self, request: pb.BatchIssueCardsRequest, context: Context
    ) -> AsyncIterator[pb.BatchIssueCardsResponse]:
        rid = self._reader(request.reader)
        batch = request.batch_id
        if not batch:
            raise InvalidArgument("batch_id", f"required: 1..{MAX_BATCH_ID} printable characters")
        if len(batch) > MAX_BATCH_ID or not batch.isprintable():
            raise InvalidArgument("batch_id", f"must be 1..{MAX_BATCH_ID} printable characters")
        if not request.cards:
            raise InvalidArgument("cards", "required: 1..1000 cards to issue")
        if len(request.cards) > MAX_BATCH:
            raise InvalidArgument("cards", f"{len(request.cards)} cards; at most {MAX_BATCH}")
        specs: list[IssueSpec] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(request.cards):
            spec = card_spec(item, self.station.programme, f"cards[{i}]")
            if spec.member_id in seen:
                raise InvalidArgument(
                    f"cards[{i}].member_id",
                    f"{spec.member_id} is also cards[{seen[spec.member_id]}]",
                )
            seen[spec.member_id] = i
            specs.append(spec)
        wait_s = MAX_CARD_WAIT_S
        if request.HasField("card_timeout"):
            asked = convert.seconds(request.card_timeout, "card_timeout")
            wait_s = min(asked, MAX_CARD_WAIT_S) if asked > 0 else MAX_CARD_WAIT_S
        self._issuing("BatchIssueCards")
        journal = self.station.journal
        assert journal is not None
        total, done = len(specs), 0
        source = f"readers/{rid}"

        def progress(
            i: int, state: _BR.State.ValueType, uid: str = "", exc: CardDaemonError | None = None
        ) -> pb.BatchIssueCardsResponse:
            return _BR(
                index=i, member_id=specs[i].member_id, state=state, uid=uid, done=done,
                total=total, error_reason=exc.reason if exc else "",
                error_message=exc.message if exc else "",
            )  # fmt: skip

        with self.station.hub.subscribe(sources=source, name=f"BatchIssueCards {source}") as sub:
            waiter = _CardWaiter(sub, source)
            for i, spec in enumerate(specs):
                request_id = f"{batch}:{i}"
                record = journal.get(request_id)
                if record is not None and record.state is RequestState.COMMITTED:
                    done += 1
                    yield progress(i, _BR.STATE_SKIPPED, str((record.outcome or {}).get("uid", "")))
                    continue
                yield progress(i, _BR.STATE_WAITING_FOR_CARD)
                uid = await waiter.next_card(min(wait_s, self._deadline_left(context)))
                issue = IssueCard(spec, request_id)
                try:
                    result: IssueResult = await self._run(
                        rid, self.station.card_job(rid, issue), context
                    )
                except DeviceError:
                    raise  # the reader is gone or busy: the batch cannot go on; resend it
                except CardDaemonError as exc:
                    done += 1
                    yield progress(i, _BR.STATE_FAILED, uid, exc)
                    continue
                done += 1
                yield progress(i, _BR.STATE_ISSUED, result.uid)

    def _deadline_left(self, context: Context) -> float:
        left = cast("float | None", context.time_remaining())
        return MAX_CARD_WAIT_S if left is None else max(left, 0.0)

    # --- hotlist ---------------------------------------------------------------------------------

    def _journal(self) -> Any:
        journal = self.station.journal
        if journal is None:
            raise ReaderUnavailable("the station is not running")
        return journal

    async def AddToHotlist(
        self, request: pb.AddToHotlistRequest, context: Context
    ) -> pb.AddToHotlistResponse:
        uid = _uid(request.uid, "uid", required=True)
        assert uid is not None
        if request.reason == pb.HOTLIST_REASON_REPLACED:
            raise InvalidArgument("reason", "REPLACED is set by ReplaceCard, not asked for")
        name = _REASON_NAMES.get(request.reason)
        if name is None:
            raise InvalidArgument(
                "reason", f"required: one of {', '.join(sorted(_REASON_OF))} (not REPLACED)"
            )
        note = _text(request.note, "note", required=False)
        journal = self._journal()
        text = f"{name}: {note}" if note else name
        await asyncio.to_thread(journal.hotlist, uid, text, update=True)
        return pb.AddToHotlistResponse(entry=self._entry(uid))

    def _entry(self, uid: str) -> pb.HotlistEntry:
        journal = self._journal()
        for listed, text, at in journal.hotlist_entries():
            if listed == uid:
                seen = journal.last_seen(uid)
                return hotlist_entry(uid, text, at, seen.member_id if seen else None)
        raise ReaderUnavailable(f"card {uid}: the hotlist entry was not stored")  # pragma: no cover

    async def RemoveFromHotlist(
        self, request: pb.RemoveFromHotlistRequest, context: Context
    ) -> pb.RemoveFromHotlistResponse:
        uid = _uid(request.uid, "uid", required=True)
        note = _text(request.note, "note", required=True)
        removed = await asyncio.to_thread(self._journal().unhotlist, uid, note)
        return pb.RemoveFromHotlistResponse(removed=removed)

    async def ListHotlist(
        self, request: pb.ListHotlistRequest, context: Context
    ) -> pb.ListHotlistResponse:
        start, size = page(request.page_size, request.page_token)
        journal = self._journal()
        rows = journal.hotlist_entries()
        chunk = rows[start : start + size]
        members = {uid: journal.last_seen(uid) for uid, _, _ in chunk}
        return pb.ListHotlistResponse(
            entries=[
                hotlist_entry(uid, text, at, getattr(members[uid], "member_id", None))
                for uid, text, at in chunk
            ],
            next_page_token=str(start + size) if start + size < len(rows) else "",
        )

    async def ListTiers(
        self, request: pb.ListTiersRequest, context: Context
    ) -> pb.ListTiersResponse:
        programme = self.station.programme
        return pb.ListTiersResponse(
            tiers=[
                pb.Tier(
                    index=i,
                    name=tier.name,
                    price_rate_bp=tier.discount,
                    points_per_100_yuan=tier.points_per_100_yuan,
                )
                for i, tier in enumerate(programme.tiers)
            ],
            balance_cap=common_pb2.Money(amount_fen=programme.balance_cap),
        )


class _CardWaiter:
    """The next card laid on the reader: the one there at the start, then each card presented
    after the previous one was removed (the operator swaps cards)."""

    def __init__(self, sub: Any, source: str) -> None:
        self.sub = sub
        self.source = source
        self.present: str | None = None  # the UID on the reader now
        self.used: str | None = None  # the card last handed out, until it is removed
        self.fresh = True

    async def next_card(self, wait_s: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            if self.present is not None and self.present != self.used:
                self.used = self.present
                return self.present
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OperationTimeout(
                    f"{self.source}: no blank card presented within {wait_s:g} s; send the "
                    "same batch again to resume"
                )
            try:
                event = await self.sub.get_async(remaining)
            except OperationTimeout:
                continue
            if event.kind == "reader_detached":
                raise ReaderUnavailable(f"{self.source}: the reader was detached mid-batch")
            if event.kind == "card_present":
                payload = cast(ReaderEvent, event.payload)
                # a card whose UID did not answer is not there for the batch: wait on
                self.present = payload.uid.hex().upper() if payload.uid is not None else None
            elif event.kind == "card_removed":
                self.present = None
                self.used = None


def service(station: Station, api: ApiConfig) -> Service:
    return Service(
        pb.DESCRIPTOR.services_by_name["IssuingService"].full_name,
        frozenset({"issuer"}),
        IssuingServicer(station, api),
        pb_grpc.add_IssuingServiceServicer_to_server,
    )
