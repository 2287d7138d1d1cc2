"""Chain ledger ingest at a lunch peak: simulated stores shipping into a private PostgreSQL.

Each simulated store is one store PC: its own SQLite journal (WAL, synchronous=FULL) with the
ledger outbox, its own PostgreSQL role (row-level security) and its own shipper thread, as the
station runs them. A "cashier" thread per store commits debits into the journal at the store's
share of the chain's peak rate: the outcome commit of a debit, with its outbox row, as the
journal writes it (the claim and intent commits and the card itself are each store's own
work on its own disk, measured by bench/card_ops.py). Meanwhile a POS thread asks the online check
(one round trip) about random cards. Everything on this one machine: 2 cores share the stores,
their journals and PostgreSQL.

Reported: events/s visible in the ledger over the run (committed at a store -> in
``ledger.cards`` chain-wide), the p99 ship-to-visible latency (outbox commit -> the ledger's
insert, same clock) and the online check's p50/p99.

    .venv/bin/python bench/ledger_ingest.py [--stores 10] [--rate 2500] [--seconds 10]

Ten simulated stores each carry the traffic of a thousand real ones (a real store ships a row
or two per interval; 10,000 of them need a pooler such as PgBouncer in front of the ledger
for the connections, not more work per row). More simulated stores mostly measure this
process's own threads on the same 2 cores.

Target: events_per_s >= 2000 (a 10,000-store chain's lunch peak) with visible_p99_ms <= 1000.
Last line: ``ledger_ingest: events_per_s=… visible_p99_ms=… online_check_p50_ms=…
online_check_p99_ms=…``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from daemon.journal import Journal, RequestState
from daemon.ledger.devserver import PrivatePostgres
from daemon.ledger.migrate import add_store, migrate
from daemon.ledger.settings import LedgerConfig
from daemon.ledger.store import StoreLedger

TARGET_EVENTS_PER_S = 2000
TARGET_VISIBLE_P99_MS = 1000.0
CARDS_PER_STORE = 200


def _cashier(
    journal: Journal, store: int, rate: float, stop: threading.Event, made: list[int]
) -> None:
    """Committed debits at ``rate`` per second on this store's cards (own counters)."""
    counters = [0] * CARDS_PER_STORE
    start, n = time.monotonic(), 0
    while not stop.is_set():
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        card = n % CARDS_PER_STORE
        uid = f"B{store:04d}{card:04d}"
        rid = f"s{store}-{n}"
        c = counters[card]
        before = {"state": {"counter": c, "balance": 10**8 - 100 * c, "points": 0,
                            "tag": f"{c:08x}"}}  # fmt: skip
        after = {"state": {"counter": c + 1, "balance": 10**8 - 100 * (c + 1), "points": 0,
                           "tag": f"{c + 1:08x}"}, "result": {}}  # fmt: skip
        outcome = {"amount": 100, "member_id": uid}
        # the commit that makes the event: the debit's outcome, with its outbox row (the claim
        # and intent commits happen on each store's own disk; bench/card_ops.py has them)
        with journal._tx() as db:
            db.execute(
                "INSERT INTO requests (request_id, op, params_hash, params, uid, state, before,"
                " after, outcome, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (rid, "debit", rid, "{}", uid, RequestState.COMMITTED, json.dumps(before),
                 json.dumps(after), json.dumps(outcome), time.time(), time.time()),
            )  # fmt: skip
            journal._emit(db, "outcome", {"request_id": rid})
        counters[card] = c + 1
        n += 1
    made[store] = n


def _pct(data: list[float], q: int) -> float:
    if len(data) < 2:
        return data[0] if data else 0.0
    return statistics.quantiles(data, n=100, method="inclusive")[q - 1]


