"""Shared set-up for the member card tests and benches: terminals over the in-process sim.

A *terminal* is one store PC: its own journal (SQLite file) and service, a simulated reader,
and the chain-wide keystore. Test keys are generated per test (never fixed master keys).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daemon.errors import CardDaemonError, UnknownCardFormat
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard.issuing import IssueSpec, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import (
    AdjustPoints,
    CancelTopUp,
    ChangeTier,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    Refund,
    RenewCard,
    ReplaceCard,
)
from daemon.membercard.reversals import points_back
from daemon.membercard.rules import BonusStep, Programme
from daemon.membercard.service import MemberCardService, OpResult
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.faults import FaultPlan
from sim.reader import SimReader

TODAY = dt.date(2026, 11, 23)
PROGRAMME = Programme(
    bonus_steps=(BonusStep(100000, 5000), BonusStep(1000000, 120000)), balance_cap=50_000_000
)


def uid_for(n: int) -> bytes:
    """A distinct, valid 4-byte NUID (byte 0 never 0x88)."""
    return bytes((0x04, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


@dataclass
class Terminal:
    """One store PC (journal + services) with one simulated reader."""

    keystore: Keystore
    journal: Journal
    reader: SimReader
    programme: Programme = PROGRAMME
    service: MemberCardService = field(init=False)
    issuer: Personaliser = field(init=False)

    def __post_init__(self) -> None:
        self.service = MemberCardService(
            self.keystore, self.journal, self.programme, today=lambda: TODAY
        )
        self.issuer = Personaliser(self.keystore, self.journal, self.programme, today=lambda: TODAY)

    def storage(self) -> StorageCard:
        return StorageCard(self.reader.connect())

    def close(self) -> None:
        self.journal.close()
        self.reader.close()


@contextmanager
def terminal(
    keystore: Keystore, path: Path, *, model: str = "acr1252u", latency: str | None = "none"
) -> Iterator[Terminal]:
    reader = SimReader(model=model, latency=latency)  # type: ignore[arg-type]
    term = Terminal(keystore, Journal(path), reader)
    try:
        yield term
    finally:
        term.close()


def issue(
    term: Terminal,
    uid: bytes,
    *,
    member_id: str = "8800001234",
    balance: int = 100_000,
    points: int = 50,
    tier: int = 2,
    valid_until: dt.date | None = dt.date(2028, 12, 31),
    request_id: str | None = None,
) -> SimCard:
    """A freshly issued member card, left in ``term``'s reader."""
    card = SimCard.blank(uid=uid)
    term.reader.insert(card)
    spec = IssueSpec(member_id, tier, valid_until, balance, points)
    with term.storage() as sc:
        term.issuer.issue(sc, IssueCard(spec, request_id=request_id or f"issue-{uid.hex()}"))
    return card


# --- tearing ----------------------------------------------------------------------------------

OPS = ("debit", "credit", "points", "issue", "replace", "erase")
FAULTS = (
    "remove_before",
    "tear_old",
    "tear_new",
    "tear_garbage",
    "tear_unstable",
    "lose_response",
    "remove_after",
)
"""Every fault of :class:`sim.faults.FaultPlan`; ``tear_unstable`` leaves the torn block reading
back differently on every READ until it is written again."""
CardView = tuple[int, int] | tuple[int, int, int, dt.date | None] | None
"""(balance, points[, tier, valid_until]); None: not a member card."""
REVERSAL_OPS = ("refund", "cancel_topup")
"""Reversals of an operation made on the card just before: a refund of part of a payment (after
an earlier partial refund when ``history`` is odd), a cancelled top-up."""
MEMBERSHIP_OPS = ("tier", "renew", "debit_v2")
"""Scenarios on the member header: a tier change on a v1 card (migrated to v2 by it), a
renewal and a debit on a card already in v2. Their views add tier and validity."""
Run = Callable[[Terminal, StorageCard, str], object]


@dataclass
class Scenario:
    """A card and a journal in the state just before ``op``, and the two allowed outcomes."""

    op: str
    uid: bytes
    memory: bytes
    seed: list[tuple[str, str, int, dict[str, object]]]
    old: CardView
    new: CardView
    run: Run
    look: Callable[[Terminal], CardView | str] = field(default_factory=lambda: view)


