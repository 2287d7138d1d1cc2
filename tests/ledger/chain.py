"""Two store PCs on one chain ledger: each a terminal (own journal, simulated reader) with its
own store role, outbox, shipper and online check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.ledger.settings import LedgerConfig
from daemon.ledger.store import StoreLedger
from tests.ledger.conftest import Ledger
from tests.membercard.terminal import Terminal, terminal

UNREACHABLE = "host=/nonexistent-ledger-dir user=nobody dbname=ledger connect_timeout=1"


@contextmanager
def store_pc(
    ledger: Ledger,
    keystore: Keystore,
    path: Path,
    store: str,
    *,
    mode: str = "online",
    floor_limit: int = 20_000,
    reachable: bool = True,
    start: bool = False,
) -> Iterator[tuple[Terminal, StoreLedger]]:
    """A terminal of store ``store`` with its ledger part (the worker not started unless
    ``start``: tests ship with ``flush()`` at the moments they choose)."""
    with terminal(keystore, path) as term:
        part = attach(ledger, term.journal, store, mode=mode, floor_limit=floor_limit,
                      reachable=reachable)  # fmt: skip
        term.service.chain_check = part.check
        if start:
            part.start()
        try:
            yield term, part
        finally:
            part.close()


def attach(
    ledger: Ledger,
    journal: Journal,
    store: str,
    *,
    mode: str = "online",
    floor_limit: int = 20_000,
    reachable: bool = True,
    budget_ms: int = 500,
    batch_size: int = 500,
) -> StoreLedger:
    config = LedgerConfig(store, "pc1", mode=mode, floor_limit=floor_limit,
                          online_budget_ms=budget_ms, ship_interval_ms=20,
                          backoff_max_ms=200, batch_size=batch_size)  # fmt: skip
    return StoreLedger(config, journal, ledger.store(store) if reachable else UNREACHABLE)


def admin_rows(ledger: Ledger, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(ledger.admin) as conn:
        return conn.execute(query, args).fetchall()


def reviews(ledger: Ledger, uid: str) -> set[str]:
    return {r[0] for r in admin_rows(ledger, "SELECT reason FROM ledger.review_queue WHERE uid=%s",
                                     uid)}  # fmt: skip


def chain_hotlisted(ledger: Ledger, uid: str) -> bool:
    return bool(admin_rows(ledger, "SELECT 1 FROM ledger.hotlist_current WHERE uid=%s", uid))


def rewind(journal: Journal) -> None:
    """Forget every confirmation of the ledger (a PC restored from an old backup)."""
    with journal._tx() as db:
        db.execute("UPDATE ledger_meta SET value=0 WHERE key='shipped_seq'")


def committed_debit(
    journal: Journal, rid: str, uid: str, counter: int, amount: int, tag: str | None = None
) -> None:
    """A committed debit in the journal as a card write leaves it (no card needed: the outbox
    and shipper only see the journal)."""
    with journal.claim(rid, "debit", {"amount": amount}) as claim:
        assert claim.action == "execute"
        journal.record_intent(
            rid, uid,
            {"state": {"counter": counter, "balance": 10**9, "points": 0, "tag": f"{counter:08x}"}},
            {"state": {"counter": counter + 1, "balance": 10**9 - amount, "points": 0,
                       "tag": tag or f"{counter + 1:08x}"}, "result": {}},
        )  # fmt: skip
        journal.finish(rid, RequestState.COMMITTED, {"amount": amount, "member_id": "m-" + uid})
