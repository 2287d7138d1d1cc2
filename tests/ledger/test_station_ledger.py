"""A station with ``[ledger]``: its shipper runs from start to close and ships on its own; a
connection file others can read stops the start, named by its key."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.membercard.requests import Debit, IssueCard, IssueSpec
from daemon.station import Station
from demo.folder import make_store_folder
from sim.backend import SimBackend
from sim.store import transport_card
from tests.ledger.chain import admin_rows
from tests.ledger.conftest import Ledger
from tests.membercard.terminal import uid_for


def _folder(ledger: Ledger, tmp_path: Path, mode: int = 0o600) -> Path:
    config = make_store_folder(tmp_path / "store")
    conn = config.parent / "ledger.conn"
    conn.write_text(ledger.store("a"))
    conn.chmod(mode)
    with config.open("a") as f:
        f.write('\n[ledger]\nstore = "a"\nterminal = "lane-1"\nconninfo_file = "ledger.conn"\n'
                "ship_interval_ms = 20\n")  # fmt: skip
    return config


def test_the_station_ships_by_itself_while_it_runs(
    ledger: Ledger, tmp_path: Path, fresh_uid: int
) -> None:
    uid = uid_for(fresh_uid)
    with Station.from_config(_folder(ledger, tmp_path)) as station:
        station.start()
        assert station.ledger is not None
        assert station.ledger.shipper.alive
        station.wait_for_reader("front")
        backend = station.backend
        assert isinstance(backend, SimBackend)
        backend.readers[0].insert(transport_card(uid))
        spec = IssueSpec("8860000000042", tier=1, valid_until=dt.date(2030, 1, 1), balance=9_000)
        station.card("front", IssueCard(spec, request_id="st-issue"))
        station.card("front", Debit("st-pay", 1_234))
        deadline = time.monotonic() + 10
        query = "SELECT op, amount, terminal FROM ledger.card_events WHERE uid=%s ORDER BY counter"
        while len(rows := admin_rows(ledger, query, uid.hex().upper())) < 2:
            assert time.monotonic() < deadline, "the station's shipper shipped nothing"
            time.sleep(0.02)
        assert rows == [("issue", 0, "lane-1"), ("debit", 1_234, "lane-1")]
        assert not [p for p in station.health(15.0) if "ledger" in p]
        shipper = station.ledger.shipper
    assert not shipper.alive  # stopped with the station


def test_a_connection_file_others_can_read_stops_the_start(ledger: Ledger, tmp_path: Path) -> None:
    station = Station.from_config(_folder(ledger, tmp_path, 0o644))
    with pytest.raises(ConfigError, match="mode 0644") as caught:
        station.start()
    assert caught.value.key == "ledger.conninfo_file"
    assert not station.running
