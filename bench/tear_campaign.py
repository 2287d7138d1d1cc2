"""Randomized tear campaign over every member card operation on the in-process simulator.

Each trial takes a prepared card + journal just before one operation (debit, credit, points,
refund, cancelled top-up, tier change, renewal, issue, replace, erase; varied history, amounts
and slot parity), picks a random APDU index of that operation (reader models ACR1252U, ACR122U,
OMNIKEY, generic) and a random fault (card removed before it; its write torn leaving old / new /
garbage / unstable cells that read back differently on every READ; its response lost; card
removed after it) with a random fault seed (the garbage bytes and the unstable cells' samples),
runs the operation, then presents the card at the same terminal (same journal) and, as a copy
that keeps its unstable cells, at a fresh terminal with no journal. A violation is any state
other than exactly the old or the new (balance, points, tier, validity), a fraud alarm, a journal
that disagrees with the card, or a same-request_id retry that does not end in the new state
exactly once. A quarter of the trials also tear the same terminal's first re-read (the recovery
itself), which must then resolve on the next read.

A share of the record-write trials (``CLONE``: debit, credit, points, refund, cancel, tier, renew)
also lays a clone of the card (a magic card: same UID, same image) on the PC's second reader and
debits it at a random moment while the torn operation runs. Then a violation is: both committed (one
counter spent twice), a request the journal calls committed that its card does not show, or the real
card in any state but old or new at a fresh terminal. When the card left mid-write and the clone is
read first, the clone proves "not applied" for a write that did land on the real card: the journal
closes it ABORTED and burns its tag (the real card is then refused ``HISTORY_FORKED`` at this PC);
such trials are counted as ``clone_misresolved`` (a clone fools the one PC that holds the journal;
the chain ledger closes it), not hidden.

Every terminal is a :class:`~daemon.station.Station` built from ``bench/tear_campaign.toml``
(its reader's match and dialect changed per model), and every operation and re-read is a member
card request on the reader's worker (``station.card``), as the API will run it. A trial starts
two stations (the same terminal, then the fresh one) with empty journals: the config is loaded
and validated once per store folder, and each station's journal file is removed when it stops.
Measured (2 shared cores): 10,000 trials took ~125 s this way, ~80 s with hand-wired
terminals; ~390 s since each terminal has a second reader, every trial waits for the
monitor's UID read before arming its fault and for each job's clean-up (closing the member
sectors after the result). One long-lived station per model with its journal reset between
trials would be faster but would no longer be "a terminal that never saw the card". The store
folders live on ``/dev/shm`` where there is one (the journals' fsyncs are the tests'
business, not this one's).

A refund or a cancelled top-up needs its original in the journal: its scenario makes the payment
(or top-up) at the same terminal, and each trial's same terminal starts from a copy of that
journal file (a refund torn at any APDU, of the whole payment or of a part after an earlier
partial refund; a top-up with or without its bonus step). ``--ops refund,cancel_topup`` runs
only those.

A tier change (``tier``: up or down to a named tier) or a renewal (``renew``: a later or an
earlier date, no expiry, or ``renew_months``) is a record write that also carries the member
header; on these cards (issued v1) it is the card's first v2 write, so the migration's extra
writes are torn too. ``--ops tier,renew`` runs only those.

Last line: ``tear_campaign: trials=… violations=… resolved_same=… resolved_fresh=…`` where
``resolved_*`` counts trials that terminal settled to a definite allowed state.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import datetime as dt
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.config import DaemonConfig, load_config
from daemon.errors import CardDaemonError, UnknownCardFormat
from daemon.journal import RequestState
from daemon.membercard.requests import (
    AdjustPoints,
    CancelTopUp,
    CardRequest,
    ChangeTier,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    IssueSpec,
    ReadCard,
    Refund,
    RenewCard,
    ReplaceCard,
)
from daemon.membercard.reversals import points_back
from daemon.membercard.service import OpResult
from daemon.station import Station
from demo.folder import make_store_folder
from sim.backend import SimBackend
from sim.card import SimCard
from sim.faults import FaultPlan
from sim.reader import SimReader

SCENARIOS_PER_OP = 8
MODELS = ("acr1252u", "acr1252u", "acr122u", "omnikey5x21", "generic")
SECOND = 0.25  # share of trials whose recovery (the same terminal's re-read) is torn as well
CLONE = 0.2  # share of value-op trials with a clone debited on the second reader meanwhile
CLONE_DELAY_S = 0.004  # the clone's job is submitted 0..this after the torn operation's
CLONE_SPEND = 100  # fen the clone pays

CONFIG = Path(__file__).resolve().with_name("tear_campaign.toml")
READER = "front"
CLONE_READER = "back"
VALUE_OPS = ("debit", "credit", "points", "refund", "cancel_topup")
RECORD_OPS = (*VALUE_OPS, "tier", "renew")  # journalled record writes (tear-safe, one commit)
TODAY = dt.date(2026, 11, 23)
#: the config's reader table, and what it becomes for each simulated model
ACR1252U_READER = 'match = "ACS ACR1252*PICC*"\ndialect = "acr1252u"'
READER_TABLES = {
    "acr1252u": ACR1252U_READER,
    "acr122u": 'match = "ACS ACR122U*"\ndialect = "acr122u"',
    "omnikey5x21": 'match = "HID Global OMNIKEY*"\ndialect = "omnikey"',
    "generic": 'match = "Generic PC/SC*"\ndialect = "generic"',
}
OPS = ("debit", "credit", "points", "refund", "cancel_topup", "tier", "renew", "issue", "replace",
       "erase")  # fmt: skip
FAULTS = (
    "remove_before",
    "tear_old",
    "tear_new",
    "tear_garbage",
    "tear_unstable",
    "lose_response",
    "remove_after",
)
CardView = tuple[int, int, int, str] | None
"""(balance, points, tier, valid_until ISO or ""), or None: not a member card."""
Seed = list[tuple[str, str, int, dict[str, object]]]


def uid_for(n: int) -> bytes:
    """A distinct, valid 4-byte NUID (byte 0 never 0x88)."""
    return bytes((0x04, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


@dataclass
class Scenario:
    """A card and a journal in the state just before ``op``, and the two allowed outcomes."""

    op: str
    uid: bytes
    memory: bytes
    seed: Seed
    old: CardView
    new: CardView
    request: Callable[[str], CardRequest]  # request_id -> the operation
    journal: bytes | None = None  # the same terminal's journal file (a reversal's original)


def sim_reader(station: Station, reader: str = READER) -> SimReader:
    backend = station.backend
    assert isinstance(backend, SimBackend), "the campaign runs on the simulated readers"
    return backend.reader(station.reader(reader).name)


def present(
    station: Station, card: SimCard, reader: str = READER, *, faults_next: bool = False
) -> None:
    """Lay ``card`` on the reader. With ``faults_next``, wait until the reader monitor has seen
    it: the monitor reads the UID of each card that arrives, and that GET DATA must not be the
    APDU a fault armed next hits. The worker's next job opens a fresh connection: as the
    monitor says when it sees the card arrive, said here at once, not at its next poll."""
    sim = sim_reader(station, reader)
    with station.hub.subscribe(sources=f"readers/{reader}", kinds="card_present") as arrived:
        if sim.card is not None:
            sim.remove()
        sim.insert(card)
        if faults_next:
            arrived.wait_for(lambda e: not e.snapshot, timeout_s=10)
    pool = station.pool
    assert pool is not None
    pool.card_removed(station.reader(reader).name)


def run(station: Station, request: CardRequest, reader: str = READER) -> object:
    """``station.card`` for any request (its overloads name one request type each)."""
    return station.run(reader, station.card_job(reader, request))


def settle(station: Station, reader: str = READER) -> None:
    """Wait until the reader's worker is idle: a job's clean-up (closing the member sectors)
    runs after its caller has the result, and faults armed next must meet the next job."""
    pool = station.pool
    assert pool is not None
    pool.worker(station.reader(reader).name).wait_idle(30.0)


def card(station: Station, request: CardRequest, reader: str = READER) -> object:
    """``station.card`` on ``reader``, returning once the worker is idle again."""
    try:
        return run(station, request, reader)
    finally:
        settle(station, reader)


def view(station: Station) -> CardView | str:
    """What this terminal reads from the card on its reader (None: not a member card; a
    reason string: the read was refused, which after a tear is always a violation)."""
    try:
        info = station.card(READER, ReadCard())
    except UnknownCardFormat:
        return None
    except CardDaemonError as exc:
        return exc.reason
    finally:
        settle(station)
    return _view(info.balance, info.points, info.tier, info.valid_until)


def _view(balance: int, points: int, tier: int, until: dt.date | None) -> CardView:
    return balance, points, tier, until.isoformat() if until else ""


def schedule_fault(plan: FaultPlan, k: int, fault: str) -> None:
    if fault == "remove_before":
        plan.remove_before(k)
    elif fault == "remove_after":
        plan.remove_after(k)
    elif fault == "lose_response":
        plan.lose_response(k)
    else:
        plan.tear(k, fault.removeprefix("tear_"))  # type: ignore[arg-type]


def _label(seen: CardView | str, sc: Scenario) -> str:
    """Old, new, or "neither" (a refusal or another state; a violation is recorded too)."""
    if seen == sc.new:
        return "new"
    return "old" if seen == sc.old else "neither"


class Store:
    """One store PC's config (loaded and validated once); each :meth:`terminal` is a fresh
    station on it with an empty journal."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config

    @contextlib.contextmanager
    def terminal(
        self, seed: Seed | None = None, *, journal: bytes | None = None,
        keep: list[bytes] | None = None,
    ) -> Iterator[Station]:  # fmt: skip
        """``journal``: start from this journal file; ``keep``: append the file once stopped."""
        journal_path = self.config.daemon.journal_path
        if journal is not None:
            journal_path.parent.mkdir(parents=True, exist_ok=True)
            journal_path.write_bytes(journal)
        station = Station.from_config(self.config, today=lambda: TODAY)
        try:
            with station.hub.subscribe(sources=f"readers/{READER}", kinds="reader_attached") as a:
                station.start()
                a.wait_for(lambda e: True, timeout_s=10)
            station.wait_for_reader(READER)  # its worker: the pool hears of it just after
            station.wait_for_reader(CLONE_READER)
            opened = station.journal
            assert opened is not None
            for uid, member, counter, snap in seed or []:
                opened.observe(uid, member, counter, snap)
                opened.bind_member(member, uid)
            yield station
        finally:
            station.close()
            if keep is not None:
                keep.append(journal_path.read_bytes())  # closed: the WAL is checkpointed
            for suffix in ("", "-wal", "-shm"):
                Path(f"{journal_path}{suffix}").unlink(missing_ok=True)


