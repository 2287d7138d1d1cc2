"""The store's connection to the chain ledger: one small psycopg pool, errors made ours.

Why a pool: the shipper and the online check each need a connection, and after the ledger
restarts (or the store's line comes back) a broken connection must be replaced without anybody
noticing; psycopg-pool does exactly that in the background. Every driver error becomes
:class:`~daemon.errors.LedgerUnavailable` with the connection string's password starred: the
string itself is never logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, Self

from daemon.errors import LedgerUnavailable
from daemon.ledger.settings import mask

if TYPE_CHECKING:
    import psycopg

__all__ = ["LedgerLink", "describe"]

logger = logging.getLogger(__name__)
# the pool logs every failed reconnection (every few seconds for a day offline); the shipper
# logs the link's state once per change instead
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

#: what a refused connection means in the store's config words (libpq text -> what to check)
_HINTS: Final = (
    ("password authentication failed", "check the store role's password in the connection "
     "string (ledger.conninfo_file or the systemd credential)"),
    ("certificate verify failed", "the ledger's certificate is not signed by the CA in "
     "ledger.sslrootcert"),
    ("does not match host name", "the host in the connection string is not a name the "
     "ledger's certificate carries"),
    ("no encryption", 'the ledger accepts TLS only: set ledger.sslmode = "verify-full"'),
)  # fmt: skip


def describe(exc: BaseException) -> str:
    """One line for a driver error: its class and first line, passwords starred."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return mask(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _why_refused(exc: BaseException) -> str:
    """:func:`describe`, plus what to check when the cause is a setting of the store's."""
    text = describe(exc)
    hints = [hint for words, hint in _HINTS if words in text]
    return f"{text}; {hints[0]}" if hints else text


class LedgerLink:
    """``connection(timeout_s)`` hands out a pooled autocommit connection; ``close()`` ends it.

    The pool opens in the background: a store whose ledger is down starts anyway."""

    def __init__(
        self,
        conninfo: str,
        *,
        size: int = 2,
        connect_timeout_s: int = 5,
        reconnect_timeout_s: float = 60.0,
    ) -> None:
        """``reconnect_timeout_s``: how long the pool's own retries (1 s, 2 s, 4 s ...) go on
        before it gives up until the next request; kept short, so that after a long outage
        the shipper's backoff, not a pool retry hours away, decides when to try again."""
        import psycopg
        from psycopg_pool import ConnectionPool

        #: why the pool's last attempt to connect failed (None after a success), passwords starred
        self.last_connect_error: str | None = None
        link = self

        class _Connection(psycopg.Connection[tuple[Any, ...]]):
            """Remembers why connecting failed. The pool connects in the background and keeps
            the driver's error only for its (silenced) log, so without this a wrong password,
            an untrusted certificate or a refused plain connection would all read "no
            connection within N ms" and the store technician could not tell them apart."""

            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                try:
                    conn = super().connect(conninfo, **kwargs)
                except psycopg.Error as exc:
                    link.last_connect_error = _why_refused(exc)
                    raise
                link.last_connect_error = None
                return conn

        self._pool = ConnectionPool(
            conninfo,
            connection_class=_Connection,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout_s,
                    "application_name": "carddaemon"},
            open=False,
            name="ledger",
            num_workers=1,
            reconnect_timeout=reconnect_timeout_s,
        )  # fmt: skip
        self._pool.open(wait=False)
        self._closed = False

    @contextlib.contextmanager
    def connection(self, timeout_s: float) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        import psycopg
        from psycopg_pool import PoolTimeout

        if self._closed:
            raise LedgerUnavailable("the ledger link is closed")
        try:
            with self._pool.connection(timeout=timeout_s) as conn:
                yield conn
        except PoolTimeout:
            why = self.last_connect_error
            raise LedgerUnavailable(
                f"no connection to the chain ledger within {timeout_s * 1000:.0f} ms"
                + (f" (last attempt: {why})" if why else "")
            ) from None
        except psycopg.Error as exc:
            raise LedgerUnavailable(f"chain ledger: {describe(exc)}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close(timeout=5)
