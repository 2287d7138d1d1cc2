"""The chain ledger: every store's journal in one PostgreSQL, so that a card rolled back,
cloned or replaced is caught at every store (docs/ledger.md).

Importing this package imports no database driver: psycopg is loaded by the modules that
talk to PostgreSQL, only when a ``[ledger]`` section is configured or a ledger command runs.
"""

from __future__ import annotations

__all__: list[str] = []
