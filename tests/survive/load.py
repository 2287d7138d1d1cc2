"""A few POS clients debiting a :class:`StorePc` while something fails, and the check after:
every debit a till saw acknowledged is committed once in the journal and on its card, every
other one is settled (committed or provably not applied), each card moved exactly as much as
the journal says (``bench.crash_campaign.check``)."""

from __future__ import annotations

import random
import threading
import time
from types import TracebackType

from bench.crash_campaign import LANES, Ledger, StorePc, check, till


class Load:
    """``clients`` tills (threads, a gRPC channel each) over both lanes, one debit every
    ``pace_s``; they keep going through errors until the block ends."""

    def __init__(
        self, store: StorePc, uids: dict[str, str], clients: int = 3, pace_s: float = 0.02
    ) -> None:
        self.store = store
        self.uids = uids
        self.ledger = Ledger()
        self.stop = threading.Event()
        lanes = list(LANES)
        self.base = {}
        for lane in lanes:
            card = store.read(lane).card
            self.base[lane] = (card.balance.amount_fen, card.counter)
        self.threads = [
            threading.Thread(
                target=till,
                args=(
                    store,
                    lanes[n % 2],
                    uids[lanes[n % 2]],
                    self.ledger,
                    self.stop,
                    random.Random(n),
                    pace_s,
                    True,
                ),
                name=f"till-{n}",
            )
            for n in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def acknowledged(self, lane: str | None = None) -> int:
        with self.ledger.lock:
            return sum(1 for ln, _ in self.ledger.acknowledged.values() if lane in (None, ln))

    def wait_acknowledged(self, more: int, lane: str | None = None, timeout_s: float = 20) -> None:
        """Until ``more`` debits more than now were acknowledged (on ``lane``)."""
        target = self.acknowledged(lane) + more
        deadline = time.monotonic() + timeout_s
        while self.acknowledged(lane) < target:
            assert time.monotonic() < deadline, f"debits on {lane or 'any lane'} stopped"
            time.sleep(0.02)

    def refusals(self) -> list[str]:
        with self.ledger.lock:
            return list(self.ledger.refused.values())

    def verify(self) -> None:
        """Nothing lost, nothing doubled, nothing left unsettled."""
        tally = check(self.store, self.ledger, self.uids, self.base)
        assert tally.lost == [], tally.lost
        assert tally.doubled == [], tally.doubled
        assert tally.unresolved == set(), tally.unresolved_states
        assert self.acknowledged() > 0
