"""``probe``, ``dump``, ``selftest``, ``trace`` and ``card history`` as a technician runs them:
subprocesses against one served simulated store, through the daemon (never pcscd)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Store


@pytest.fixture
def gold_on_front(store: Store) -> Iterator[Store]:
    assert store.run("sim", "present", "front", "gold").code == 0
    yield store
    store.run("sim", "remove", "front")


def test_probe_names_the_card_and_reads_the_member_record_never_a_key(
    gold_on_front: Store,
) -> None:
    store = gold_on_front
    done = store.run("probe", "front", "--json")
    assert done.code == 0, done.err
    probed = done.json()
    assert probed["card"]["uid"] == "9E1A4B01"
    assert probed["block0"].startswith("9E1A4B01")
    assert probed["problem"] is False
    assert probed["member_card"]["member_id"] == "8860000000017"
    assert probed["member_card"]["tier_name"] == "金卡"
    text = store.run("probe", "readers/front")
    assert text.code == 0
    assert "member card: yes, read with this store's keys" in text.out
    assert "  balance      ¥500.00" in text.out
    assert "FFFFFFFFFFFF" not in text.out.replace(" ", "")  # no key, not even transport
    # a card absent is a card problem (1); an unknown reader is the user's (2), listing them
    absent = store.run("probe", "back")
    assert absent.code == 1
    assert absent.err.startswith("carddaemon probe: CARD_ABSENT: ")
    typo = store.run("probe", "side")
    assert typo.code == 2
    assert "READER 'side': no such reader on this PC (readers: readers/back, readers/front)" in (
        typo.err
    )
    bad = store.run("probe", "front", "--rounds", "5000")
    assert (bad.code, bad.err.strip()) == (
        2,
        "carddaemon probe: --rounds 5000: give 0..1000 round trips",
    )


def test_dump_folds_factory_sectors_writes_a_file_decode_reads(
    gold_on_front: Store, tmp_path: Path
) -> None:
    store = gold_on_front
    out = tmp_path / "gold.json"
    done = store.run("dump", "front", "--out", str(out))
    assert done.code == 0, done.err
    assert "Sectors 4-15: factory state" in done.out
    assert "4-15     -                  transport key A" in done.out
    assert "record slot 0" in done.out
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["format"] == "carddaemon-dump"
    assert written["uid"] == "9E1A4B01"
    assert written["blocks"][3] == "------------787788C1------------"  # keys unknown, not zeros
    full = store.run("dump", "front", "--all", "--json")
    sectors = full.json()["sectors"]
    assert len(sectors) == 16
    assert sectors[3]["role"] == "purse and header"
    assert store.run("decode", str(out)).code == 0  # the technician's other tool reads it
    again = store.run("dump", "front", "--out", str(out))
    assert again.code == 2
    assert "--out" in again.err
    assert "--force" in again.err
    nowhere = store.run("dump", "front", "--out", str(tmp_path / "no" / "such.json"))
    assert nowhere.code == 2
    assert "does not exist" in nowhere.err


def test_selftest_trace_and_history(gold_on_front: Store) -> None:
    store = gold_on_front
    tested = store.run("selftest", "front", "--json")
    assert tested.code == 0, tested.err
    assert tested.json()["passed"] is True
    trace = store.run("trace", "front", "--limit", "5", "--json")
    assert trace.code == 0
    exchanges = trace.json()["exchanges"]
    assert 0 < len(exchanges) <= 5
    assert all("command_hex" in x for x in exchanges)
    history = store.run("card", "history", "9E1A4B01", "--json")
    assert history.code == 0
    assert any(e["type"] == "OPERATION_TYPE_ISSUE" for e in history.json()["entries"])
    table = store.run("card", "history", "9E1A4B01")
    assert "issue" in table.out
    neither = store.run("card", "history")
    assert neither.code == 2
    assert "--member" in neither.err
