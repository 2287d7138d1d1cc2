"""The check before money moves: is this card's record the newest the chain knows?

Per store (``[ledger] mode``):

* ``offline``: nothing is asked while the card's spending at this PC today stays within the
  floor limit (``floor_limit`` fen); above it the card needs the ledger's answer, and without
  one the payment is refused (``LEDGER_REQUIRED``, nothing written).
* ``online``: the ledger is asked before every value change. When it does not answer within
  ``online_budget_ms`` the offline rules apply instead, so a slow line costs at most the
  budget, never the sale.

The question is one round trip (one SELECT on card state and hotlist); its time is kept for
the metrics and the benchmark. What the ledger says is checked against what the card shows:
hotlisted or replaced chain-wide, a counter below the chain's newest (rolled back), or the
same counter with another write tag (two histories) - each refused as fraud here.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from daemon import metrics
from daemon.errors import (
    CardHotlisted,
    CardReplaced,
    CounterRollback,
    HistoryForked,
    LedgerRequired,
    LedgerUnavailable,
)
from daemon.journal import Journal
from daemon.ledger.link import LedgerLink, describe
from daemon.ledger.outbox import CHAIN_PREFIX, Outbox
from daemon.ledger.settings import LedgerConfig

__all__ = ["CardVerdict", "OnlineCheck"]

logger = logging.getLogger(__name__)

_QUERY: Final = (
    "SELECT c.last_counter, c.last_tag, c.state, c.replaced_by, h.reason, h.version,"
    " EXISTS (SELECT 1 FROM ledger.burned_records b WHERE b.uid = q.uid AND b.counter = %s"
    " AND b.tag = %s)"
    " FROM (SELECT %s::text AS uid) q LEFT JOIN ledger.cards c ON c.uid = q.uid"
    " LEFT JOIN ledger.hotlist_current h ON h.uid = q.uid"
)


@dataclass(frozen=True, slots=True)
class CardVerdict:
    """What the ledger knows of one card (``last_counter`` 0: never seen)."""

    last_counter: int
    last_tag: str | None
    state: str
    replaced_by: str | None
    hotlisted: str | None
    hotlist_version: int | None
    elapsed_ms: float
    burned: bool = False  # the record the card shows was closed as not applied somewhere


class OnlineCheck:
    """Callable as the member card service's ``chain_check(uid, counter, tag, op, amount)``."""

    def __init__(
        self,
        config: LedgerConfig,
        link: LedgerLink,
        outbox: Outbox,
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.link = link
        self.outbox = outbox
        self.journal = journal
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="ledger-check")
        self._lock = threading.Lock()
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=10_000)
        self.fallbacks = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- the question ----------------------------------------------------------------------

    def ask(
        self, uid: str, counter: int = 0, tag: str = "", budget_s: float | None = None
    ) -> CardVerdict | None:
        """The ledger's view of ``uid`` (and of the record ``counter``/``tag`` it shows), or
        None when it did not answer within the budget."""
        budget = self.config.online_budget_ms / 1000 if budget_s is None else budget_s
        future = self._pool.submit(self._query, uid, counter, tag, budget)
        try:
            return future.result(timeout=budget)
        except concurrent.futures.TimeoutError:
            logger.info("ledger: no answer for card %s within %.0f ms", uid, budget * 1000)
        except LedgerUnavailable as exc:
            logger.info("ledger: online check of card %s failed: %s", uid, exc.message)
        with self._lock:
            self.fallbacks += 1
        metrics.LEDGER_FALLBACKS.inc()
        return None

    def _query(self, uid: str, counter: int, tag: str, budget: float) -> CardVerdict:
        start = time.perf_counter()
        with self.link.connection(budget) as conn:
            try:
                row = conn.execute(_QUERY, (counter, tag, uid)).fetchone()
            except Exception as exc:
                raise LedgerUnavailable(f"online check: {describe(exc)}") from None
        elapsed = (time.perf_counter() - start) * 1000
        with self._lock:
            self.latencies_ms.append(elapsed)
        metrics.LEDGER_CHECK_SECONDS.observe(elapsed / 1000)
        assert row is not None
        last, last_tag, state, replaced_by, reason, version, burned = row
        return CardVerdict(
            int(str(last)) if last is not None else 0,
            None if last_tag is None else str(last_tag),
            str(state or "active"), None if replaced_by is None else str(replaced_by),
            None if reason is None else str(reason), None if version is None else int(str(version)),
            elapsed, bool(burned),
        )  # fmt: skip

    def percentile(self, q: float) -> float:
        with self._lock:
            data = sorted(self.latencies_ms)
        if not data:
            return 0.0
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[int(q) - 1]

    # --- the rules -------------------------------------------------------------------------

    def spent_today(self, uid: str) -> int:
        now = dt.datetime.fromtimestamp(self._clock()).astimezone()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.outbox.spent_since(uid, midnight.timestamp())

    def __call__(self, uid: str, counter: int, tag: str, op: str, amount: int) -> None:
        """Refuse (raise) or allow a value change of card ``uid`` now showing ``counter`` and
        write ``tag``; ``amount``: fen this change takes from the card (0 for top-ups)."""
        spend = amount if op == "debit" else 0
        within_floor = self.spent_today(uid) + spend <= self.config.floor_limit
        if self.config.mode == "offline" and (spend == 0 or within_floor):
            return
        verdict = self.ask(uid, counter, tag)
        if verdict is None:
            if spend and not within_floor:
                raise LedgerRequired(
                    f"card {uid}: {spend} fen would take today's spending at this PC above the "
                    f"offline floor limit of {self.config.floor_limit} fen, and the chain ledger "
                    "did not answer; nothing written (retry when the link is back)"
                )
            return  # the offline rules allow it
        self.judge(uid, counter, tag, verdict)

    def judge(self, uid: str, counter: int, tag: str, verdict: CardVerdict) -> None:
        if verdict.hotlisted is not None:
            if self.journal.hotlist_reason(uid) is None:
                self.journal.hotlist(uid, f"{CHAIN_PREFIX}: {verdict.hotlisted}")
            self.journal.audit("refused", uid=uid, detail={"reason": "CARD_HOTLISTED",
                               "source": "ledger"})  # fmt: skip
            raise CardHotlisted(f"card {uid} is on the chain hotlist ({verdict.hotlisted})")
        if verdict.state == "replaced":
            raise CardReplaced(
                f"card {uid} was replaced by card {verdict.replaced_by} (chain ledger)"
            )
        if verdict.burned:
            raise HistoryForked(
                f"card {uid} shows record {counter} with write tag {tag}, which a store closed "
                "as not applied (record hidden, refunded, then put back)"
            )
        if counter < verdict.last_counter:
            raise CounterRollback(
                f"card {uid} shows counter {counter}, the chain ledger has {verdict.last_counter}"
                " (an older copy of the card)"
            )
        if counter == verdict.last_counter and verdict.last_tag not in (None, tag):
            raise HistoryForked(
                f"card {uid} shows record {counter} with write tag {tag}; the chain ledger has "
                f"record {counter} with tag {verdict.last_tag} (two histories of one card)"
            )
