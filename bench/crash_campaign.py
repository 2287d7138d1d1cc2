"""``kill -9`` of the real daemon at random moments, restarted as systemd would: nothing lost.

The store PC here is the real one minus the hardware: a private pcscd (``sim.pcscd``, in a
mount namespace) with two vpcd readers, the simulated readers and their member cards served to
it by this process (``sim.vpcd``), and ``carddaemon serve`` as a process of its own over a
store folder whose readers use backend ``pcsc``. The cards live in this process, so they keep
their state across the daemon's deaths, as a card on a real reader does; pcscd lives on too.

Each cycle: start the daemon (as ``Restart=on-failure`` does, without its 2 s pause: same
config, same journal), wait until both lanes answer ``ReadCard``, settle every debit whose
outcome the tills did not learn (``GetOperation``; ``PENDING`` is settled by re-reading its
card, as the contract says), then check the whole history: every debit a till saw acknowledged
is ``COMMITTED`` in the journal with one ``value_change`` audit row, and each card's balance and
counter are exactly its issued values less the journal's committed debits (``lost``: an
acknowledged debit the journal or the card lacks; ``doubled``: a card that moved more than the
journal says). Then the POS clients (one thread and gRPC channel each, over the POS socket,
fresh ``request_id`` per debit, random amounts) debit until the daemon is killed: after a random
time, or a random few milliseconds after a debit was sent (mid-debit: mid card write, mid
journal commit, after the commit but before the answer).

``unresolved`` counts debits still without a definite outcome at the end (a request the killed
process had claimed but not begun shows as not applied at once: nothing of it reached a card).

    .venv/bin/python bench/crash_campaign.py [--kills N] [--seed S] [--clients C]

Measured on the 2-core development VM (other work running): the 300 kills take about 12
minutes (restart to serving both lanes: p50 1.7 s).

Root needed (pcscd in a mount namespace). Last line: ``crash_campaign: kills=… acknowledged=…
lost=0 doubled=0 unresolved=…``. :class:`StorePc` is also the harness of ``bench/soak.py`` and
``tests/survive/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from daemon.api.v1 import common_pb2
from daemon.api.v1 import issuing_service_pb2 as i_pb
from daemon.api.v1 import issuing_service_pb2_grpc as i_grpc
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.keystore import Keystore
from sim.card import SimCard
from sim.pcscd import PrivatePcscd
from sim.reader import SimReader
from sim.vpcd import VpcdBridge

BIN = Path(sys.executable).parent
LANES = {  # lane id -> (vpcd FRIENDLYNAME, simulator model); as bench/api_latency.py
    "front": ("ACS ACR1252 1S CL Reader PICC", "acr1252u"),
    "back": ("ACS ACR122U PICC Interface", "acr122u"),
}
CONFIG = """\
# bench/crash_campaign.py: a store PC with two PC/SC readers (vpcd), the API in this folder
[daemon]
state_dir = "state"
journal_path = "{journal}"
keystore_file = "keys.toml"
station = "issuing"          # the harness issues its member cards first

[readers]
backend = "pcsc"

[readers.front]
match = "ACS ACR1252*PICC*"
dialect = "acr1252u"
queue_size = 8
job_deadline_ms = 10000

[readers.back]
match = "ACS ACR122U*"
dialect = "acr122u"
queue_size = 8
job_deadline_ms = 10000

[membercard]
balance_cap = 500000
abandoned_claim_age_s = 60

