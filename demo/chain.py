"""``carddaemon-demo chain``: two stores of one chain, one card dump, and the chain ledger.

A fraudster's classic against store PCs that only know their own journal: dump the member
card, spend at store A, write the dump back, spend again at store B. Each PC only ever sees
its own counter go up. Here both stores are real stations (``demo/store.toml`` with a
``[ledger]`` section, simulated readers) shipping to one chain ledger - a private PostgreSQL
started for the demo (Unix socket only, removed at the end): store B asks the ledger before
money moves and refuses the restored card; the refusal goes into the review queue and the card
onto the chain hotlist, which store A pulls back.

    carddaemon-demo chain [--offline]

``--offline``: store B runs ``mode = "offline"`` with its line down: it accepts the dump up to
the card's floor limit, and the ledger catches the card when B's events arrive.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

from daemon.errors import CardDaemonError
from daemon.ledger.devserver import PrivatePostgres
from daemon.ledger.migrate import add_store, migrate
from daemon.ledger.settings import LedgerConfig
from daemon.ledger.store import StoreLedger
from daemon.membercard.requests import Debit, IssueCard, IssueSpec
from daemon.station import Station
from demo.folder import make_store_folder
from sim.backend import SimBackend
from sim.card import SimCard
from sim.reader import SimReader
from sim.store import transport_card

__all__ = ["main"]

UID = bytes.fromhex("04C4A1B2")
MEMBER = "8860123409999"
FLOOR = 20_000


def _store(folder: Path, code: str, conninfo: str, mode: str, keys: Path | None) -> Station:
    """A store PC from the demo store's config plus ``[ledger]``; ``keys``: the chain's key
    file (every store of a chain holds the same master keys)."""
    config = make_store_folder(folder)
    if keys is not None:
        shutil.copyfile(keys, folder / "keys.toml")
    conn = folder / "ledger.conn"
    conn.write_text(conninfo + "\n")
    conn.chmod(0o600)
    with config.open("a") as f:
        f.write(
            f'\n[ledger]\nstore = "{code}"\nterminal = "till-1"\nmode = "{mode}"\n'
            f'conninfo_file = "ledger.conn"\nfloor_limit = {FLOOR}\n'
            "ship_interval_ms = 50\nhotlist_pull_ms = 200\nonline_budget_ms = 300\n"
            "backoff_max_ms = 1000\n"
        )
    station = Station.from_config(config).start()
    station.wait_for_reader("front")
    return station


def _reader(station: Station) -> SimReader:
    assert isinstance(station.backend, SimBackend)
    return station.backend.readers[0]


def _flush(station: Station) -> None:
    assert station.ledger is not None
    station.ledger.shipper.flush()


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f} 元"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carddaemon-demo chain", description=__doc__)
    parser.add_argument("--offline", action="store_true", help="store B offline, line down")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="carddaemon-chain-") as tmp, PrivatePostgres() as pg:
        print("chain ledger: private PostgreSQL on a Unix socket, migrating ...")
        pg.start()
        migrate(pg.conninfo())
        for code in ("a", "b"):
            add_store(pg.conninfo(), code, name=f"store {code.upper()}")
        b_conn = pg.conninfo(user="ledger_store_b")
        if args.offline:
            b_conn = "host=/nonexistent user=ledger_store_b dbname=ledger connect_timeout=1"
        a = _store(Path(tmp) / "a", "a", pg.conninfo(user="ledger_store_a"), "online", None)
        mode = "offline" if args.offline else "online"
        b = _store(Path(tmp) / "b", "b", b_conn, mode, Path(tmp) / "a" / "keys.toml")
        try:
            _story(pg, a, b, args.offline)
        finally:
            a.close()
            b.close()
    return 0


def _story(pg: PrivatePostgres, a: Station, b: Station, offline: bool) -> None:
    uid = UID.hex().upper()
    _reader(a).insert(transport_card(UID))
    spec = IssueSpec(MEMBER, tier=2, valid_until=dt.date(2030, 12, 31), balance=50_000)
    a.card("front", IssueCard(spec, request_id="chain-issue"))
    print(f"store A: card {uid} issued to member {MEMBER} with {_yuan(50_000)}")
    card = _reader(a).card
    assert card is not None
    dump = card.memory
    print("fraudster: dumps the card (1 KiB image)")
    paid = a.card("front", Debit("chain-a-1", 30_000))
    print(f"store A: pays {_yuan(30_000)}; card balance {_yuan(paid.balance)}")
    _flush(a)
    print("store A: shipped to the chain ledger")
    _reader(a).remove()
    _reader(b).insert(SimCard(UID, memory=dump))
    print(f"fraudster: writes the dump back ({_yuan(50_000)} on the card again), goes to store B")
    for n, amount in enumerate((15_000, 15_000), start=1):
        try:
            got = b.card("front", Debit(f"chain-b-{n}", amount))
            print(f"store B: pays {_yuan(amount)} (offline floor limit {_yuan(FLOOR)} per day);"
                  f" card balance {_yuan(got.balance)}")  # fmt: skip
        except CardDaemonError as exc:
            print(f"store B: REFUSED {_yuan(amount)} - {exc}")
            if not offline:
                break
    if offline:
        print("store B: the line comes back; its events are shipped")
        assert b.ledger is not None
        b.ledger.close()
        b.ledger = None
        assert b.journal is not None
        b_conn = pg.conninfo(user="ledger_store_b")
        back = StoreLedger(LedgerConfig("b", "till-1"), b.journal, b_conn)
        back.shipper.flush()
        back.close()
    else:
        _flush(b)
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT r.reason, s.code, r.detail FROM ledger.review_queue r"
            " LEFT JOIN ledger.stores s ON s.id = r.store_id WHERE r.uid = %s ORDER BY r.id",
            (uid,),
        ).fetchall()
        listed = conn.execute(
            "SELECT version, reason FROM ledger.hotlist_current WHERE uid = %s", (uid,)
        ).fetchone()
    print("chain ledger review queue:")
    for reason, store, detail in rows:
        print(f"  {reason:<18} store {store}  {detail}")
    if listed is not None:
        print(f"chain hotlist v{listed[0]}: {uid} ({listed[1]})")
    _flush(a)
    assert a.journal is not None
    print(f"store A: hotlist pulled back; card {uid} blocked here: {a.journal.hotlist_reason(uid)}")
    print("caught: the rollback between two stores" if rows else "NOT caught")