class TearLab:
    """Runs one operation with one fault at one APDU, then checks what any terminal sees."""

    def __init__(
        self, keystore: Keystore, workdir: Path | None = None, model: str = "acr1252u"
    ) -> None:
        self.keystore = keystore
        self.workdir = workdir
        self.model = model
        self._n = 0

    def _path(self, in_memory: bool = False) -> Path:
        self._n += 1
        if self.workdir is None or in_memory:
            return Path(":memory:")
        return self.workdir / f"j{self._n}.db"

    @contextmanager
    def terminal(
        self,
        seed: list[tuple[str, str, int, dict[str, object]]] | None = None,
        in_memory: bool = False,
    ) -> Iterator[Terminal]:
        with terminal(self.keystore, self._path(in_memory), model=self.model) as term:
            for uid, member, counter, snap in seed or []:
                term.journal.observe(uid, member, counter, snap)
                term.journal.bind_member(member, uid)
            yield term

    # --- scenarios ---------------------------------------------------------------------------

    def scenario(self, op: str, n: int, *, amount: int = 2345, history: int = 1) -> Scenario:
        """Pre-state for ``op`` on card number ``n``; ``history`` ops already on the card."""
        uid = uid_for(n)
        member = f"{880000000 + n}"
        with self.terminal(in_memory=True) as t:
            if op in ("issue", "replace"):
                old_uid = uid_for(n + 500_000)
                if op == "replace":
                    issue(t, old_uid, member_id=member, balance=70_000, points=30)
                    t.reader.remove()
                    seed = _seed(t, old_uid)
                else:
                    seed = []
                spec = IssueSpec(member, 1, dt.date(2029, 1, 31), 70_000, 30)
                old_hex = old_uid.hex().upper()

                def run_issue(term: Terminal, sc: StorageCard, rid: str) -> object:
                    if op == "replace":
                        return replace_card(
                            term.issuer, sc, ReplaceCard(old_uid=old_hex, request_id=rid)
                        )
                    return term.issuer.issue(sc, IssueCard(spec, request_id=rid))

                blank = SimCard.blank(uid=uid).memory
                return Scenario(op, uid, blank, seed, None, (70_000, 30), run_issue)
            card = issue(t, uid, member_id=member, balance=500_000, points=40)
            for i in range(history):
                with t.storage() as sc:
                    t.service.debit(sc, Debit(request_id=f"h{i}", amount=1000 + i))
            if op in ("renew", "debit_v2"):
                with t.storage() as sc:
                    t.service.change_tier(sc, ChangeTier("to-v2", 3))
            originals = _originals(t, op, amount, history)
            with t.storage() as sc:
                info = t.service.read(sc)
            seed = _seed(t, uid)
            memory = card.memory
        b, p = info.balance, info.points
        if op in REVERSAL_OPS:
            return _reversal(op, uid, memory, seed, (b, p), originals)
        earned = PROGRAMME.points_for(2, amount)
        runs: dict[str, tuple[CardView, Run]] = {
            "debit": ((b - amount, p + earned),
                      lambda tm, sc, r: tm.service.debit(sc, Debit(r, amount))),
            "credit": ((b + amount + PROGRAMME.bonus_for(amount), p),
                       lambda tm, sc, r: tm.service.credit(sc, Credit(r, amount))),
            "points": ((b, p - 7),
                       lambda tm, sc, r: tm.service.adjust_points(sc, AdjustPoints(r, -7))),
            "erase": (None, lambda tm, sc, r: tm.issuer.erase(sc, EraseCard(r, force=True))),
        }  # fmt: skip
        if op in MEMBERSHIP_OPS:
            tier, until = info.tier, info.valid_until
            grown = dt.date(until.year + 1, until.month, until.day) if until else None
            member_runs: dict[str, tuple[CardView, Run]] = {
                "tier": ((b, p, 3, until),
                         lambda tm, sc, r: tm.service.change_tier(sc, ChangeTier(r, 3))),
                "renew": ((b, p, tier, grown),
                          lambda tm, sc, r: tm.service.renew(sc, RenewCard(r))),
                "debit_v2": ((b - amount, p + PROGRAMME.points_for(tier, amount), tier, until),
                             lambda tm, sc, r: tm.service.debit(sc, Debit(r, amount))),
            }  # fmt: skip
            new, run = member_runs[op]
            return Scenario(op, uid, memory, seed, (b, p, tier, until), new, run, full_view)
        new, run = runs[op]
        return Scenario(op, uid, memory, seed, (b, p), new, run)

    # --- one trial ---------------------------------------------------------------------------

    def apdus(self, sc: Scenario) -> int:
        """How many APDUs ``sc.op`` sends when nothing goes wrong."""
        card = SimCard(sc.uid, memory=sc.memory)
        with self.terminal(sc.seed) as t:
            t.reader.insert(card)
            with t.storage() as st:
                before = t.reader.apdu_count
                sc.run(t, st, "dry-run")
                return t.reader.apdu_count - before

    def torn_card(self, sc: Scenario, k: int, fault: str, *, seed: int = 0) -> SimCard:
        """The card right after ``sc.op`` met ``fault`` at APDU ``k``, before any re-read."""
        card = SimCard(sc.uid, memory=sc.memory)
        with self.terminal(sc.seed, in_memory=True) as t:
            t.reader.insert(card)
            t.reader.faults.arm(seed)
            schedule_fault(t.reader.faults, k, fault)
            try:
                with t.storage() as st:
                    sc.run(t, st, f"{sc.op}-{k}-{fault}")
            except CardDaemonError:
                pass
        return card

    def trial(
        self,
        sc: Scenario,
        k: int,
        fault: str,
        second: tuple[int, str] | None = None,
        *,
        seed: int = 0,
    ) -> tuple[list[str], str, str]:
        """Returns (violations, how the same terminal resolved, how a fresh one did).

        ``second`` tears the same terminal's first re-read too (recovery interrupted); ``seed``
        drives the torn bytes (garbage, and what unstable cells read back each time)."""
        bad: list[str] = []
        rid = f"{sc.op}-{k}-{fault}"
        card = SimCard(sc.uid, memory=sc.memory)
        with self.terminal(sc.seed) as t:
            t.reader.insert(card)
            plan = t.reader.faults
            plan.arm(seed)
            schedule_fault(plan, k, fault)
            try:
                with t.storage() as st:
                    sc.run(t, st, rid)
            except CardDaemonError:
                pass
            plan.clear()
            if t.reader.card is None:
                t.reader.insert(card)
            # the very same torn card at a PC that never saw it: a deep copy keeps its
            # unstable cells unstable (an image of ``card.memory`` would freeze one sample)
            with self.terminal(in_memory=True) as fresh:
                fresh.reader.insert(copy.deepcopy(card))
                seen_fresh = sc.look(fresh)
            if second is not None:
                plan.arm()
                schedule_fault(plan, *second)
                sc.look(t)  # recovery interrupted: may be refused as "card removed"
                plan.clear()
                if t.reader.card is None:
                    t.reader.insert(card)
            seen_same = sc.look(t)
            for who, seen in (("fresh", seen_fresh), ("same", seen_same)):
                if seen not in (sc.old, sc.new):
                    bad.append(f"{rid}: {who} terminal sees {seen}, allowed {sc.old} / {sc.new}")
            if sc.op in ("debit", "credit", "points", *REVERSAL_OPS, *MEMBERSHIP_OPS):
                rec = t.journal.get(rid)
                want = RequestState.COMMITTED if seen_same == sc.new else RequestState.ABORTED
                if rec is None or rec.state is not want:
                    bad.append(f"{rid}: journal {rec and rec.state} but card shows {seen_same}")
            try:
                with t.storage() as st:
                    sc.run(t, st, rid)
            except CardDaemonError as exc:
                if not (sc.op in ("issue", "replace", "erase") and sc.look(t) in (sc.old, sc.new)
                        and exc.reason == "UNKNOWN_CARD_FORMAT"):  # fmt: skip
                    bad.append(f"{rid}: retry failed with {exc}")
                return bad, _label(seen_same, sc), _label(seen_fresh, sc)
            final = sc.look(t)
            if final != sc.new:
                bad.append(f"{rid}: after retry the card shows {final}, expected {sc.new}")
            rec = t.journal.get(rid)
            if rec is None or rec.state is not RequestState.COMMITTED:
                bad.append(f"{rid}: after retry the journal says {rec and rec.state}")
            return bad, _label(seen_same, sc), _label(seen_fresh, sc)


