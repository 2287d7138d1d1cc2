"""Randomized tear campaign over every member card operation on the in-process simulator.

Each trial takes a prepared card + journal just before one operation (debit, credit, points,
issue, replace, erase; varied history, amounts and slot parity), picks a random APDU index of
that operation (reader models ACR1252U, ACR122U, OMNIKEY, generic) and a random fault (card
removed before it; its write torn leaving old / new / garbage / unstable cells that read back
differently on every READ; its response lost; card removed after it) with a random fault seed
(the garbage bytes and the unstable cells' samples), runs the operation, then presents the card
at the same terminal (same journal) and, as a copy that keeps its unstable cells, at a fresh
terminal with no journal. A
violation is any state other than exactly the old or the new (balance, points), a fraud alarm,
a journal that disagrees with the card, or a same-request_id retry that does not end in the
new state exactly once. A quarter of the trials also tear the same terminal's first re-read
(the recovery itself), which must then resolve on the next read.

Last line: ``tear_campaign: trials=… violations=… resolved_same=… resolved_fresh=…`` where
``resolved_*`` counts trials that terminal settled to a definite allowed state.
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.keystore import Keystore
from tests.membercard.terminal import FAULTS, OPS, Scenario, TearLab

SCENARIOS_PER_OP = 8
MODELS = ("acr1252u", "acr1252u", "acr122u", "omnikey5x21", "generic")
SECOND = 0.25  # share of trials whose recovery (the same terminal's re-read) is torn as well


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # torn cards make the storage layer dump APDU traces
    rng = random.Random(args.seed)
    keystore = Keystore.generate()
    # in-memory journals (WAL+FULL on files is covered by the tests); every reader model
    labs = {model: TearLab(keystore, model=model) for model in MODELS}
    started = time.monotonic()
    pool: list[tuple[TearLab, Scenario, int]] = []
    n = 1
    for op in OPS:
        for i in range(SCENARIOS_PER_OP):
            lab = labs[MODELS[i % len(MODELS)]]
            scenario = lab.scenario(op, n, amount=rng.randint(1, 150_000), history=i % 4)
            pool.append((lab, scenario, lab.apdus(scenario)))
            n += 1
    trials = violations = same_ok = fresh_ok = 0
    per_op: dict[str, collections.Counter[str]] = {op: collections.Counter() for op in OPS}
    per_fault: collections.Counter[str] = collections.Counter()
    examples: list[str] = []
    while trials < args.trials:
        lab, scenario, apdus = rng.choice(pool)
        k = rng.randint(1, apdus)
        fault = rng.choice(FAULTS)
        second = (rng.randint(1, 14), rng.choice(FAULTS)) if rng.random() < SECOND else None
        try:
            bad, same, fresh = lab.trial(scenario, k, fault, second, seed=rng.randrange(2**32))
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
    for fault, n in sorted(per_fault.items()):
        print(f"fault {fault:14} trials={n:5d}")
    for op, counts in per_op.items():
        print(
            f"{op:8} trials={sum(counts.values()):5d} old={counts['old']:5d} new={counts['new']:5d}"
        )
    for line in examples:
        print(f"VIOLATION {line}")
    print(f"elapsed {elapsed:.1f} s")
    print(
        f"tear_campaign: trials={trials} violations={violations} "
        f"resolved_same={same_ok} resolved_fresh={fresh_ok}"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
