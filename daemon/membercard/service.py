"""Member card operations on a presented card: read, debit, credit, points.

Every value change follows one protocol (docs/card-layout.md, "Transactions"):

1. claim the ``request_id`` (replay a committed outcome; resolve a pending one first);
2. read the card, refuse hotlisted/forged/rolled-back/cloned cards, resolve this UID's pending
   intents and finish an interrupted purse mirror update;
3. check expected UID and balance, validity, funds, caps;
4. journal the intent (fsync) with before/after state and the new record's random tag;
5. write the new record into the other slot (state, then MAC = commit point) and read it back;
6. update the purse mirror (primary, then backup) and read it back;
7. journal the outcome.

A ``check`` hook (the reader worker's deadline) runs between steps 3 and 4 only: an operation
stopped there provably wrote nothing. Any error after step 4 is ``WriteUnconfirmed`` and the
intent stays PENDING until the card is read again; then the tag tells whether the record made
it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from daemon.errors import (
    AmountOutOfRange,
    BalanceChanged,
    CardDaemonError,
    CardExpired,
    CardMismatch,
    FraudDetected,
    InsufficientBalance,
    RequestIdReused,
    WriteUnconfirmed,
)
from daemon.journal import Journal, RequestRecord, RequestState
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard import reversals
from daemon.membercard.guard import CardGuard, Tap
from daemon.membercard.layout import (
    FORMAT_V2,
    HEADER_BLOCK,
    MAX_AMOUNT,
    PURSE_SECTOR,
    Header,
    SlotState,
    mac_slot,
)
from daemon.membercard.purse import mirror_balance, read_purse
from daemon.membercard.requests import (
    ANY_CARD,
    AdjustPoints,
    CancelTopUp,
    ChangeTier,
    Credit,
    Debit,
    MembershipRequest,
    ReadCard,
    RecordRequest,
    Refund,
    RenewCard,
    value_params,
)
from daemon.membercard.rules import Programme
from daemon.membercard.state import CardState
from daemon.readers.storage import StorageCard

__all__ = ["CardInfo", "CardNotes", "MemberCardService", "MembershipResult", "OpResult"]

logger = logging.getLogger(__name__)

Compute = Callable[[CardState], tuple[SlotState, dict[str, Any]]]
ChainCheck = Callable[[str, int, str, str, int], None]
"""``(uid, counter, tag, op, amount)`` before a value change's intent: raises to refuse it."""
Check = Callable[[str], None]
"""Deadline hook (e.g. ``JobContext.check_deadline``): raises to stop before the journal intent,
the last point at which nothing of the request has been written; never called after it."""


@dataclass(frozen=True, slots=True)
class CardInfo:
    uid: str
    member_id: str
    tier: int
    tier_name: str
    discount: int  # per 10000 of the price, from the tier table (the POS prices the sale)
    valid_until: dt.date | None
    balance: int
    points: int
    counter: int
    status: str  # "active" or "expired"
    repaired: bool  # an interrupted purse update was finished during this read
    resolved: tuple[str, ...]  # request_ids whose unknown outcome this read settled


