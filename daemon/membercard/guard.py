"""The checks every tap goes through before anyone may use what the card says.

Order: hotlist (before reading more than the UID), the card-alone evaluation (format, MAC,
purse consistency), this PC's journal (counter rollback, member ID bound to another UID), then
resolution of this UID's pending intents, then finishing an interrupted purse update. A fraud
finding is audited, the UID hotlisted when the programme says so, and the card refused: it is
never "repaired".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daemon.errors import CardBusy, CardDaemonError, CardHotlisted, CardRemoved, FraudDetected
from daemon.journal import CardSeen, Journal, RequestRecord, RequestState
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.layout import PURSE_SECTOR, SlotState, slot_checksum_ok, slot_for_counter
from daemon.membercard.purse import read_purse, store_purse
from daemon.membercard.rules import Programme
from daemon.membercard.session import CardSession, RawImage
from daemon.membercard.state import CardState, SlotStatus, evaluate
from daemon.readers.storage import StorageCard

__all__ = ["VALUE_OPS", "CardGuard", "Tap"]

logger = logging.getLogger(__name__)

VALUE_OPS = frozenset({"debit", "credit", "points", "membership", "refund", "cancel_topup"})


@dataclass(frozen=True, slots=True)
class Tap:
    session: CardSession
    state: CardState
    repaired: bool
    resolved: tuple[str, ...]
    #: the keys used so far (audited when the tap ends, or by :meth:`CardGuard.audit_key_uses`
    #: with the operation's outcome)
    key_uses: list[dict[str, Any]]


def mac_versions_checked(keystore: Keystore, image: RawImage) -> list[int]:
    """The MAC key versions :func:`evaluate` verifies a slot with (for the key-use audit)."""
    known = keystore.versions(KeyPurpose.MAC)
    return sorted({mac[0] for st, mac in image.slots if slot_checksum_ok(st, mac)} & set(known))


def pending_applied(record: RequestRecord, state: CardState) -> bool | None:
    """Did this pending value intent reach the card? ``None``: the card cannot tell any more."""
    assert record.before is not None
    assert record.after is not None
    before = record.before["state"]
    after = record.after["state"]
    visible = {state.current.counter: state.current}
    if state.previous is not None:
        visible[state.previous.counter] = state.previous
    written = visible.get(after["counter"])
    if written is not None:
        return bool(written.tag.hex() == after["tag"])
    cur = state.current
    if cur.counter == before["counter"] and cur.tag.hex() == before["tag"]:
        return False
    return None


def _valid(state: CardState) -> list[SlotState]:
    """Every valid record the card shows: the current one and a valid other slot."""
    other = state.other.state if state.other.status is SlotStatus.VALID else None
    return [state.current] + ([other] if other is not None else [])


class CardGuard:
    def __init__(self, keystore: Keystore, journal: Journal, programme: Programme) -> None:
        self.keystore = keystore
        self.journal = journal
        self.programme = programme

    @contextlib.contextmanager
    def tap(self, card: StorageCard, *, known: CardState | None = None) -> Iterator[Tap]:
        """Check the card on ``card`` (see the module) and yield what it says.

        ``known``: the state a read of this card on this very connection verified a moment
        ago (a card still lying on the reader). It stands in for reading the sectors again
        only while it cannot be stale: the card answers with its UID (the connection is still
        the same card), nothing of it is pending or half-written, and this PC's journal still
        holds that exact counter (no other reader moved it on). The journal checks and the
        hotlist run again every time; a recalled tap uses no key and changes nothing.
        """
        uses: list[dict[str, Any]] = []
        session = CardSession(
            card,
            self.keystore,
            key_use=lambda p, v, g: uses.append({"purpose": p, "version": v, "group": g}),
        )
        with contextlib.ExitStack() as stack:
            uid = session.uid.hex().upper()
            reason = self.journal.hotlist_reason(uid)
            if reason is not None:
                self.journal.audit("refused", uid=uid, detail={"reason": "CARD_HOTLISTED"})
                raise CardHotlisted(f"card {uid} is hotlisted ({reason})")
            try:  # held from this read to the outcome: one operation per UID at this PC
                stack.enter_context(self.journal.card_lock(uid))
            except CardBusy as exc:
                logger.warning("card %s refused: %s", uid, str(exc))
                self.journal.audit("card_busy", uid=uid, detail={"message": exc.message})
                raise
            stack.callback(self._audit_uses, uid, uses)
            seen = self.journal.last_seen(uid)
            if known is not None and self._still_true(known, uid, seen):
                yield Tap(session, self._check_journal(uid, known), False, (), uses)
                return
            image = session.read_image(slot_for_counter(seen.last_counter) if seen else None)
            for version in mac_versions_checked(self.keystore, image):
                session.note_key_use(KeyPurpose.MAC, version)
            try:
                state = evaluate(self.keystore, image)
            except FraudDetected as exc:
                self.fraud(uid, exc)
                raise
            self._check_journal(uid, state)
            resolved = self.resolve_pending(state)
            repaired = False
            if not state.mirror_ok:
                self.repair(session, state)
                repaired = True
            self.observe(state, state.current)
            yield Tap(session, state, repaired, resolved, uses)

    def _still_true(self, known: CardState, uid: str, seen: CardSeen | None) -> bool:
        """May ``known`` stand for the card answering ``uid`` (see :meth:`tap`)?"""
        return (
            known.uid_hex == uid
            and known.mirror_ok
            and seen is not None
            and seen.last_counter == known.current.counter
            and seen.member_id == known.header.member_id
            and not self.journal.pending_for_uid(uid)
        )

    def _check_journal(self, uid: str, state: CardState) -> CardState:
        """What this PC's journal knows against what the card says (read now, or recalled:
        what another reader or a resolved intent taught this PC since applies the same way):
        counter rollback, a replacement learnt, binding, history."""
        try:
            self.journal.check_counter(uid, state.current.counter)
            self.learn_replacement(state)
            self.journal.check_binding(state.header.member_id, uid)
            self.journal.check_history(uid, [(r.counter, r.tag.hex()) for r in _valid(state)])
        except FraudDetected as exc:
            self.fraud(uid, exc)
            raise
        return state

    def _audit_uses(self, uid: str, uses: list[dict[str, Any]]) -> None:
        if uses:
            self.journal.audit("key_use", uid=uid or None, detail={"uses": list(uses)})
            uses.clear()

    def audit_key_uses(self, tap: Tap) -> None:
        """Audit the keys the tap used so far now (in the caller's ``journal.together()``,
        with the outcome they led to) instead of when the tap ends."""
        self._audit_uses(tap.state.uid_hex, tap.key_uses)

    def learn_replacement(self, state: CardState) -> None:
        """A card whose (MAC'd) replacement generation is above that of the card this PC has
        bound to its member supersedes it: the old UID is hotlisted here, the member bound to
        this card, and that it was learnt from a card is audited. Anything else bound to
        another UID stays a clone (``check_binding``)."""
        member, uid = state.header.member_id, state.uid_hex
        bound = self.journal.bound_uid(member)
        if bound is None or bound == uid:
            return
        seen = self.journal.last_seen(bound)
        old_generation = int(seen.state.get("generation", 0)) if seen else 0
        if state.header.generation <= old_generation:
            return
        logger.info("card %s replaces %s for member %s (learnt from the card)", uid, bound, member)
        if self.journal.hotlist_reason(bound) is None:
            self.journal.hotlist(bound, f"replaced by {uid} (generation {state.header.generation})")
        self.journal.bind_member(member, uid)
        self.journal.audit(
            "replacement_learnt",
            uid=uid,
            member_id=member,
            detail={"old_uid": bound, "generation": state.header.generation,
                    "old_generation": old_generation, "source": "card"},
        )  # fmt: skip

    def fraud(self, uid: str, exc: FraudDetected) -> None:
        logger.warning("card %s refused: %s", uid, str(exc))
        self.journal.audit("fraud", uid=uid, detail={"reason": exc.reason, "message": exc.message})
        if self.programme.hotlist_on_fraud:
            self.journal.hotlist(uid, exc.reason)

    def observe(self, state: CardState, current: SlotState) -> None:
        """Remember the verified counter (rollback check) and bind the member to this UID,"""
        header = state.header
        snapshot = {
            "member_id": header.member_id,
            "tier": header.tier,
            "generation": header.generation,
            "valid_until": header.valid_until.isoformat() if header.valid_until else None,
            "balance": current.balance,
            "points": current.points,
            "counter": current.counter,
        }
        # and the committed records it now knows (another tag at one of their counters: a fork)
        known = _valid(state) if current == state.current else [current]
        self.journal.observe(
            state.uid_hex, header.member_id, current.counter, snapshot,
            [(r.counter, r.tag.hex()) for r in known],
        )  # fmt: skip
        if self.journal.bound_uid(header.member_id) is None:
            self.journal.bind_member(header.member_id, state.uid_hex)

    def resolve_pending(self, state: CardState) -> tuple[str, ...]:
        done: list[str] = []
        for record in self.journal.pending_for_uid(state.uid_hex):
            if record.op not in VALUE_OPS:
                continue
            applied = pending_applied(record, state)
            if applied is None:
                self.journal.audit(
                    "pending_undetermined",
                    uid=state.uid_hex,
                    request_id=record.request_id,
                    detail={"card_counter": state.current.counter},
                )
                continue
            if applied:
                assert record.after is not None
                outcome = dict(record.after["result"])
                outcome["mirror_pending"] = False
                self.journal.finish(record.request_id, RequestState.COMMITTED, outcome)
                # the value change happened: audited like one confirmed at once
                self.journal.audit(
                    "value_change",
                    uid=state.uid_hex,
                    member_id=state.header.member_id,
                    request_id=record.request_id,
                    detail=outcome,
                )
            else:
                assert record.after is not None
                after = record.after["state"]  # burned: this record must never appear
                self.journal.burn_record(state.uid_hex, int(after["counter"]), str(after["tag"]))
                self.journal.finish(
                    record.request_id, RequestState.ABORTED, {"error": "NOT_APPLIED"}
                )
            self.journal.audit(
                "pending_resolved",
                uid=state.uid_hex,
                request_id=record.request_id,
                detail={"applied": applied, "card_counter": state.current.counter},
            )
            done.append(record.request_id)
        return tuple(done)

    def repair(self, session: CardSession, state: CardState) -> None:
        """Finish an interrupted mirror update (a state only a tear can produce)."""
        r = state.current.balance
        self.journal.audit(
            "mirror_repair",
            uid=state.uid_hex,
            member_id=state.header.member_id,
            detail={"primary": state.primary, "backup": state.backup, "balance": r,
                    "counter": state.current.counter},
        )  # fmt: skip
        try:
            store_purse(session, r)
            echoed = read_purse(session)
        except CardDaemonError as exc:
            raise CardRemoved(
                f"card {state.uid_hex}: purse sector {PURSE_SECTOR} repair interrupted "
                f"({exc.reason}); the balance is unchanged, present the card again"
            ) from exc
        if echoed != (r, r):
            raise CardRemoved(
                f"card {state.uid_hex}: purse repair reads back {echoed}, expected {r}; "
                "present the card again"
            )