class TearLab:
    """Runs one operation with one fault at one APDU, then checks what any terminal sees."""

    def __init__(self, same: Store, fresh: Store) -> None:
        self.same = same
        self.fresh = fresh
        self.programme = same.config.membercard

    # --- scenarios ---------------------------------------------------------------------------

    def scenario(self, op: str, n: int, *, amount: int = 2345, history: int = 1) -> Scenario:
        """Pre-state for ``op`` on card number ``n``; ``history`` ops already on the card."""
        uid = uid_for(n)
        member = f"{880000000 + n}"
        kept: list[bytes] = []
        with self.same.terminal(keep=kept) as t:
            if op in ("issue", "replace"):
                old_uid = uid_for(n + 500_000)
                seed: Seed = []
                if op == "replace":
                    self._issue(t, old_uid, member, balance=70_000, points=30)
                    sim_reader(t).remove()
                    seed = self._seed(t, old_uid)
                spec = IssueSpec(member, 1, dt.date(2029, 1, 31), 70_000, 30)
                old_hex = old_uid.hex().upper()
                # a replacement carries the old card's tier and validity (``_issue``'s)
                made = (2, dt.date(2028, 12, 31)) if op == "replace" else (1, spec.valid_until)

                def issuing(rid: str) -> CardRequest:
                    if op == "replace":
                        return ReplaceCard(old_uid=old_hex, request_id=rid)
                    return IssueCard(spec, request_id=rid)

                blank = SimCard.blank(uid=uid).memory
                return Scenario(op, uid, blank, seed, None, _view(70_000, 30, *made), issuing)
            issued = self._issue(t, uid, member, balance=500_000, points=40)
            for i in range(history):
                card(t, Debit(request_id=f"h{i}", amount=1000 + i))
            reversal = self._original(t, op, amount, history)
            info = t.card(READER, ReadCard())
            settle(t)
            seed = self._seed(t, uid)
            memory = issued.memory
        b, p, tier, until = info.balance, info.points, info.tier, info.valid_until
        rules = self.programme
        earned = rules.points_for(2, amount)
        new_tier = (0, 1, 3, 4)[n % 4]  # from 金卡 (2): down or up
        renewal = _renewal(n, until)
        runs: dict[str, tuple[CardView, Callable[[str], CardRequest]]] = {
            "debit": (_view(b - amount, p + earned, tier, until), lambda r: Debit(r, amount)),
            "credit": (
                _view(b + amount + rules.bonus_for(amount), p, tier, until),
                lambda r: Credit(r, amount),
            ),
            "points": (_view(b, p - 7, tier, until), lambda r: AdjustPoints(r, -7)),
            "tier": (_view(b, p, new_tier, until), lambda r: ChangeTier(r, new_tier)),
            "renew": (_view(b, p, tier, renewal[0]), renewal[1]),
            "erase": (None, lambda r: EraseCard(r, force=True)),
        }
        old = _view(b, p, tier, until)
        if reversal is not None:
            change, request = reversal
            new = _view(b + change[0], p + change[1], tier, until)
            return Scenario(op, uid, memory, seed, old, new, request, kept[0])
        new, request = runs[op]
        return Scenario(op, uid, memory, seed, old, new, request)

    def _original(
        self, t: Station, op: str, amount: int, history: int
    ) -> tuple[tuple[int, int], Callable[[str], CardRequest]] | None:
        """For a reversal: make its original at ``t`` and return the (balance, points)
        change the reversal makes and the request; None for any other ``op``."""
        if op == "refund":
            paid = card(t, Debit(request_id="sale", amount=amount))
            assert isinstance(paid, OpResult)
            done = 0
            if history % 2 and amount > 1:  # an earlier partial refund of the same payment
                done = amount // 3
                card(t, Refund("refund-before", "sale", done))
            part = amount - done if history < 2 else max(1, (amount - done) // 2)
            earned = paid.points_delta
            back = points_back(earned, amount, done, part)
            return (part, -back), lambda r: Refund(r, "sale", part)
        if op == "cancel_topup":
            top = card(t, Credit(request_id="top", amount=amount))
            assert isinstance(top, OpResult)
            return (-amount - top.bonus, 0), lambda r: CancelTopUp(r, "top")
        return None

    @staticmethod
    def _issue(t: Station, uid: bytes, member: str, *, balance: int, points: int) -> SimCard:
        # tier 2, valid to 2028-12-31: the old state of every tier change and renewal
        """A freshly issued member card (tier 2), left on ``t``'s reader."""
        blank = SimCard.blank(uid=uid)
        present(t, blank)
        spec = IssueSpec(member, 2, dt.date(2028, 12, 31), balance, points)
        card(t, IssueCard(spec, request_id=f"issue-{uid.hex()}"))
        return blank

    @staticmethod
    def _seed(t: Station, uid: bytes) -> Seed:
        assert t.journal is not None
        seen = t.journal.last_seen(uid.hex().upper())
        assert seen is not None
        assert seen.member_id is not None
        return [(seen.uid, seen.member_id, seen.last_counter, seen.state)]

    # --- one trial ---------------------------------------------------------------------------

    def apdus(self, sc: Scenario) -> int:
        """How many APDUs ``sc.op`` sends when nothing goes wrong."""
        with self.same.terminal(sc.seed, journal=sc.journal) as t:
            present(t, SimCard(sc.uid, memory=sc.memory))
            before = sim_reader(t).apdu_count
            card(t, sc.request("dry-run"))  # its clean-up APDUs included
            return sim_reader(t).apdu_count - before

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
        with self.same.terminal(sc.seed, journal=sc.journal) as t:
            reader = sim_reader(t)
            present(t, card, faults_next=True)
            plan = reader.faults
            plan.arm(seed)
            schedule_fault(plan, k, fault)
            with contextlib.suppress(CardDaemonError):
                run(t, sc.request(rid))
            settle(t)
            plan.clear()
            if reader.card is None:
                present(t, card, faults_next=second is not None)
            # the very same torn card at a PC that never saw it: a deep copy keeps its
            # unstable cells unstable (an image of ``card.memory`` would freeze one sample)
            with self.fresh.terminal() as fresh:
                present(fresh, copy.deepcopy(card))
                seen_fresh = view(fresh)
            if second is not None:
                plan.arm()
                schedule_fault(plan, *second)
                view(t)  # recovery interrupted: may be refused as "card removed"
                plan.clear()
                if reader.card is None:
                    present(t, card)
            seen_same = view(t)
            for who, seen in (("fresh", seen_fresh), ("same", seen_same)):
                if seen not in (sc.old, sc.new):
                    bad.append(f"{rid}: {who} terminal sees {seen}, allowed {sc.old} / {sc.new}")
            journal = t.journal
            assert journal is not None
            if sc.op in RECORD_OPS:
                rec = journal.get(rid)
                want = RequestState.COMMITTED if seen_same == sc.new else RequestState.ABORTED
                if rec is None or rec.state is not want:
                    bad.append(f"{rid}: journal {rec and rec.state} but card shows {seen_same}")
            try:
                run(t, sc.request(rid))
                settle(t)
            except CardDaemonError as exc:
                if not (sc.op in ("issue", "replace", "erase") and view(t) in (sc.old, sc.new)
                        and exc.reason == "UNKNOWN_CARD_FORMAT"):  # fmt: skip
                    bad.append(f"{rid}: retry failed with {exc}")
                return bad, _label(seen_same, sc), _label(seen_fresh, sc)
            final = view(t)
            if final != sc.new:
                bad.append(f"{rid}: after retry the card shows {final}, expected {sc.new}")
            rec = journal.get(rid)
            if rec is None or rec.state is not RequestState.COMMITTED:
                bad.append(f"{rid}: after retry the journal says {rec and rec.state}")
            return bad, _label(seen_same, sc), _label(seen_fresh, sc)

    def clone_trial(
        self, sc: Scenario, k: int, fault: str, delay: float, *, seed: int = 0
    ) -> tuple[list[str], str, str, bool]:
        """The torn operation on the card, and meanwhile a debit of a clone (same UID, same
        image) on the second reader. Returns (violations, how this terminal's journal settled
        the operation, what a fresh terminal reads from the card, clone_misresolved)."""
        bad: list[str] = []
        rid = f"{sc.op}-{k}-{fault}-clone"
        real = SimCard(sc.uid, memory=sc.memory)
        clone = SimCard(sc.uid, memory=sc.memory)
        assert sc.old is not None
        earned = self.programme.points_for(2, CLONE_SPEND)
        clone_new = (sc.old[0] - CLONE_SPEND, sc.old[1] + earned, *sc.old[2:])
        with self.same.terminal(sc.seed, journal=sc.journal) as t:
            present(t, clone, CLONE_READER)
            present(t, real, faults_next=True)
            plan = sim_reader(t).faults
            plan.arm(seed)
            schedule_fault(plan, k, fault)
            main = t.submit(READER, t.card_job(READER, sc.request(rid)))
            time.sleep(delay)
            other = t.submit(CLONE_READER, t.card_job(CLONE_READER, Debit(f"{rid}-c", CLONE_SPEND)))
            for future in (main, other):
                with contextlib.suppress(CardDaemonError):
                    future.result()
            settle(t)
            settle(t, CLONE_READER)
            plan.clear()
            journal = t.journal
            assert journal is not None
            if (rec := journal.get(rid)) is not None and rec.state is RequestState.PENDING:
                present(t, real)  # the card back on its reader settles what it can
                view(t)
            mine, theirs = journal.get(rid), journal.get(f"{rid}-c")
            states = [r.state if r else None for r in (mine, theirs)]
        seen: list[CardView | str] = []
        for which in (real, clone):  # each at a PC that never saw either
            with self.fresh.terminal() as fresh:
                present(fresh, copy.deepcopy(which))
                seen.append(view(fresh))
        seen_real, seen_clone = seen
        committed = RequestState.COMMITTED
        if states == [committed, committed]:
            bad.append(f"{rid}: the operation and the clone's debit both committed")
        if seen_real not in (sc.old, sc.new):
            bad.append(f"{rid}: fresh terminal sees the card as {seen_real}")
        if states[0] is committed and seen_real != sc.new:
            bad.append(f"{rid}: journal COMMITTED, the card shows {seen_real}")
        if (states[1] is committed) != (seen_clone == clone_new):
            bad.append(f"{rid}: clone debit {states[1]}, the clone shows {seen_clone}")
        misresolved = states[0] is RequestState.ABORTED and seen_real == sc.new
        label = {"COMMITTED": "new", "ABORTED": "old"}.get(str(states[0]), "neither")
        return bad, label, _label(seen_real, sc), misresolved


def _renewal(n: int, until: dt.date | None) -> tuple[dt.date | None, Callable[[str], CardRequest]]:
    """Scenario ``n``'s renewal: a later date, an earlier one, no expiry, or ``renew_months``
    (12) after the later of today and the card's expiry; the validity it leaves."""
    kind = n % 4
    if kind == 0:
        return dt.date(2031, 6, 30), lambda r: RenewCard(r, dt.date(2031, 6, 30))
    if kind == 1:
        return dt.date(2027, 3, 31), lambda r: RenewCard(r, dt.date(2027, 3, 31))
    if kind == 2:
        return None, lambda r: RenewCard(r, no_expiry=True)
    start = max(TODAY, until or TODAY)
    return start.replace(year=start.year + 1), lambda r: RenewCard(r)


def model_config(model: str, tmp: Path) -> Path:
    """``bench/tear_campaign.toml`` with its reader table for ``model``."""
    text = CONFIG.read_text(encoding="utf-8")
    if ACR1252U_READER not in text:
        raise SystemExit(f"{CONFIG}: its [readers.front] table is not {ACR1252U_READER!r}")
    path = tmp / f"{model}.toml"
    path.write_text(text.replace(ACR1252U_READER, READER_TABLES[model]), encoding="utf-8")
    return path


def make_labs(tmp: Path) -> dict[str, TearLab]:
    """Per reader model a store folder for the same terminal and one for the fresh terminal,
    all holding one chain's master keys."""
    labs: dict[str, TearLab] = {}
    keys: Path | None = None
    for model in dict.fromkeys(MODELS):
        config = model_config(model, tmp)
        stores = []
        for role in ("same", "fresh"):
            folder = tmp / f"{model}-{role}"
            path = make_store_folder(folder, config)
            if keys is None:
                keys = folder / "keys.toml"
            else:
                shutil.copyfile(keys, folder / "keys.toml")  # one chain; the file stays 0600
            stores.append(Store(load_config(path)))
        labs[model] = TearLab(*stores)
    return labs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--ops", default=",".join(OPS), help=f"comma-separated, of {', '.join(OPS)} (default all)"
    )
    parser.add_argument("--scenarios", type=int, default=SCENARIOS_PER_OP, help="per operation")
    args = parser.parse_args(argv)
    ops = tuple(o for o in args.ops.split(",") if o)
    unknown = [o for o in ops if o not in OPS]
    if unknown or not ops:
        parser.error(f"--ops: {', '.join(unknown) or 'none given'}; choose from {', '.join(OPS)}")
    if args.scenarios < 1:
        parser.error("--scenarios: at least 1")
    logging.disable(logging.CRITICAL)  # torn cards make the storage layer dump APDU traces
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="carddaemon-tears-", dir=shm) as tmp:
        return campaign(
            make_labs(Path(tmp)), args.trials, random.Random(args.seed), ops, args.scenarios
        )