@dataclass(frozen=True, slots=True)
class OpResult:
    request_id: str
    op: str
    uid: str
    member_id: str
    amount: int
    bonus: int
    points_delta: int
    balance_before: int
    balance: int
    points_before: int
    points: int
    counter: int
    mirror_pending: bool = False
    original_request_id: str = ""  # a refund or cancelled top-up: the operation it reverses
    replayed: bool = False

    def to_outcome(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("replayed")
        return out

    @classmethod
    def from_outcome(cls, outcome: dict[str, Any]) -> OpResult:
        return cls(**outcome, replayed=True)


@dataclass(frozen=True, slots=True)
class MembershipResult:
    """A tier change or renewal: what was decided and what the card holds now."""

    request_id: str
    op: str  # "tier" or "renew"
    uid: str
    member_id: str
    decision: str  # "upgrade", "downgrade", "unchanged", "set"; "renew", "shorten", "unchanged"
    rule: str  # what decided: "requested" or the rule applied ("upgrade_points", "renew_months")
    tier_before: int
    tier: int
    valid_until_before: str | None  # ISO date, None = no expiry
    valid_until: str | None
    balance: int
    points: int
    counter: int
    format_version: int
    migrated: bool  # this write moved the card from format v1 to v2
    replayed: bool = False

    def to_outcome(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("replayed")
        return out

    @classmethod
    def from_outcome(cls, outcome: dict[str, Any]) -> MembershipResult:
        known = {k: v for k, v in outcome.items() if k != "mirror_pending"}
        return cls(**known, replayed=True)


class CardNotes(Protocol):
    """A reader's memory of the card lying on it (kept by the reader worker, per connection)."""

    def recall(self, max_age_s: float) -> CardState | None:
        """The state a read verified at most ``max_age_s`` ago on this connection, else None."""

    def remember(self, state: CardState) -> None:
        """Note the state this read verified (the recalled one, or a full read's)."""


class MemberCardService:
    """Stateless apart from its journal; one instance per store PC."""

    def __init__(
        self,
        keystore: Keystore,
        journal: Journal,
        programme: Programme | None = None,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        new_tag: Callable[[], bytes] = lambda: secrets.token_bytes(4),
    ) -> None:
        self.keystore = keystore
        self.journal = journal
        self.programme = programme or Programme()
        self.guard = CardGuard(keystore, journal, self.programme)
        self._today = today
        self._new_tag = new_tag
        self._swept = -math.inf
        #: the chain ledger's online check (daemon/ledger/online.py), set by the station
        self.chain_check: ChainCheck | None = None
        self.sweep()

    def sweep(self) -> tuple[str, ...]:
        """Close requests a dead process left ``CLAIMED`` (``abandoned_claim_age_s``; audited).
        Run when the service starts and then at most once per that age, before a value
        operation claims its id."""
        self._swept = time.monotonic()
        return self.journal.close_abandoned(self.programme.abandoned_claim_age_s)

    # --- read ---------------------------------------------------------------------------------

    def read(
        self, card: StorageCard, request: ReadCard = ANY_CARD, *, notes: CardNotes | None = None
    ) -> CardInfo:
        """What the card says, checked (:meth:`CardGuard.tap`).

        ``notes``: where this reader keeps what the last read saw of the card still lying on
        it (the reader worker's, see :func:`~daemon.membercard.jobs.card_job`). Within
        ``[membercard] reread_after_s`` of a full read, a card that answers with the same UID
        is not read again: POS software that asks again and again while the customer's card
        lies there costs one APDU a time, not nine, and uses no key."""
        noted = notes.recall(self.programme.reread_after_s) if notes is not None else None
        with self.guard.tap(card, known=noted) as tap:
            state = tap.state
            self._check_uid(state, request.expected_uid)
            known = state.header.tier < len(self.programme.tiers)
            tier = self.programme.tiers[state.header.tier] if known else None
            expired = self._expired(state)
            if notes is not None and not tap.repaired:
                notes.remember(state)
            return CardInfo(
                uid=state.uid_hex,
                member_id=state.header.member_id,
                tier=state.header.tier,
                tier_name=tier.name if tier else f"tier {state.header.tier}",
                discount=tier.discount if tier else 10000,
                valid_until=state.header.valid_until,
                balance=state.current.balance,
                points=state.current.points,
                counter=state.current.counter,
                status="expired" if expired else "active",
                repaired=tap.repaired,
                resolved=tap.resolved,
            )

    # --- value operations ---------------------------------------------------------------------

    def debit(self, card: StorageCard, request: Debit, *, check: Check | None = None) -> OpResult:
        """Pay from stored value; earn points by tier (or the request's ``points``)."""
        amount = request.amount

        def compute(state: CardState) -> tuple[SlotState, dict[str, int]]:
            cur = state.current
            if cur.balance < amount:
                raise InsufficientBalance(
                    f"card {state.uid_hex}: balance {cur.balance} fen < amount {amount} fen"
                )
            earned = request.points if request.points is not None else (
                self.programme.points_for(state.header.tier, amount) if request.earn_points
                else 0
            )  # fmt: skip
            return self._next(state, cur.balance - amount, cur.points + earned), {
                "amount": amount, "bonus": 0, "points_delta": earned,
            }  # fmt: skip

        out = self._mutate(card, request, "debit", compute, request.expected_balance, check)
        assert isinstance(out, OpResult)
        return out

    def credit(self, card: StorageCard, request: Credit, *, check: Check | None = None) -> OpResult:
        """Top up plus the bonus of the configured step (or the request's ``bonus``)."""
        amount = request.amount
        extra = self.programme.bonus_for(amount) if request.bonus is None else request.bonus

        def compute(state: CardState) -> tuple[SlotState, dict[str, int]]:
            cur = state.current
            total = cur.balance + amount + extra
            cap = self.programme.balance_cap
            if total > cap:
                raise AmountOutOfRange(
                    "amount", f"balance would be {total} fen, above the card cap of {cap} fen"
                )
            return self._next(state, total, cur.points), {
                "amount": amount, "bonus": extra, "points_delta": 0,
            }  # fmt: skip

        out = self._mutate(card, request, "credit", compute, request.expected_balance, check)
        assert isinstance(out, OpResult)
        return out

    def adjust_points(
        self, card: StorageCard, request: AdjustPoints, *, check: Check | None = None
    ) -> OpResult:
        """Add (``delta`` > 0) or redeem (``delta`` < 0) points."""
        delta = request.delta

        def compute(state: CardState) -> tuple[SlotState, dict[str, int]]:
            cur = state.current
            if cur.points + delta < 0:
                raise InsufficientBalance(
                    f"card {state.uid_hex}: {cur.points} points, cannot redeem {-delta}"
                )
            return self._next(state, cur.balance, cur.points + delta), {
                "amount": 0, "bonus": 0, "points_delta": delta,
            }  # fmt: skip

        out = self._mutate(card, request, "points", compute, None, check)
        assert isinstance(out, OpResult)
        return out

    def refund(self, card: StorageCard, request: Refund, *, check: Check | None = None) -> OpResult:
        """Give back (part of) a payment on the card that paid (:mod:`.reversals`)."""
        return reversals.refund(self, card, request, check=check)

    def cancel_topup(
        self, card: StorageCard, request: CancelTopUp, *, check: Check | None = None
    ) -> OpResult:
        """Take a top-up and its bonus back off its card (:mod:`.reversals`)."""
        return reversals.cancel_topup(self, card, request, check=check)

    # --- membership: tier and validity -------------------------------------------------------

    def change_tier(
        self, card: StorageCard, request: ChangeTier, *, check: Check | None = None
    ) -> MembershipResult:
        """Upgrade or downgrade the tier (``request.tier``, or the configured rules applied to
        the card's points): a record write like any other, balance and points unchanged."""

        def decide(state: CardState) -> tuple[Header, str, str]:
            head = state.header
            if request.tier is not None:
                self.programme.tier(request.tier)
                tier, rule = request.tier, "requested"
            else:
                tier, rule = self.programme.tier_by_rules(head.tier, state.current.points)
            decision = "unchanged" if tier == head.tier else (
                "upgrade" if tier > head.tier else "downgrade"
            )  # fmt: skip
            return replace(head, tier=tier), decision, rule

        return self._membership(card, request, "tier", decide, check)

    def renew(
        self, card: StorageCard, request: RenewCard, *, check: Check | None = None
    ) -> MembershipResult:
        """Renew or shorten validity (``request.valid_until`` / ``no_expiry``, or
        ``renew_months`` from the later of today and the current expiry)."""

        def decide(state: CardState) -> tuple[Header, str, str]:
            head = state.header
            until: dt.date | None
            if request.no_expiry:
                until, rule = None, "requested"
            elif request.valid_until is not None:
                until, rule = request.valid_until, "requested"
            else:
                start = max(self._today(), head.valid_until or self._today())
                until, rule = _add_months(start, self.programme.renew_months), "renew_months"
            old = head.valid_until
            if until == old:
                decision = "unchanged"
            elif until is None or (old is not None and until > old):
                decision = "renew"
            else:
                decision = "shorten"
            return replace(head, valid_until=until), decision, rule

        return self._membership(card, request, "renew", decide, check)

    def _membership(
        self,
        card: StorageCard,
        request: MembershipRequest,
        kind: str,
        decide: Callable[[CardState], tuple[Header, str, str]],
        check: Check | None,
    ) -> MembershipResult:
        def compute(state: CardState) -> tuple[SlotState, dict[str, Any]]:
            header, decision, rule = decide(state)
            header = replace(header, version=FORMAT_V2)
            cur = state.current
            new = self._next(state, cur.balance, cur.points)
            before = state.header
            result = MembershipResult(
                request_id=request.request_id, op=kind, uid=state.uid_hex,
                member_id=before.member_id, decision=decision, rule=rule,
                tier_before=before.tier, tier=header.tier,
                valid_until_before=_iso(before.valid_until), valid_until=_iso(header.valid_until),
                balance=new.balance, points=new.points, counter=new.counter,
                format_version=FORMAT_V2, migrated=not (state.block14_v2 and state.current_v2),
            )  # fmt: skip
            return new, {"header": header, "result": result}

        out = self._mutate(card, request, "membership", compute, None, check)
        assert isinstance(out, MembershipResult)
        return out

    # --- the protocol -------------------------------------------------------------------------

    def _next(self, state: CardState, balance: int, points: int) -> SlotState:
        if points > MAX_AMOUNT:
            raise AmountOutOfRange("points", f"{points} points would overflow the card")
        if state.current.counter >= MAX_AMOUNT:
            raise AmountOutOfRange("counter", f"card {state.uid_hex} counter exhausted")
        return SlotState(state.current.counter + 1, balance, points, self._new_tag())

    def _expired(self, state: CardState) -> bool:
        until = state.header.valid_until
        return until is not None and self._today() > until

    @staticmethod
    def _check_uid(state: CardState, expected_uid: str | None) -> None:
        if expected_uid is not None and expected_uid != state.uid_hex:
            raise CardMismatch(f"expected card {expected_uid}, presented {state.uid_hex}")

    def _check_bound(self, record: RequestRecord, state: CardState) -> None:
        """The first card a request meets (past its ``expected_uid``) is its card: the same
        request_id on another card is a reuse, never a replay of the first card's outcome."""
        uid = state.uid_hex
        if record.uid is None:
            self.journal.bind_request(record.request_id, uid)
            return
        if record.uid != uid:
            self.journal.audit(
                "request_id_reused",
                uid=uid,
                request_id=record.request_id,
                detail={"bound_uid": record.uid, "state": record.state.value},
            )
            raise RequestIdReused(
                f"request_id {record.request_id!r} belongs to card {record.uid}, presented "
                f"{uid}; nothing written (use a new request_id for this card)"
            )

    def _mutate(
        self,
        card: StorageCard,
        request: RecordRequest,
        op: str,
        compute: Compute,
        expected_balance: int | None,
        check: Check | None = None,
    ) -> OpResult | MembershipResult:
        request_id, expected_uid = request.request_id, request.expected_uid
        self.journal.check_space()  # a full disk: refused before anything, the claim included
        if time.monotonic() - self._swept >= self.programme.abandoned_claim_age_s:
            self.sweep()
        with self.journal.claim(request_id, op, value_params(request)):
            intent = False
            try:
                # even a replay reads the card: a request is bound to the card it ran on
                with self.guard.tap(card) as tap:
                    state = tap.state
                    record = self.journal.get(request_id)
                    assert record is not None
                    if record.state is RequestState.PENDING:
                        if record.uid != state.uid_hex:
                            raise CardMismatch(
                                f"request {request_id} is unresolved on card {record.uid}; "
                                f"present that card, not {state.uid_hex}"
                            )
                        raise WriteUnconfirmed(
                            f"request {request_id}: the card no longer shows whether it was "
                            "applied; left for manual review"
                        )
                    self._check_uid(state, expected_uid)
                    self._check_bound(record, state)
                    if record.state is RequestState.COMMITTED:
                        assert record.outcome is not None
                        if op == "membership":
                            return MembershipResult.from_outcome(record.outcome)
                        return OpResult.from_outcome(record.outcome)
                    if self._expired(state) and op != "membership":
                        raise CardExpired(
                            f"card {state.uid_hex} expired on {state.header.valid_until}"
                        )
                    if expected_balance is not None and expected_balance != state.current.balance:
                        raise BalanceChanged(
                            f"card {state.uid_hex}: balance is {state.current.balance} fen, "
                            f"caller expected {expected_balance}; read the card again"
                        )
                    new, figures = compute(state)
                    header: Header | None = figures.get("header")
                    result: OpResult | MembershipResult
                    if isinstance(figures.get("result"), MembershipResult):
                        result = figures["result"]
                    else:
                        result = OpResult(
                            request_id=request_id, op=op, uid=state.uid_hex,
                            member_id=state.header.member_id,
                            balance_before=state.current.balance, balance=new.balance,
                            points_before=state.current.points, points=new.points,
                            counter=new.counter, amount=figures["amount"],
                            bonus=figures["bonus"], points_delta=figures["points_delta"],
                            original_request_id=figures.get("original_request_id", ""),
                        )  # fmt: skip
                    if self.chain_check is not None:  # the chain ledger, before money moves
                        try:
                            self.chain_check(state.uid_hex, state.current.counter,
                                             state.current.tag.hex(), op,
                                             int(figures.get("amount", 0)))  # fmt: skip
                        except FraudDetected as exc:
                            self.guard.fraud(state.uid_hex, exc)
                            raise
                    if check is not None:  # last point with nothing of this request written
                        check(f"{op} {request_id} (card read, nothing written yet)")
                    self.journal.record_intent(
                        request_id,
                        state.uid_hex,
                        {"state": state.current.as_dict()},
                        {"state": new.as_dict(), "result": result.to_outcome()},
                        expect_counter=state.current.counter,
                    )
                    intent = True
                    return self._commit(tap, state, new, result, header)
            except BaseException as exc:
                now = self.journal.get(request_id)
                if not intent and now is not None and now.state is RequestState.CLAIMED:
                    reason = exc.reason if isinstance(exc, CardDaemonError) else type(exc).__name__
                    self.journal.finish(request_id, RequestState.ABORTED, {"error": reason})
                raise

    def _commit(
        self,
        tap: Tap,
        state: CardState,
        new: SlotState,
        result: OpResult | MembershipResult,
        header: Header | None = None,
    ) -> OpResult | MembershipResult:
        """Write the record ``new`` (and, v2, its own header: ``header`` or the current one).

        v1 card, no header change: state + MAC over block 14 (format v1, as ever). Otherwise the
        record is v2: on a card whose block 14 does not say v2 yet (migration), first a copy of
        the current header into the target slot's header block (so a torn block 14 is recovered
        from the card: the current record's v1 MAC authenticates the copy), then block 14 with
        version 02 and key B (from here v1 terminals refuse the card, writing nothing), then the
        record's own header, state, and MAC - the commit point, as for every record."""
        session = tap.session
        state_bytes = new.encode()
        v2 = header is not None or state.version == FORMAT_V2
        own: bytes | None = None
        if v2:
            head = replace(header or state.header, version=FORMAT_V2)
            own = head.encode()
            mac = mac_slot(self.keystore, state.uid, own, new, FORMAT_V2)
        else:
            mac = mac_slot(self.keystore, state.uid, state.header_raw, new)
        session.note_key_use(KeyPurpose.MAC, mac[0])
        try:
            # never skipped on what a read shows: a block left unstable by a tear can read
            # exactly right once, and a record MAC'd over it would then flicker
            # until a v2 record is current, the migration is (re)done: block 14 read as 02 once
            # may be a block left unstable by a torn migration (it then reads 01 by turns)
            if v2 and not (state.block14_v2 and state.current_v2):
                copy = replace(state.header, version=FORMAT_V2).encode()
                session.write_slot_header(new.slot, copy)
                session.write(PURSE_SECTOR, HEADER_BLOCK, copy, "B")
            session.write_slot(new.slot, state_bytes, mac, own)
            echoed = session.read_slot(new.slot, with_header=v2)
        except WriteUnconfirmed:
            raise
        except CardDaemonError as exc:
            raise WriteUnconfirmed(
                f"card {state.uid_hex}: record write for {result.request_id} not confirmed "
                f"({exc.reason}); present the card again"
            ) from exc
        expected = (state_bytes, mac) + (
            (replace(header or state.header, version=FORMAT_V2).encode(),) if v2 else ()
        )
        if echoed != expected:
            raise WriteUnconfirmed(
                f"card {state.uid_hex}: record slot {new.slot} reads back different from what "
                "was written; present the card again"
            )
        # the journal's snapshot (a replacement card is issued from it) with the new header
        seen = replace(state, header=replace(header, version=FORMAT_V2)) if header else state
        if isinstance(result, MembershipResult):
            with self.journal.together():  # the card state, the outcome, its audit rows
                self.guard.observe(seen, new)
                self.journal.finish(result.request_id, RequestState.COMMITTED, result.to_outcome())
                self.guard.audit_key_uses(tap)
                self.journal.audit(
                    "membership_change", uid=state.uid_hex, member_id=state.header.member_id,
                    request_id=result.request_id, detail=result.to_outcome(),
                )  # fmt: skip
            return result
        assert isinstance(result, OpResult)
        pending = False
        if new.balance != state.current.balance:
            try:
                mirror_balance(session, state.current.balance, new.balance)
                pending = read_purse(session) != (new.balance, new.balance)
            except CardDaemonError as exc:
                logger.info("card %s: purse mirror left behind (%s)", state.uid_hex, exc.reason)
                pending = True
        result = replace(result, mirror_pending=pending)
        with self.journal.together():  # the card state, the outcome, its audit rows
            self.guard.observe(seen, new)
            self.journal.finish(result.request_id, RequestState.COMMITTED, result.to_outcome())
            self.guard.audit_key_uses(tap)
            self.journal.audit(
                "value_change",
                uid=state.uid_hex,
                member_id=state.header.member_id,
                request_id=result.request_id,
                detail=result.to_outcome(),
            )
        return result


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _add_months(start: dt.date, months: int) -> dt.date:
    """``start`` plus ``months`` calendar months (the 31st becomes the month's last day)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for day in range(start.day, 27, -1):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    return dt.date(year, month, min(start.day, 28))