def _label(seen: CardView | str, sc: Scenario) -> str:
    """Old, new, or "neither" (a refusal or another state; a violation is recorded too)."""
    if seen == sc.new:
        return "new"
    return "old" if seen == sc.old else "neither"


def schedule_fault(plan: FaultPlan, k: int, fault: str) -> None:
    if fault == "remove_before":
        plan.remove_before(k)
    elif fault == "remove_after":
        plan.remove_after(k)
    elif fault == "lose_response":
        plan.lose_response(k)
    else:
        plan.tear(k, fault.removeprefix("tear_"))  # type: ignore[arg-type]


def _originals(t: Terminal, op: str, amount: int, history: int) -> list[OpResult]:
    """For a reversal: the operations it reverses (the last one is its original), made now."""
    made: list[OpResult] = []
    with t.storage() as sc:
        if op == "refund":
            made.append(t.service.debit(sc, Debit("sale", amount)))
            if history % 2 and amount > 1:
                made.append(t.service.refund(sc, Refund("refund-before", "sale", amount // 3)))
        elif op == "cancel_topup":
            made.append(t.service.credit(sc, Credit("top", amount)))
    return made


def _journalled(journal: Journal, results: list[OpResult]) -> None:
    """This terminal's journal holds ``results`` as committed (the PC that made them)."""
    for result in results:
        if journal.get(result.request_id) is not None:
            continue
        with journal.claim(result.request_id, result.op, {"amount": result.amount}):
            journal.bind_request(result.request_id, result.uid)
            if result.original_request_id:
                journal.link_reversal(result.request_id, result.original_request_id)
            journal.finish(result.request_id, RequestState.COMMITTED, result.to_outcome())


def _reversal(
    op: str,
    uid: bytes,
    memory: bytes,
    seed: list[tuple[str, str, int, dict[str, object]]],
    old: tuple[int, int],
    originals: list[OpResult],
) -> Scenario:
    b, p = old
    original = originals[0]
    if op == "refund":
        done = sum(r.amount for r in originals[1:])
        part = original.amount - done
        back = points_back(original.points_delta, original.amount, done, part)

        def run_refund(term: Terminal, sc: StorageCard, rid: str) -> object:
            _journalled(term.journal, originals)
            return term.service.refund(sc, Refund(rid, original.request_id, part))

        return Scenario(op, uid, memory, seed, old, (b + part, p - back), run_refund)

    def run_cancel(term: Terminal, sc: StorageCard, rid: str) -> object:
        _journalled(term.journal, originals)
        return term.service.cancel_topup(sc, CancelTopUp(rid, original.request_id))

    new = (b - original.amount - original.bonus, p)
    return Scenario(op, uid, memory, seed, old, new, run_cancel)


def _seed(t: Terminal, uid: bytes) -> list[tuple[str, str, int, dict[str, object]]]:
    seen = t.journal.last_seen(uid.hex().upper())
    assert seen is not None
    assert seen.member_id is not None
    return [(seen.uid, seen.member_id, seen.last_counter, seen.state)]


def view(term: Terminal) -> CardView | str:
    """What this terminal reads from the card in its reader (None: not a member card; a
    reason string: the read was refused, which after a tear is always a violation)."""
    try:
        with term.storage() as sc:
            info = term.service.read(sc)
    except UnknownCardFormat:
        return None
    except CardDaemonError as exc:
        return exc.reason
    return info.balance, info.points


def full_view(term: Terminal) -> CardView | str:
    """:func:`view` plus the card's tier and validity (what a membership change moves)."""
    try:
        with term.storage() as sc:
            info = term.service.read(sc)
    except UnknownCardFormat:
        return None
    except CardDaemonError as exc:
        return exc.reason
    return info.balance, info.points, info.tier, info.valid_until