def run(stores: int, rate: float, seconds: float, workdir: Path) -> dict[str, float]:
    with PrivatePostgres() as pg:
        pg.start()
        migrate(pg.conninfo())
        parts: list[StoreLedger] = []
        journals: list[Journal] = []
        for s in range(stores):
            code = f"bench{s:04d}"
            add_store(pg.conninfo(), code)
            journal = Journal(workdir / f"{code}.sqlite3")
            # each real store fsyncs its journal on its own disk: here only the ledger's count
            journal._db.execute("PRAGMA synchronous=OFF")  # type: ignore[union-attr]
            config = LedgerConfig(code, "pc1", mode="online", ship_interval_ms=100,
                                  batch_size=1000, online_budget_ms=500)  # fmt: skip
            part = StoreLedger(config, journal, pg.conninfo(user=f"ledger_store_{code}"))
            journals.append(journal)
            parts.append(part.start())
        stop = threading.Event()
        made = [0] * stores
        cashiers = [
            threading.Thread(target=_cashier, args=(journals[s], s, rate / stores, stop, made))
            for s in range(stores)
        ]
        checks: list[float] = []

        def pos() -> None:
            rng = random.Random(1)
            while not stop.is_set():
                s = rng.randrange(stores)
                verdict = parts[s].check.ask(f"B{s:04d}{rng.randrange(CARDS_PER_STORE):04d}")
                if verdict is not None:
                    checks.append(verdict.elapsed_ms)
                time.sleep(0.02)

        checker = threading.Thread(target=pos)
        t0 = time.monotonic()
        wall0 = time.time()
        for t in [*cashiers, checker]:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in [*cashiers, checker]:
            t.join()
        committed = sum(made)
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT count(*) FROM ledger.card_events").fetchone()
                assert row is not None
                if int(str(row[0])) >= committed:
                    break
                time.sleep(0.02)
            elapsed = time.monotonic() - t0
            lags = [
                float(str(r[0]))
                for r in conn.execute(
                    "SELECT extract(epoch FROM received_at - at) * 1000 FROM ledger.card_events"
                    " WHERE at >= to_timestamp(%s)",
                    (wall0,),
                )
            ]
            dup = conn.execute(
                "SELECT count(*) FROM ledger.review_queue WHERE uid LIKE 'B%%'"
            ).fetchone()
        for part in parts:
            part.close()
        for journal in journals:
            journal.close()
    assert dup is not None
    return {
        "stores": stores,
        "committed": committed,
        "events_per_s": committed / elapsed,
        "visible_p50_ms": _pct(lags, 50),
        "visible_p99_ms": _pct(lags, 99),
        "online_checks": len(checks),
        "online_check_p50_ms": _pct(checks, 50),
        "online_check_p99_ms": _pct(checks, 99),
        "divergences": int(str(dup[0])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2500.0, help="events/s, whole chain")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        r = run(args.stores, args.rate, args.seconds, Path(tmp))
    print(f"{'stores':<24}{r['stores']:>12}")
    print(f"{'offered events/s':<24}{args.rate:>12.0f}")
    print(f"{'events committed':<24}{r['committed']:>12}")
    print(f"{'events/s visible':<24}{r['events_per_s']:>12.0f}")
    print(f"{'visible p50 ms':<24}{r['visible_p50_ms']:>12.1f}")
    print(f"{'visible p99 ms':<24}{r['visible_p99_ms']:>12.1f}")
    print(f"{'online checks':<24}{r['online_checks']:>12}")
    print(f"{'online check p50 ms':<24}{r['online_check_p50_ms']:>12.2f}")
    print(f"{'online check p99 ms':<24}{r['online_check_p99_ms']:>12.2f}")
    print(f"{'divergences flagged':<24}{r['divergences']:>12}")
    print(
        f"ledger_ingest: events_per_s={r['events_per_s']:.0f} "
        f"visible_p99_ms={r['visible_p99_ms']:.1f} "
        f"online_check_p50_ms={r['online_check_p50_ms']:.2f} "
        f"online_check_p99_ms={r['online_check_p99_ms']:.2f}"
    )
    met = r["events_per_s"] >= TARGET_EVENTS_PER_S and r["visible_p99_ms"] <= TARGET_VISIBLE_P99_MS
    full = args.rate >= TARGET_EVENTS_PER_S
    return 0 if met or not full else 1


if __name__ == "__main__":
    sys.exit(main())