def campaign(
    labs: dict[str, TearLab],
    trials_wanted: int,
    rng: random.Random,
    ops: tuple[str, ...] = OPS,
    scenarios: int = SCENARIOS_PER_OP,
) -> int:
    started = time.monotonic()
    pool: list[tuple[TearLab, Scenario, int]] = []
    n = 1
    for op in ops:
        for i in range(scenarios):
            lab = labs[MODELS[i % len(MODELS)]]
            scenario = lab.scenario(op, n, amount=rng.randint(1, 150_000), history=i % 4)
            pool.append((lab, scenario, lab.apdus(scenario)))
            n += 1
    trials = violations = same_ok = fresh_ok = clone_trials = misresolved = 0
    per_op: dict[str, collections.Counter[str]] = {op: collections.Counter() for op in ops}
    per_fault: collections.Counter[str] = collections.Counter()
    examples: list[str] = []
    while trials < trials_wanted:
        lab, scenario, apdus = rng.choice(pool)
        k = rng.randint(1, apdus)
        fault = rng.choice(FAULTS)
        second = (rng.randint(1, 14), rng.choice(FAULTS)) if rng.random() < SECOND else None
        cloned = scenario.op in RECORD_OPS and rng.random() < CLONE
        fault_seed = rng.randrange(2**32)
        try:
            if cloned:
                delay = rng.uniform(0.0, CLONE_DELAY_S)
                bad, same, fresh, fooled = lab.clone_trial(
                    scenario, k, fault, delay, seed=fault_seed
                )
                clone_trials += 1
                misresolved += fooled
            else:
                bad, same, fresh = lab.trial(scenario, k, fault, second, seed=fault_seed)
        except Exception as exc:
            bad, same, fresh = [f"{scenario.op} k={k} {fault}: crashed: {exc!r}"], "?", "?"
        trials += 1
        per_fault[fault] += 1
        violations += bool(bad)
        same_ok += same in ("old", "new")
        fresh_ok += fresh in ("old", "new")
        per_op[scenario.op][f"{same}"] += 1
        examples.extend(bad[: max(0, 5 - len(examples))])
    elapsed = time.monotonic() - started
    for fault, count in sorted(per_fault.items()):
        print(f"fault {fault:14} trials={count:5d}")
    for op, counts in per_op.items():
        total = sum(counts.values())
        print(f"{op:12} trials={total:5d} old={counts['old']:5d} new={counts['new']:5d}")
    for line in examples:
        print(f"VIOLATION {line}")
    print(f"clone on the second reader: trials={clone_trials} clone_misresolved={misresolved}")
    print(f"elapsed {elapsed:.1f} s")
    print(
        f"tear_campaign: trials={trials} violations={violations} "
        f"resolved_same={same_ok} resolved_fresh={fresh_ok}"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
