"""APDU count and simulated in-field time of every member card operation, per reader profile.

Runs on the in-process simulator with its virtual clock (NXP air times + reader overhead per
APDU: ``acr1252u`` 5 ms, ``acr122u`` 25 ms). The ACR1252U reads three blocks per READ BINARY;
the ACR122U one. "tap" = identify + read + debit + verify, on a card this terminal has seen
before (its journal predicts which record slot is written next); "fresh" = the same at a
terminal that has never seen the card (one more authentication half of the time).

Last line: ``card_ops: debit_apdus=… tap_apdus=… tap_ms=… tap_ms_acr122u=…``.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.keystore import Keystore
from daemon.membercard.replace import replace_card
from sim.card import SimCard
from tests.fixtures_membercard import Terminal, issue, terminal, uid_for

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
        op("tap_debit", lambda tm, sc: tm.service.debit(sc, request_id="d1", amount=1234))
        op("credit", lambda tm, sc: tm.service.credit(sc, request_id="c1", amount=100_000))
        op("points", lambda tm, sc: tm.service.adjust_points(sc, request_id="p1", delta=-5))
        op("debit_again", lambda tm, sc: tm.service.debit(sc, request_id="d2", amount=999))
        card = t.reader.remove()
        assert card is not None
        t.reader.insert(SimCard.blank(uid=uid_for(2)))
        out["replace"] = measure(
            t,
            lambda tm: _with(tm, lambda sc: replace_card(tm.issuer, sc, old_uid="04000001",
                                                          request_id="r1")),
        )  # fmt: skip
        out["erase"] = measure(
            t, lambda tm: _with(tm, lambda sc: tm.issuer.erase(sc, request_id="e1", force=True))
        )
        t.reader.remove()
        t.reader.insert(card)
    with terminal(ks, workdir / f"{model}-fresh.db", model=model, latency=model) as f:
        f.reader.insert(SimCard(card.uid, memory=card.memory))
        worst = (0, 0.0)
        for i in range(2):  # both slot parities
            n, ms = measure(
                f,
                lambda tm, i=i: _with(
                    tm, lambda sc: tm.service.debit(sc, request_id=f"f{i}", amount=100)
                ),
            )
            worst = max(worst, (n, ms))
            f.journal.forget_card(card.uid.hex().upper())
        out["tap_debit_fresh_worst"] = worst
    return out


def _with(term: Terminal, fn: Callable[..., object]) -> None:
    with term.storage() as sc:
        fn(sc)


def main() -> int:
    logging.disable(logging.WARNING)
    ks = Keystore.generate()
    with tempfile.TemporaryDirectory() as tmp:
        fast = run_profile(ks, Path(tmp), "acr1252u")
        slow = run_profile(ks, Path(tmp), "acr122u")
    print(f"{'operation':24} {'apdus':>6} {'ms acr1252u':>12} {'apdus':>6} {'ms acr122u':>11}")
    for name in fast:
        (n1, m1), (n2, m2) = fast[name], slow[name]
        print(f"{name:24} {n1:6d} {m1:12.1f} {n2:6d} {m2:11.1f}")
    read_apdus = fast["read"][0]
    tap_apdus, tap_ms = fast["tap_debit"]
    debit_apdus = tap_apdus - read_apdus
    ok = debit_apdus <= DEBIT_MAX_APDUS and tap_apdus <= TAP_MAX_APDUS and tap_ms <= TAP_MAX_MS
    print(f"targets: debit <= {DEBIT_MAX_APDUS} APDUs after identify+read, tap <= {TAP_MAX_APDUS}"
          f" APDUs and <= {TAP_MAX_MS:.0f} ms (acr1252u): {'met' if ok else 'MISSED'}")  # fmt: skip
    print(
        f"card_ops: debit_apdus={debit_apdus} tap_apdus={tap_apdus} tap_ms={tap_ms:.1f} "
        f"tap_ms_acr122u={slow['tap_debit'][1]:.1f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
