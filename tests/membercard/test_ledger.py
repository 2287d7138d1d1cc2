"""Long histories: two store PCs, one card, random operations, tears and retries.

The invariant a customer cares about: after everything has been read back, the card's balance
and points equal the opening values plus exactly the operations the two journals recorded as
COMMITTED - nothing lost, nothing created, nothing applied twice.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from daemon.errors import CardDaemonError
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard.requests import AdjustPoints, Credit, Debit
from tests.membercard.terminal import (
    FAULTS,
    Terminal,
    issue,
    schedule_fault,
    terminal,
    uid_for,
    view,
)


def _pay(term: Terminal, op: str, rid: str, amount: int) -> None:
    with term.storage() as sc:
        if op == "debit":
            term.service.debit(sc, Debit(request_id=rid, amount=amount))
        elif op == "credit":
            term.service.credit(sc, Credit(request_id=rid, amount=amount))
        else:
            term.service.adjust_points(sc, AdjustPoints(request_id=rid, delta=amount))


@pytest.mark.parametrize("seed", [1, 2])
def test_two_terminals_random_history_keeps_the_books(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ks = Keystore.generate()
    with (
        terminal(ks, tmp_path / "a.db") as a,
        terminal(ks, tmp_path / "b.db") as b,
    ):
        card = issue(a, uid_for(seed), balance=1_000_000, points=1_000)
        a.reader.remove()
        requests: list[tuple[Terminal, str, str, int]] = []
        for step in range(160):
            term = rng.choice((a, b))
            if requests and rng.random() < 0.2:  # a POS retrying an earlier request
                term, rid, op, amount = rng.choice(requests)
            else:
                op = rng.choice(("debit", "credit", "points"))
                amount = rng.randint(1, 30_000) if op != "points" else rng.choice((-3, 5, 17))
                rid = f"s{step}"
                requests.append((term, rid, op, amount))
            term.reader.insert(card)
            if rng.random() < 0.5:
                term.reader.faults.arm()
                schedule_fault(term.reader.faults, rng.randint(1, 16), rng.choice(FAULTS))
            with contextlib.suppress(CardDaemonError):  # torn: outcome decided below
                _pay(term, op, rid, amount)
            term.reader.faults.clear()
            if term.reader.card is None:
                term.reader.insert(card)
            assert isinstance(view(term), tuple)  # the cashier re-presents: resolves, repairs
            term.reader.remove()
        balance, points = 1_000_000, 1_000
        for term in (a, b):
            for tm, rid, _op, _amount in requests:
                if tm is not term:
                    continue
                rec = term.journal.get(rid)
                assert rec is not None
                assert rec.state in (RequestState.COMMITTED, RequestState.ABORTED), rid
                if rec.state is RequestState.COMMITTED:
                    assert rec.outcome is not None
                    out = rec.outcome
                    balance += out["balance"] - out["balance_before"]
                    points += out["points"] - out["points_before"]
        b.reader.insert(card)
        assert view(b) == (balance, points)
        committed = sum(
            1
            for tm, rid, _op, _amt in requests
            if (r := tm.journal.get(rid)) is not None and r.state is RequestState.COMMITTED
        )
        assert committed > 40  # the history really moved money
