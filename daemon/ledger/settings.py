"""``[ledger]``: which store this PC is, how it reaches the chain ledger, and its offline rules.

::

    [ledger]
    store = "sh001"                  # the store's code (its role: ledger_store_sh001)
    terminal = "pc-1"                # this PC's name within the store (default: host name)
    mode = "offline"                 # or "online": ask the ledger before money moves
    conninfo_file = "/etc/carddaemon/ledger.conn"   # 0600, a libpq connection string
    # conninfo_credentials = true    # or: systemd LoadCredential=carddaemon-ledger:...
    sslmode = "verify-full"          # optional TLS settings added to the connection string
    sslrootcert = "/etc/carddaemon/tls/ledger-ca.crt"
    online_budget_ms = 300           # an online check slower than this falls back offline
    floor_limit = 20000              # fen a card may spend per day here without the ledger
    ship_interval_ms = 200
    batch_size = 500
    backoff_max_ms = 60000
    hotlist_pull_ms = 5000

Why the connection string lives in a file or a systemd credential, never in this file: the
config is readable by store IT and lands in support tickets; the string holds the store role's
password. It is read when the station starts and never logged (:func:`mask`).
"""

from __future__ import annotations

import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from daemon._config_table import Table
from daemon.errors import ConfigError

__all__ = ["CREDENTIAL_NAME", "MODES", "LedgerConfig", "mask", "parse_ledger", "read_conninfo"]

MODES: Final = ("offline", "online")
#: the systemd credential holding the connection string (``LoadCredential=``)
CREDENTIAL_NAME: Final = "carddaemon-ledger"
STORE_CODE: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")
_KEYS = (
    "store", "terminal", "mode", "conninfo_file", "conninfo_credentials", "sslmode",
    "sslrootcert", "sslcert", "sslkey", "online_budget_ms", "floor_limit", "ship_interval_ms",
    "batch_size", "backoff_max_ms", "hotlist_pull_ms",
)  # fmt: skip
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SECRET = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)|(://[^:/@]+:)([^@]*)(@)", re.I)


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    store: str
    terminal: str
    mode: str = "offline"
    conninfo_file: Path | None = None  # None: the systemd credential
    tls: tuple[tuple[str, str], ...] = ()  # (libpq key, value) added to the string
    online_budget_ms: int = 300
    floor_limit: int = 20_000  # fen per card per day
    ship_interval_ms: int = 200
    batch_size: int = 500
    backoff_max_ms: int = 60_000
    hotlist_pull_ms: int = 5_000

    @property
    def role(self) -> str:
        """The store's PostgreSQL login role (``carddaemon ledger add-store`` creates it)."""
        return f"ledger_store_{self.store}"


def parse_ledger(t: Table, base_dir: Path | None) -> LedgerConfig | None:
    """The ``[ledger]`` table; absent or empty: no ledger (the PC works on its journal alone)."""
    if not t.raw:
        return None
    t.only(_KEYS)
    store = t.string("store", None, max_len=32)
    if not STORE_CODE.fullmatch(store):
        t.fail("store", f"{store!r} must be 1-32 lower-case letters, digits or '_'")
    terminal = t.string("terminal", socket.gethostname() or "pc", max_len=64)
    mode = t.choice("mode", MODES, "offline", what="ledger mode")
    credentials = t.boolean("conninfo_credentials", False)
    conninfo_file: Path | None = None
    if "conninfo_file" in t.raw:
        if credentials:
            t.fail("conninfo_file", "give conninfo_file or conninfo_credentials = true, not both")
        conninfo_file = t.path("conninfo_file", None, base_dir=base_dir)
    elif not credentials:
        t.fail(
            "conninfo_file",
            "required: a file (mode 0600) holding the store's libpq connection string, or "
            f"conninfo_credentials = true for the systemd credential {CREDENTIAL_NAME}",
        )
    tls: list[tuple[str, str]] = []
    if "sslmode" in t.raw:
        tls.append(("sslmode", t.choice("sslmode", _SSLMODES, "verify-full", what="sslmode")))
    for key in ("sslrootcert", "sslcert", "sslkey"):
        if key in t.raw:
            path = t.path(key, None, base_dir=base_dir)
            if not path.is_file():
                t.fail(key, f"{str(path)!r} is not a readable file (TLS needs it)")
            tls.append((key, str(path)))
    if dict(tls).get("sslmode") == "verify-full" and "sslrootcert" not in dict(tls):
        t.fail("sslrootcert", "sslmode verify-full needs the ledger's CA certificate file")
    return LedgerConfig(
        store=store,
        terminal=terminal,
        mode=mode,
        conninfo_file=conninfo_file,
        tls=tuple(tls),
        online_budget_ms=t.integer("online_budget_ms", 300, 10, 10_000),
        floor_limit=t.integer("floor_limit", 20_000, 0, 2**31 - 1),
        ship_interval_ms=t.integer("ship_interval_ms", 200, 10, 60_000),
        batch_size=t.integer("batch_size", 500, 1, 10_000),
        backoff_max_ms=t.integer("backoff_max_ms", 60_000, 100, 3_600_000),
        hotlist_pull_ms=t.integer("hotlist_pull_ms", 5_000, 100, 3_600_000),
    )


def read_conninfo(config: LedgerConfig) -> str:
    """The connection string (plus the TLS settings), from the file or the credential.

    Errors name the config key and the file, never the content."""
    if config.conninfo_file is not None:
        key, path = "ledger.conninfo_file", config.conninfo_file
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(key, f"cannot read {str(path)!r} ({exc.strerror})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO) & ~stat.S_IRGRP:
            raise ConfigError(key, f"{str(path)!r} has mode {stat.S_IMODE(mode):04o}; use 0600")
    else:
        key = "ledger.conninfo_credentials"
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                key,
                "no systemd credentials (CREDENTIALS_DIRECTORY is not set); "
                f"add LoadCredential={CREDENTIAL_NAME}:<file> to the unit",
            )
        path = Path(directory) / CREDENTIAL_NAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(key, f"cannot read {str(path)!r} ({detail})") from None
    if not text:
        raise ConfigError(key, f"{str(path)!r} is empty; it must hold a libpq connection string")
    if "://" in text:
        raise ConfigError(key, f"{str(path)!r}: write key=value pairs (host=... user=...), "
                          "not a URI, so the TLS settings can be added")  # fmt: skip
    extra = " ".join(f"{k}={v}" for k, v in config.tls)
    return f"{text} {extra}".strip()


def mask(text: str) -> str:
    """``text`` with any password in a connection string starred (for logs and errors)."""
    return _SECRET.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(3)}***{m.group(5)}", text
    )
