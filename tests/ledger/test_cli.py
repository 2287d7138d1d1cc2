"""``carddaemon ledger ...`` against the session's private ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.journal import Journal
from tests.ledger.chain import attach, committed_debit
from tests.ledger.conftest import Ledger


def _admin_file(ledger: Ledger, tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "admin.conn"
    path.write_text(ledger.admin + "\n")
    path.chmod(mode)
    return path


def test_migrate_again_says_the_schema_is_up_to_date(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "migrate", "--conninfo-file", str(_admin_file(ledger, tmp_path))]) == 0
    assert "schema up to date" in capsys.readouterr().out


def test_add_store_creates_its_role_and_a_bad_code_names_the_argument(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = str(_admin_file(ledger, tmp_path))
    assert main(["ledger", "add-store", "sh042", "--conninfo-file", conn, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"store": "sh042", "role": "ledger_store_sh042"}
    assert main(["ledger", "add-store", "SH 42", "--conninfo-file", conn]) == 2
    assert "CODE 'SH 42': must be 1-32 lower-case" in capsys.readouterr().err


def test_a_conninfo_file_others_can_read_is_refused_naming_the_flag(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = str(_admin_file(ledger, tmp_path, 0o644))
    assert main(["ledger", "migrate", "--conninfo-file", conn]) == 2
    err = capsys.readouterr().err
    assert "--conninfo-file" in err
    assert "mode 0644; use 0600" in err


def test_review_lists_the_open_divergences(
    ledger: Ledger, tmp_path: Path, fresh_uid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = f"CLI{fresh_uid}"
    for store, tag in (("a", None), ("b", "0badc0de")):  # one counter, two stores: a fork
        with Journal(tmp_path / f"{store}.db") as journal:
            part = attach(ledger, journal, store)
            try:
                committed_debit(journal, f"x-{store}", uid, 4, 100, tag=tag)
                part.shipper.flush()
            finally:
                part.close()
    conn = str(_admin_file(ledger, tmp_path))
    assert main(["ledger", "review", "--conninfo-file", conn, "--json"]) == 0
    found = [i for i in json.loads(capsys.readouterr().out)["open"] if i["uid"] == uid]
    assert {i["reason"] for i in found} >= {"HISTORY_FORKED"}
    assert main(["ledger", "review", "--conninfo-file", conn]) == 0
    assert uid in capsys.readouterr().out


def test_status_shows_the_outbox_of_this_pc(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.toml"
    from daemon.keystore import Keystore

    Keystore.create_file(keys)
    conn = tmp_path / "ledger.conn"
    conn.write_text(ledger.store("a"))
    conn.chmod(0o600)
    config = tmp_path / "carddaemon.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\nkeystore_file = "{keys}"\n\n'
        f'[ledger]\nstore = "a"\nterminal = "pc-9"\nconninfo_file = "{conn}"\n'
    )
    with Journal(tmp_path / "journal.sqlite3") as journal:
        part = attach(ledger, journal, "a")
        try:
            committed_debit(journal, "st-1", "ST1", 1, 100)
            committed_debit(journal, "st-2", "ST1", 2, 100)
        finally:
            part.close()
    assert main(["ledger", "status", "--config", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["backlog"] == 2
    assert status["terminal"] == "pc-9"


def test_unhotlist_after_review_reaches_the_stores(
    ledger: Ledger, tmp_path: Path, fresh_uid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = f"UH{fresh_uid}"
    conn = str(_admin_file(ledger, tmp_path))
    with Journal(tmp_path / "a.db") as journal:
        part = attach(ledger, journal, "a")
        try:
            journal.hotlist(uid, "COUNTER_ROLLBACK")  # this store's own fraud check
            part.shipper.flush()
            assert journal.hotlist_reason(uid) == "COUNTER_ROLLBACK"
            with Journal(tmp_path / "b.db") as other:
                b = attach(ledger, other, "b")
                try:
                    b.shipper.flush()
                    assert str(other.hotlist_reason(uid)).startswith("chain hotlist v")
                    assert main(["ledger", "unhotlist", uid, "--note", "card checked: genuine",
                                 "--conninfo-file", conn]) == 0  # fmt: skip
                    b.shipper.flush()
                    assert other.hotlist_reason(uid) is None  # the chain's entry is gone
                finally:
                    b.close()
            part.shipper.flush()
            assert journal.hotlist_reason(uid) == "COUNTER_ROLLBACK"  # its own entry stays
        finally:
            part.close()
    assert main(["ledger", "unhotlist", uid, "--note", "again", "--conninfo-file", conn]) == 1
    assert "not on the chain hotlist" in capsys.readouterr().err
