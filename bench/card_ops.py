"""APDU count and simulated in-field time of every member card operation, per reader profile.

Runs on the in-process simulator with its virtual clock (NXP air times + reader overhead per
APDU: ``acr1252u`` 5 ms, ``acr122u`` 25 ms). The ACR1252U reads three blocks per READ BINARY;
the ACR122U one. "tap" = identify + read + debit + verify, on a card this terminal has seen
before (its journal predicts which record slot is written next); "fresh" = the same at a
terminal that has never seen the card (one more authentication half of the time).

Then, wall-clock over the real stack: ``PCSC_TAPS`` tap-to-done debits (identify + read + debit
+ verify, a fresh ``SCardConnect`` each, as after a card event) submitted as member card jobs to a
reader worker, through a private pcscd + vpcd + pyscard, with the journal's fsyncs on disk. The
simulated card charges no air time here, so this is the host path's cost; add the reader's air
time (``tap_ms``) for a real tap. pcscd runs in a mount namespace: root needed.

    .venv/bin/python bench/card_ops.py [--pcsc-taps N]     (N=0: skip the real stack)

Last line: ``card_ops: debit_apdus=… tap_apdus=… tap_ms=… tap_ms_acr122u=… pcsc_tap_p50_ms=…``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RUN_DIR = tempfile.mkdtemp(prefix="carddaemon-bench-pcscd-")
# libpcsclite reads this once, at the first PC/SC call: set it before anything can call.
os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(RUN_DIR, "pcscd.comm")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.errors import CardDaemonError  # noqa: E402
from daemon.journal import Journal  # noqa: E402
from daemon.keystore import Keystore  # noqa: E402
from daemon.membercard import IssueSpec, MemberCardService, Personaliser  # noqa: E402
from daemon.membercard.jobs import ReaderProfile, card_job  # noqa: E402
from daemon.membercard.replace import replace_card  # noqa: E402
from daemon.membercard.requests import (  # noqa: E402
    AdjustPoints,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    ReadCard,
    ReplaceCard,
)
from daemon.readers.pcsc import PcscBackend  # noqa: E402
from daemon.readers.workers import Job, ReaderPool  # noqa: E402
from sim.card import SimCard  # noqa: E402
from sim.pcscd import PrivatePcscd  # noqa: E402
from sim.reader import SimReader  # noqa: E402
from sim.vpcd import VpcdBridge  # noqa: E402
from tests.membercard.terminal import (  # noqa: E402
    PROGRAMME,
    TODAY,
    Terminal,
    issue,
    terminal,
    uid_for,
)

DEBIT_MAX_APDUS = 10
TAP_MAX_APDUS = 16
TAP_MAX_MS = 150.0


def measure(term: Terminal, action: Callable[[Terminal], object]) -> tuple[int, float]:
    n0, t0 = term.reader.apdu_count, term.reader.clock.now_ms
    action(term)
    return term.reader.apdu_count - n0, term.reader.clock.now_ms - t0


def run_profile(ks: Keystore, workdir: Path, model: str) -> dict[str, tuple[int, float]]:
    out: dict[str, tuple[int, float]] = {}
    with terminal(ks, workdir / f"{model}.db", model=model, latency=model) as t:
        out["issue"] = measure(t, lambda tm: issue(tm, uid_for(1), balance=500_000))
        with t.storage() as sc:  # first sight: the journal learns the counter
            t.service.read(sc)

        def op(name: str, fn: Callable[..., object], **kw: object) -> None:
            def go(tm: Terminal) -> None:
                with tm.storage() as sc:
                    fn(tm, sc, **kw)

            out[name] = measure(t, go)

        op("read", lambda tm, sc: tm.service.read(sc))
        op("tap_debit", lambda tm, sc: tm.service.debit(sc, Debit(request_id="d1", amount=1234)))
        op("credit", lambda tm, sc: tm.service.credit(sc, Credit(request_id="c1", amount=100_000)))
        op(
            "points",
            lambda tm, sc: tm.service.adjust_points(sc, AdjustPoints(request_id="p1", delta=-5)),
        )
        op("debit_again", lambda tm, sc: tm.service.debit(sc, Debit(request_id="d2", amount=999)))
        card = t.reader.remove()
        assert card is not None
        t.reader.insert(SimCard.blank(uid=uid_for(2)))
        out["replace"] = measure(
            t,
            lambda tm: _with(tm, lambda sc: replace_card(tm.issuer, sc,
                                                          ReplaceCard("04000001", "r1"))),
        )  # fmt: skip
        out["erase"] = measure(
            t,
            lambda tm: _with(
                tm, lambda sc: tm.issuer.erase(sc, EraseCard(request_id="e1", force=True))
            ),
        )
        t.reader.remove()
        t.reader.insert(card)
    with terminal(ks, workdir / f"{model}-fresh.db", model=model, latency=model) as f:
        f.reader.insert(SimCard(card.uid, memory=card.memory))
        worst = (0, 0.0)
        for i in range(2):  # both slot parities

            def tap(tm: Terminal, rid: str = f"f{i}") -> None:
                _with(tm, lambda sc: tm.service.debit(sc, Debit(request_id=rid, amount=100)))

            n, ms = measure(f, tap)
            worst = max(worst, (n, ms))
            f.journal.forget_card(card.uid.hex().upper())
        out["tap_debit_fresh_worst"] = worst
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _with(term: Terminal, fn: Callable[..., object]) -> None:
    with term.storage() as sc:
        fn(sc)


FRIENDLY = "ACS ACR1252 1S CL Reader PICC"
PCSC_TAPS = 50
PCSC_WARMUP = 5


def pcsc_taps(ks: Keystore, workdir: Path, taps: int) -> list[float]:
    """Wall-clock ms of ``taps`` debits as reader-worker jobs over pcscd + vpcd + pyscard."""
    reader = SimReader(f"{FRIENDLY} 00 00", model="acr1252u", latency="none")
    reader.insert(SimCard.blank(uid=uid_for(3)))
    with (
        Journal(workdir / "pcsc.db") as journal,
        PrivatePcscd([FRIENDLY], run_dir=RUN_DIR, debug=False) as pcscd,
        VpcdBridge([(reader, pcscd.slot(FRIENDLY).port)]) as bridge,
        PcscBackend() as backend,
        ReaderPool(backend.connect) as pool,
    ):
        bridge.wait_connected()
        name = pcscd.slot(FRIENDLY).reader_name
        deadline = time.monotonic() + 10
        states = backend.wait_for_change(None, 0)
        while name not in states or not states[name].present:
            if time.monotonic() > deadline:
                raise SystemExit("pcscd never saw the simulated card")
            states = backend.wait_for_change(states, 0.5)
        pool.reader_attached(name)
        profile = ReaderProfile.for_reader(name)
        service = MemberCardService(ks, journal, PROGRAMME, today=lambda: TODAY)
        issuer = Personaliser(ks, journal, PROGRAMME, today=lambda: TODAY)

        def run(job: Job[object]) -> float:
            pool.card_removed(name)  # a fresh connection per tap, as after a card event
            t0 = time.perf_counter()
            pool.submit(name, job, time.monotonic() + 10).result(10)
            return (time.perf_counter() - t0) * 1e3

        spec = IssueSpec("8800000003", 2, dt.date(2029, 12, 31), 1_000_000, 0)
        run(card_job(issuer, profile, IssueCard(spec, request_id="pcsc-issue")))
        run(card_job(service, profile, ReadCard()))  # first sight: the journal learns the counter
        times = [
            run(card_job(service, profile, Debit(request_id=f"pcsc-tap-{i}", amount=100)))
            for i in range(taps + PCSC_WARMUP)
        ]
    return times[PCSC_WARMUP:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pcsc-taps", type=int, default=PCSC_TAPS, metavar="N")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    ks = Keystore.generate()
    real: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        fast = run_profile(ks, Path(tmp), "acr1252u")
        slow = run_profile(ks, Path(tmp), "acr122u")
        try:
            if args.pcsc_taps > 0:
                real = pcsc_taps(ks, Path(tmp), args.pcsc_taps)
        except (CardDaemonError, OSError) as exc:  # no root, no pcscd: say so, go on
            print(f"pcsc taps skipped: {exc}")
        finally:
            shutil.rmtree(RUN_DIR, ignore_errors=True)
    print(f"{'operation':24} {'apdus':>6} {'ms acr1252u':>12} {'apdus':>6} {'ms acr122u':>11}")
    for name in fast:
        (n1, m1), (n2, m2) = fast[name], slow[name]
        print(f"{name:24} {n1:6d} {m1:12.1f} {n2:6d} {m2:11.1f}")
    pcsc_p50 = f"{statistics.median(real):.1f}" if real else "n/a"
    if real:
        print(
            f"pcsc tap (debit job on a reader worker, pcscd + vpcd + pyscard, host path only): "
            f"n={len(real)} p50={pcsc_p50} ms p90={_pct(real, 0.9):.1f} ms max={max(real):.1f} ms"
        )
    read_apdus = fast["read"][0]
    tap_apdus, tap_ms = fast["tap_debit"]
    debit_apdus = tap_apdus - read_apdus
    ok = debit_apdus <= DEBIT_MAX_APDUS and tap_apdus <= TAP_MAX_APDUS and tap_ms <= TAP_MAX_MS
    print(f"targets: debit <= {DEBIT_MAX_APDUS} APDUs after identify+read, tap <= {TAP_MAX_APDUS}"
          f" APDUs and <= {TAP_MAX_MS:.0f} ms (acr1252u): {'met' if ok else 'MISSED'}")  # fmt: skip
    print(
        f"card_ops: debit_apdus={debit_apdus} tap_apdus={tap_apdus} tap_ms={tap_ms:.1f} "
        f"tap_ms_acr122u={slow['tap_debit'][1]:.1f} pcsc_tap_p50_ms={pcsc_p50}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
