"""One private PostgreSQL per test session (initdb in a temporary directory, Unix socket only,
stopped at the end), migrated, with two stores ``a`` and ``b``. Never skipped: without the
server binaries the session fails, saying that ``make test`` installs them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from daemon.ledger.devserver import PrivatePostgres
from daemon.ledger.migrate import add_store, migrate

_UIDS = itertools.count(7000)


@dataclass
class Ledger:
    pg: PrivatePostgres

    @property
    def admin(self) -> str:
        return self.pg.conninfo()

    def store(self, code: str) -> str:
        """The connection string of store ``code``'s own role (what its PC holds)."""
        return self.pg.conninfo(user=f"ledger_store_{code}")


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    with PrivatePostgres() as pg:
        pg.start()
        migrate(pg.conninfo())
        for code in ("a", "b"):
            add_store(pg.conninfo(), code)
        yield Ledger(pg)


@pytest.fixture
def fresh_uid() -> int:
    """A card number no other test of the session used (the ledger is shared)."""
    return next(_UIDS)