[api]
runtime_dir = "run"
max_streams = 16
"""
OPENING_BALANCE = 400_000
CALL_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0
#: gRPC errors that mean "the daemon is gone" (killed mid-call, or not listening yet)
GONE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}


def cny(fen: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code="CNY", amount_fen=fen)


def uid_for(n: int) -> str:
    return bytes((0x04, 0xC7, 0x00, n)).hex().upper()


def describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name} {exc.details()}"
    return repr(exc)


class StorePc:
    """pcscd + simulated readers with member cards (this process) + ``carddaemon serve``.

    The daemon is started, killed and restarted at will; pcscd and the cards stay. ``extra``:
    more config (``[printers.*]`` …); ``journal``: where the journal lives (a full-disk test
    puts it on a small filesystem)."""

    def __init__(
        self,
        folder: Path,
        *,
        extra: str = "",
        journal: str = "journal.sqlite3",
        state_size: str | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "carddaemon.toml"
        self.config.write_text(CONFIG.format(journal=journal) + extra, encoding="utf-8")
        Keystore.create_file(folder / "keys.toml")
        self.journal_path = folder / "state" / journal  # relative to state_dir
        #: the daemon's state directory on a tmpfs of this size, mounted in a mount namespace
        #: of its own (a disk that fills up; the host's disk is never touched)
        self.state_size = state_size
        names = [name for name, _ in LANES.values()]
        self.pcscd = PrivatePcscd(names, debug=False)
        self.readers: dict[str, SimReader] = {}
        self.bridge: VpcdBridge | None = None
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._drain: threading.Thread | None = None
        self.starts = 0
        try:
            self.pcscd.start()
            for n, (lane, (name, model)) in enumerate(LANES.items(), start=1):
                reader = SimReader(f"{name} 00 00", model=model, latency="none")  # type: ignore[arg-type]
                reader.insert(SimCard.blank(uid=bytes.fromhex(uid_for(n))))
                self.readers[lane] = reader
            ports = [self.pcscd.slot(name).port for name in names]
            self.bridge = VpcdBridge(zip(self.readers.values(), ports, strict=True))
            self.bridge.wait_connected()
        except BaseException:
            self.close()
            raise

    # --- the daemon process --------------------------------------------------------------

    def socket(self, role: str) -> Path:
        return self.folder / "run" / f"{role}.sock"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait_cards: bool = True) -> None:
        """``carddaemon serve`` until it prints ``ready``; then (``wait_cards``) until both
        lanes read their card."""
        assert self.process is None or self.process.poll() is not None
        env = {**self.pcscd.client_env(), "PYTHONUNBUFFERED": "1"}
        command = [str(BIN / "carddaemon"), "serve", "--config", str(self.config)]
        if self.state_size is not None:  # unshare and sh exec: the daemon keeps this pid
            (self.folder / "state").mkdir(exist_ok=True)
            script = f'mount -t tmpfs -o size={self.state_size} tmpfs "$0" && exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                       str(self.folder / "state"), *command]  # fmt: skip
        self.process = process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.starts += 1
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                break
        if not self.lines or self.lines[-1] != "ready":
            process.kill()
            process.wait()
            process.stdout.close()
            tail = "\n".join(self.lines[-30:])
            raise RuntimeError(f"carddaemon serve did not get ready:\n{tail}")
        stdout = process.stdout
        self._drain = threading.Thread(
            target=self._drain_lines, args=(stdout,), name="daemon-stdout", daemon=True
        )
        self._drain.start()
        if wait_cards:
            for lane in LANES:
                self.wait_card(lane)

    def _drain_lines(self, stdout: Any) -> None:
        for line in stdout:
            self.lines.append(line.rstrip("\n"))
            del self.lines[:-2000]

    def wait_card(self, lane: str, timeout_s: float = 30.0) -> m.MemberCard:
        """``ReadCard`` on ``lane`` until it answers (the monitor attaches readers after
        ``ready``); a blank card's refusal counts as an answer."""
        deadline = time.monotonic() + timeout_s
        with self.channel() as channel:
            stub = mg.MemberCardServiceStub(channel)
            while True:
                try:
                    reply = stub.ReadCard(
                        m.ReadCardRequest(reader=f"readers/{lane}"), timeout=CALL_TIMEOUT_S
                    )
                    return reply.card
                except grpc.RpcError as exc:
                    code = exc.code()  # type: ignore[attr-defined]
                    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.DATA_LOSS):
                        return m.MemberCard()  # a card is there (blank, or refused): answered
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"readers/{lane} never answered: {describe(exc)}"
                        ) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """``kill -9`` the daemon and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reap()

    def _reap(self) -> None:
        if self._drain is not None:
            self._drain.join(10)
            self._drain = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> int:
        """SIGTERM, as ``systemctl stop``; the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reap()
        code = self.process.returncode
        self.process = None
        return code

    def state_path(self, path: Path) -> Path:
        """``path`` as the daemon sees it (through its mount namespace, if it has one)."""
        if self.state_size is None:
            return path
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def channel(self, role: str = "pos") -> grpc.Channel:
        return grpc.insecure_channel(f"unix:{self.socket(role)}")

    # --- cards ---------------------------------------------------------------------------

    def issue_cards(self, balance: int = OPENING_BALANCE) -> dict[str, str]:
        """Issue the member card on each lane over the issuer socket; lane -> UID."""
        valid = dt.date.today() + dt.timedelta(days=3 * 365)
        uids = {}
        with self.channel("issuer") as channel:
            stub = i_grpc.IssuingServiceStub(channel)
            for n, lane in enumerate(LANES, start=1):
                spec = i_pb.CardSpec(
                    member_id=f"88000000{n:02d}",
                    tier=0,
                    valid_until=common_pb2.Date(year=valid.year, month=valid.month, day=valid.day),
                    opening_balance=cny(balance),
                )
                reply = stub.IssueCard(
                    i_pb.IssueCardRequest(
                        reader=f"readers/{lane}", request_id=f"issue-{lane}", spec=spec
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
                uids[lane] = reply.card.uid
        return uids

    def read(self, lane: str) -> m.ReadCardResponse:
        with self.channel() as channel:
            reply: m.ReadCardResponse = mg.MemberCardServiceStub(channel).ReadCard(
                m.ReadCardRequest(reader=f"readers/{lane}"), timeout=CALL_TIMEOUT_S
            )
            return reply

    def get_operation(self, request_id: str) -> m.GetOperationResponse:
        with self.channel() as channel:
            reply: m.GetOperationResponse = mg.MemberCardServiceStub(channel).GetOperation(
                m.GetOperationRequest(request_id=request_id), timeout=CALL_TIMEOUT_S
            )
            return reply

    def journal_rows(self) -> tuple[dict[str, tuple[str, str | None, int]], dict[str, int]]:
        """The journal file as it is on disk, read by a connection of our own: request_id ->
        (state, uid, amount) of every debit, and request_id -> its ``value_change`` rows. A
        journal in the daemon's own mount namespace is read from inside it (``nsenter``:
        SQLite resolves ``/proc/<pid>/root`` to this namespace's ``/``)."""
        if self.state_size is None:
            return journal_rows(self.journal_path)
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", sys.executable, __file__, "--journal-rows",
             str(self.journal_path)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        requests, audited = json.loads(done.stdout)
        return {k: (v[0], v[1], v[2]) for k, v in requests.items()}, audited

    def close(self) -> None:
        if self.process is not None:
            self.kill()
            self.process = None
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        for reader in self.readers.values():
            reader.close()
        self.pcscd.close()

    def __enter__(self) -> StorePc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def journal_rows(path: Path) -> tuple[dict[str, tuple[str, str | None, int]], dict[str, int]]:
    """See :meth:`StorePc.journal_rows`."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        requests = {
            rid: (state, uid, int(json.loads(params)["amount"]))
            for rid, state, uid, params in db.execute(
                "SELECT request_id, state, uid, params FROM requests WHERE op='debit'"
            )
        }
        audited: dict[str, int] = {}
        for (rid,) in db.execute(
            "SELECT request_id FROM audit WHERE event='value_change' AND request_id IS NOT NULL"
        ):
            audited[rid] = audited.get(rid, 0) + 1
    finally:
        db.close()
    return requests, audited


# --- the POS clients -------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the tills know: acknowledged debits and debits whose outcome they did not learn."""

    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)  # rid -> (lane, fen)
    unknown: dict[str, tuple[str, int]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # rid -> reason while the daemon ran
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: threading.Event = field(default_factory=threading.Event)


def till(
    store: StorePc,
    lane: str,
    uid: str,
    ledger: Ledger,
    stop: threading.Event,
    rng: random.Random,
    pace_s: float = 0.0,
    persist: bool = False,
) -> None:
    """One POS: debits with fresh request_ids until ``stop``, or until the daemon is gone
    (``persist``: a till that keeps trying, as one does while pcscd or a reader is away)."""
    with store.channel() as channel:
        stub = mg.MemberCardServiceStub(channel)
        while not stop.is_set():
            rid = f"sale-{uuid.uuid4().hex[:20]}"
            amount = rng.randint(1, 50)
            with ledger.lock:
                ledger.unknown[rid] = (lane, amount)
            ledger.sent.set()
            try:
                stub.Debit(
                    m.DebitRequest(
                        reader=f"readers/{lane}", request_id=rid, expected_uid=uid,
                        amount=cny(amount),
                    ),
                    timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            except grpc.RpcError as exc:
                if exc.code() in GONE and not persist:  # type: ignore[attr-defined]
                    return  # the daemon died under this call: its outcome is to be settled
                with ledger.lock:
                    ledger.refused[rid] = describe(exc)
                stop.wait(0.05)
                continue
            with ledger.lock:
                del ledger.unknown[rid]
                ledger.acknowledged[rid] = (lane, amount)
            if pace_s:
                stop.wait(pace_s)


# --- the check after every restart -----------------------------------------------------------


@dataclass
class Tally:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)
    unresolved_states: dict[str, str] = field(default_factory=dict)
    applied_unknown: int = 0
    not_applied_unknown: int = 0


def settle(store: StorePc, ledger: Ledger, tally: Tally) -> None:
    """Ask the daemon the outcome of every debit the tills did not learn; a PENDING one is
    settled by reading its card, then asked again."""
    with ledger.lock:
        unknown = dict(ledger.unknown)
    states = m.GetOperationResponse
    for rid, (lane, _amount) in unknown.items():
        op = store.get_operation(rid)
        if op.state == states.STATE_PENDING:
            store.read(lane)
            op = store.get_operation(rid)
        if op.state == states.STATE_COMMITTED:
            tally.applied_unknown += 1
        elif op.state in (states.STATE_NOT_APPLIED, states.STATE_NOT_RECORDED):
            tally.not_applied_unknown += 1
        else:
            tally.unresolved.add(rid)
            tally.unresolved_states[rid] = states.State.Name(op.state)
            continue
        tally.unresolved.discard(rid)
        with ledger.lock:
            del ledger.unknown[rid]


def check(
    store: StorePc, ledger: Ledger, uids: dict[str, str], base: dict[str, tuple[int, int]]
) -> Tally:
    """The invariants after a restart (see the module docstring); raises nothing, counts."""
    tally = Tally()
    settle(store, ledger, tally)
    cards = {lane: store.read(lane).card for lane in LANES}
    requests, audited = store.journal_rows()
    with ledger.lock:
        acknowledged = dict(ledger.acknowledged)
        tally.unresolved = set(ledger.unknown)
    for rid in acknowledged:
        state = requests.get(rid, ("MISSING", None, 0))[0]
        if state != "COMMITTED" or audited.get(rid, 0) == 0:
            tally.lost.append(f"{rid}: acknowledged, journal says {state}")
        elif audited[rid] > 1:
            tally.doubled.append(f"{rid}: {audited[rid]} value_change rows")
    for lane, card in cards.items():
        committed = [
            (rid, amount)
            for rid, (state, uid, amount) in requests.items()
            if state == "COMMITTED" and uid == uids[lane]
        ]
        balance0, counter0 = base[lane]
        moved = counter0 + len(committed) - card.counter
        short = balance0 - sum(a for _, a in committed) - card.balance.amount_fen
        if moved > 0 or short < 0:  # the card lacks committed debits
            tally.lost.append(f"{lane}: card counter {card.counter} balance "
                              f"{card.balance.amount_fen}, journal commits {len(committed)} "
                              f"debits of {sum(a for _, a in committed)} fen")  # fmt: skip
        if moved < 0 or short > 0:  # the card moved more than the journal says
            tally.doubled.append(f"{lane}: card counter {card.counter} balance "
                                 f"{card.balance.amount_fen}, journal commits {len(committed)} "
                                 f"debits of {sum(a for _, a in committed)} fen")  # fmt: skip
    return tally


# --- the campaign ----------------------------------------------------------------------------


@dataclass
class Campaign:
    kills: int = 0
    acknowledged: int = 0
    mid_debit: int = 0
    tally: Tally = field(default_factory=Tally)
    refused: int = 0
    restart_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def one_cycle(
    store: StorePc,
    ledger: Ledger,
    uids: dict[str, str],
    rng: random.Random,
    clients: int,
    run: Campaign,
) -> None:
    """Tills debit until the daemon is killed; then it is started again (the caller checks)."""
    stop = threading.Event()
    lanes = list(LANES)
    ledger.sent.clear()
    threads = [
        threading.Thread(
            target=till,
            args=(
                store,
                lanes[n % len(lanes)],
                uids[lanes[n % len(lanes)]],
                ledger,
                stop,
                random.Random(rng.random()),
            ),
            name=f"till-{n}",
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    if rng.random() < 0.5:  # mid-debit: a few ms after a debit was sent
        ledger.sent.wait(5)
        ledger.sent.clear()
        ledger.sent.wait(5)
        time.sleep(rng.uniform(0, 0.02))
        run.mid_debit += 1
    else:
        time.sleep(rng.uniform(0.0, 0.6))
    store.kill()
    run.kills += 1
    stop.set()
    for thread in threads:
        thread.join(30)
    t0 = time.monotonic()
    store.start()
    run.restart_s.append(time.monotonic() - t0)


def campaign(kills: int, seed: int, clients: int, folder: Path) -> Campaign:
    rng = random.Random(seed)
    run = Campaign()
    ledger = Ledger()
    with StorePc(folder) as store:
        store.start(wait_cards=False)
        uids = store.issue_cards()
        base = {}
        for lane in LANES:
            card = store.read(lane).card
            base[lane] = (card.balance.amount_fen, card.counter)
        while run.kills < kills:
            one_cycle(store, ledger, uids, rng, clients, run)
            tally = check(store, ledger, uids, base)
            run.tally.lost += tally.lost
            run.tally.doubled += tally.doubled
            run.tally.unresolved = tally.unresolved
            run.tally.unresolved_states = tally.unresolved_states
            run.tally.applied_unknown += tally.applied_unknown
            run.tally.not_applied_unknown += tally.not_applied_unknown
            if tally.lost or tally.doubled:
                run.problems.append(f"after kill {run.kills}: {tally.lost + tally.doubled}")
                run.problems += store.lines[-20:]
                break
        with ledger.lock:
            run.refused = len(ledger.refused)
            run.problems += [f"refused {r}: {why}" for r, why in list(ledger.refused.items())[:5]]
        run.acknowledged = len(ledger.acknowledged)
        if store.stop() != 0:
            run.problems.append("the last daemon did not stop cleanly on SIGTERM")
    return run


def report(run: Campaign) -> int:
    tally = run.tally
    acknowledged = run.acknowledged
    restart = sorted(run.restart_s) or [0.0]
    print(f"{'':34} {'count':>8}")
    for name, value in (
        ("kills (kill -9 of carddaemon)", run.kills),
        ("  of them a few ms after a debit", run.mid_debit),
        ("debits acknowledged to a till", acknowledged),
        ("unknown outcome, then committed", tally.applied_unknown),
        ("unknown outcome, then not applied", tally.not_applied_unknown),
        ("refused while the daemon ran", run.refused),
        ("lost", len(tally.lost)),
        ("doubled", len(tally.doubled)),
        ("unresolved", len(tally.unresolved)),
    ):
        print(f"{name:34} {value:8d}")
    print(
        f"restart to serving both lanes: p50 {restart[len(restart) // 2]:.2f} s, "
        f"max {restart[-1]:.2f} s"
    )
    for rid in sorted(tally.unresolved):
        print(f"  unresolved {rid}: {tally.unresolved_states.get(rid, '?')}")
    for line in run.problems[:40]:
        print(f"  {line}")
    print(
        f"crash_campaign: kills={run.kills} acknowledged={acknowledged} lost={len(tally.lost)} "
        f"doubled={len(tally.doubled)} unresolved={len(tally.unresolved)}"
    )
    return 0 if not (tally.lost or tally.doubled or tally.unresolved or run.refused) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=300, help="kill-and-restart cycles (300)")
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    parser.add_argument("--clients", type=int, default=3, help="POS clients (3)")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills: at least 1")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="carddaemon-crash-") as tmp:
        run = campaign(args.kills, args.seed, args.clients, Path(tmp) / "store")
    return report(run)


__all__ = ["LANES", "Ledger", "StorePc", "check", "cny", "describe", "till", "uid_for"]

if __name__ == "__main__":
    if sys.argv[1:2] == ["--journal-rows"]:  # StorePc.journal_rows, inside a mount namespace
        print(json.dumps(journal_rows(Path(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
