"""The background worker that ships the outbox to the chain ledger and pulls the hotlist back.

Why one thread, strictly in order, with backoff: a store's events must reach the ledger in the
order they happened (a rollback is judged against the card's newest record), and a store whose
line is down for a day must keep selling without hammering the ledger, then catch up at the
first chance. One batch is one PostgreSQL transaction; only after it commits does the outbox
move on, so a crash on either side sends a batch again at worst, and the ledger's unique keys
make that harmless: nothing is lost, nothing counts twice.

The hotlist comes back by version: only what changed since the version this PC has.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from daemon import metrics
from daemon.errors import LedgerError, LedgerUnavailable
from daemon.journal import Journal
from daemon.ledger.link import LedgerLink, describe
from daemon.ledger.outbox import CHAIN_PREFIX, Outbox, OutboxRow
from daemon.ledger.settings import LedgerConfig

__all__ = ["Shipper"]

logger = logging.getLogger(__name__)

# one statement per batch: the columns as arrays, unnested by the server (a row each)
_EVENT_SQL: Final = (
    "INSERT INTO ledger.card_events (uid, counter, tag, at, store_id, terminal, store_seq,"
    " request_id, op, prev_counter, prev_tag, amount, balance_before, balance_after,"
    " points_before, points_after, member_id) SELECT * FROM unnest("
    "%s::text[], %s::int[], %s::text[], %s::timestamptz[], %s::int[], %s::text[], %s::bigint[],"
    " %s::text[], %s::text[], %s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[],"
    " %s::bigint[], %s::bigint[], %s::text[]) ON CONFLICT DO NOTHING"
)
_REPORT_SQL: Final = (
    "INSERT INTO ledger.store_reports (store_id, terminal, store_seq, kind, uid, member_id,"
    " detail, at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING"
)
_HOTLIST_SQL: Final = (
    "SELECT version, uid, action, reason FROM ledger.hotlist WHERE version > %s"
    " ORDER BY version LIMIT 1000"
)


def _at(row: OutboxRow) -> dt.datetime:
    return dt.datetime.fromtimestamp(row.at, dt.UTC)


class Shipper:
    """``start()`` the worker; ``ship_once()``/``pull_hotlist()`` do one step now (tests,
    reconciliation); ``close()`` stops it (what is not shipped stays in the outbox)."""

    def __init__(
        self, config: LedgerConfig, outbox: Outbox, link: LedgerLink, journal: Journal
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.link = link
        self.journal = journal
        self._store_id: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = threading.Lock()  # one ship/pull at a time (worker or caller)
        self.failures = 0
        self.last_error: str | None = None
        self.shipped_rows = 0
        # how long one step waits for a connection: at most 5 s, less with a short backoff
        self._connect_s = max(0.5, min(5.0, config.backoff_max_ms / 1000))
        outbox.wake = self._wake.set

    # --- one step ------------------------------------------------------------------------

    def _store(self, conn: Any) -> int:
        if self._store_id is None:
            row = conn.execute(
                "SELECT id FROM ledger.stores WHERE role_name = current_user"
            ).fetchone()
            if row is None:
                raise LedgerError(
                    f"the ledger knows no store for this login (expected role "
                    f"{self.config.role}); run `carddaemon ledger add-store {self.config.store}`"
                )
            self._store_id = int(row[0])
        return self._store_id

    def ship_once(self) -> int:
        """Ship the next batch in one transaction; returns how many rows were confirmed."""
        with self._step:
            rows = self.outbox.pending(self.config.batch_size)
            if not rows:
                return 0
            with self.link.connection(self._connect_s) as conn:
                try:
                    store = self._store(conn)
                    with conn.transaction(), conn.cursor() as cur:
                        events = [self._event_args(store, r) for r in rows if r.kind == "event"]
                        reports = [self._report_args(store, r) for r in rows if r.kind != "event"]
                        if events:
                            cur.execute(_EVENT_SQL, [list(c) for c in zip(*events, strict=True)])
                        if reports:
                            cur.executemany(_REPORT_SQL, reports)
                except LedgerError:
                    raise
                except Exception as exc:
                    raise LedgerUnavailable(f"shipping to the ledger: {describe(exc)}") from None
            self.outbox.mark_shipped(rows[-1].seq)
            self.shipped_rows += len(rows)
            metrics.LEDGER_SHIPPED.inc(len(rows))
            return len(rows)

    def _event_args(self, store: int, row: OutboxRow) -> tuple[object, ...]:
        b = row.body
        return (
            b["uid"], b["counter"], b["tag"], _at(row), store, self.config.terminal, row.seq,
            b["request_id"], b["op"], b["prev_counter"], b["prev_tag"], b["amount"],
            b["balance_before"], b["balance_after"], b["points_before"], b["points_after"],
            b["member_id"],
        )  # fmt: skip

    def _report_args(self, store: int, row: OutboxRow) -> tuple[object, ...]:
        from psycopg.types.json import Jsonb

        detail = {k: v for k, v in row.body.items() if k not in ("kind", "member_id")}
        return (
            store, self.config.terminal, row.seq, row.body["kind"], row.uid,
            row.body.get("member_id"), Jsonb(detail), _at(row),
        )  # fmt: skip

    def pull_hotlist(self) -> int:
        """Apply what changed on the chain hotlist since this PC's version; returns how many."""
        with self._step:
            have = self.outbox.hotlist_version
            with self.link.connection(self._connect_s) as conn:
                try:
                    rows = conn.execute(_HOTLIST_SQL, (have,)).fetchall()
                except Exception as exc:
                    raise LedgerUnavailable(f"pulling the hotlist: {describe(exc)}") from None
            self._apply(rows)
            return len(rows)

    def _apply(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for version, uid, action, reason in rows:
            local = self.journal.hotlist_reason(str(uid))
            if action == "add" and local is None:
                self.journal.hotlist(str(uid), f"{CHAIN_PREFIX} v{version}: {reason}")
            elif action == "remove" and local is not None and local.startswith(CHAIN_PREFIX):
                self.journal.unhotlist(str(uid), f"{CHAIN_PREFIX} v{version}: {reason}")
            self.outbox.set_hotlist_version(int(version))

    def flush(self, timeout_s: float = 10.0) -> None:
        """Ship everything and pull the hotlist now (reconciliation); raises when the ledger
        cannot be reached within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                while self.ship_once():
                    pass
                self.pull_hotlist()
                return
            except LedgerUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # --- the worker ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-shipper", daemon=True)
            self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        interval = self.config.ship_interval_ms / 1000
        pull_every = self.config.hotlist_pull_ms / 1000
        next_pull = 0.0
        while not self._stop.is_set():
            try:
                while self.ship_once() and not self._stop.is_set():
                    pass
                if time.monotonic() >= next_pull:
                    self.pull_hotlist()
                    next_pull = time.monotonic() + pull_every
                if self.failures:
                    logger.info("ledger: link back after %d failed attempts", self.failures)
                self.failures, self.last_error = 0, None
                self._wake.wait(interval)
                self._wake.clear()
            except Exception as exc:  # the worker never dies: it waits and tries again
                self.failures += 1
                text = exc.message if isinstance(exc, LedgerError) else describe(exc)
                if text != self.last_error:
                    logger.warning("ledger: %s (backlog %d; retrying)", text, self._backlog())
                self.last_error = text
                self._stop.wait(self._backoff())

    def _backlog(self) -> int:
        try:
            return self.outbox.backlog()
        except Exception:
            return -1

    def _backoff(self) -> float:
        """Exponential from the ship interval up to ``backoff_max_ms``, with jitter (10 000
        stores coming back after an outage must not all knock at once)."""
        base = self.config.ship_interval_ms / 1000
        cap = self.config.backoff_max_ms / 1000
        delay = min(cap, base * 2 ** min(self.failures, 20))
        return float(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not crypto

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
