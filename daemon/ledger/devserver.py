"""A private PostgreSQL for tests, the chain demo and the ingest benchmark.

Why here and not in a test helper: the tests, ``carddaemon-demo chain`` and
``bench/ledger_ingest.py`` all need the same throw-away server, and none of them may start
anything else. It is Debian's PostgreSQL run from a temporary directory: ``initdb`` there,
Unix socket only (``listen_addresses=''``, no TCP port, so parallel runs never clash), trust
authentication (tests only: a real ledger uses scram-sha-256 or client certificates) and
``fsync=on`` (a test kills it and checks that nothing committed was lost).

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user. The
postmaster is this process's child and dies with the thread that started it (parent-death
signal), so a killed test run leaves no server behind.

A test of the network path (TLS, scram-sha-256) asks for more: ``tcp_port`` adds a listener
on 127.0.0.1 (the Unix socket stays, for the admin), ``settings`` are extra ``-c`` options
(``ssl=on``, the certificate files put in place with :meth:`PrivatePostgres.install`) and
``hba`` replaces ``pg_hba.conf``.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from daemon.errors import LedgerError

__all__ = ["ADMIN", "PrivatePostgres", "server_bin_dir"]

#: the bootstrap superuser of a private server (the chain's data centre role, never a store's)
ADMIN = "ledger_admin"
_PR_SET_PDEATHSIG = 1
_INSTALL_HINT = (
    "PostgreSQL server binaries not found (initdb, postgres under /usr/lib/postgresql/*/bin); "
    "`make test` installs Debian's postgresql package"
)


def server_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and postgres."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    for initdb in reversed(found):
        bindir = Path(initdb).parent
        if (bindir / "postgres").is_file():
            return bindir
    raise LedgerError(_INSTALL_HINT)


def _demote(user: pwd.struct_passwd | None) -> None:
    """In the child before exec: become ``user`` (root only), then die with our thread.

    The parent-death signal is set after the user change: changing credentials clears it."""
    os.setsid()
    if user is not None:
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PrivatePostgres:
    """``start()`` a fresh cluster; ``kill()`` it as a crash would; ``start()`` it again on
    the same data; ``close()`` stops it and removes the directory. A context manager."""

    def __init__(
        self,
        *,
        database: str = "ledger",
        tcp_port: int | None = None,
        settings: Mapping[str, str] | None = None,
        hba: str | None = None,
    ) -> None:
        self.bindir = server_bin_dir()
        self.database = database
        self.tcp_port = tcp_port
        self._settings = dict(settings or {})
        self._hba = hba
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        # the postgres user must reach the directory: a private TMPDIR (mode 0700, root's)
        # would hide it, so as root the server lives directly under /tmp
        base = "/tmp" if self._user is not None else None  # noqa: S108 - own 0700 dir inside
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-pg-", dir=base))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._initialised = False
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)

    @property
    def host(self) -> str:
        """The socket directory: libpq's ``host`` for a Unix socket."""
        return str(self.dir)

    def conninfo(self, user: str = ADMIN, dbname: str | None = None) -> str:
        port = f" port={self.tcp_port}" if self.tcp_port is not None else ""
        return f"host={self.host}{port} user={user} dbname={dbname or self.database}"

    def install(self, name: str, content: bytes, mode: int = 0o600) -> Path:
        """Write ``name`` into the server's directory, owned by the server's user (a TLS key
        must be, with mode 0600, or postgres refuses to start)."""
        path = self.dir / name
        path.write_bytes(content)
        path.chmod(mode)
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _run(self, *args: str) -> None:
        done = subprocess.run(  # noqa: S603 - fixed binaries from server_bin_dir()
            args, preexec_fn=lambda: _demote(self._user), capture_output=True, check=False,
            cwd=self.dir,
        )  # fmt: skip
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace")
            raise LedgerError(f"{Path(args[0]).name} failed: {error}")

    def start(self, timeout_s: float = 30.0) -> Self:
        if self.running:
            return self
        if not self._initialised:
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", ADMIN, "-E", "UTF8", "--no-sync", "--locale=C")  # fmt: skip
            self._initialised = True
            if self._hba is not None:
                (self.data / "pg_hba.conf").write_text(self._hba)
        options = [f"{key}={value}" for key, value in self._settings.items()]
        if self.tcp_port is not None:
            options += ["listen_addresses=127.0.0.1", f"port={self.tcp_port}"]
        log = self.log.open("ab")
        try:
            self._proc = subprocess.Popen(  # noqa: S603
                [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.dir),
                 "-c", "listen_addresses=", "-c", "fsync=on", "-c", "max_connections=200",
                 "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
                 "-c", "timezone=UTC", *(a for o in options for a in ("-c", o))],
                preexec_fn=lambda: _demote(self._user), stdout=log, stderr=log, cwd=self.dir,
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready(timeout_s)
        self._ensure_database()
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise LedgerError(f"postgres exited at start; see {self.log}")
            try:
                psycopg.connect(self.conninfo(dbname="postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise LedgerError(
                        f"postgres not ready after {timeout_s} s; see {self.log}"
                    ) from None
                time.sleep(0.05)

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(dbname="postgres"), autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash: committed work must survive, clients see errors)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._proc = None
        time.sleep(0.2)  # backends notice the postmaster's death and exit

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, nothing is lost."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
