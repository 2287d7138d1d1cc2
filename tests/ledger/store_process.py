"""A store PC as its own process (``python -m tests.ledger.store_process JOURNAL CONNINFO
PREFIX N``): N committed debits on cards ``PREFIX-<i>``, shipped by the background worker as
they happen. The test kills it with SIGKILL while it ships."""

from __future__ import annotations

import sys
from pathlib import Path

from daemon.journal import Journal
from daemon.ledger.settings import LedgerConfig
from daemon.ledger.store import StoreLedger
from tests.ledger.chain import committed_debit


def main(journal_path: str, conninfo: str, prefix: str, count: int) -> None:
    journal = Journal(Path(journal_path))
    config = LedgerConfig("a", "pc-kill", ship_interval_ms=10, batch_size=50)
    StoreLedger(config, journal, conninfo).start()
    for i in range(count):
        committed_debit(journal, f"{prefix}-r{i}", f"{prefix}-{i % 20}", i // 20 + 1, 100 + i)
    print("done", flush=True)
    input()  # keep shipping until killed


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
