"""``[ledger]`` in the config file: each mistake named by its key; the connection string comes
from a private file or a systemd credential and never shows in an error or a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from daemon.config import parse_config
from daemon.errors import ConfigError
from daemon.ledger.link import describe
from daemon.ledger.settings import LedgerConfig, mask, read_conninfo

SECRET = "s3cr3t-PW"


def _config(tmp_path: Path, ledger: str) -> str:
    return f'[daemon]\nkeystore_file = "{tmp_path}/keys.toml"\n\n[ledger]\n{ledger}\n'


def _conn_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "ledger.conn"
    path.write_text(f"host=/run/ledger user=ledger_store_sh01 password={SECRET} dbname=ledger\n")
    path.chmod(mode)
    return path


def test_a_full_ledger_section_is_read(tmp_path: Path) -> None:
    conn = _conn_file(tmp_path)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    text = _config(tmp_path, f'store = "sh01"\nterminal = "pc-2"\nmode = "online"\n'
                   f'conninfo_file = "{conn}"\nsslmode = "verify-full"\n'
                   f'sslrootcert = "{tmp_path}/ca.crt"\nfloor_limit = 5000\n')  # fmt: skip
    config = parse_config(text, base_dir=tmp_path).ledger
    assert config is not None
    assert (config.store, config.terminal, config.mode, config.floor_limit) == (
        "sh01", "pc-2", "online", 5000
    )  # fmt: skip
    assert config.role == "ledger_store_sh01"
    info = read_conninfo(config)
    assert info.endswith(f"sslmode=verify-full sslrootcert={tmp_path}/ca.crt")
    assert SECRET in info


def test_no_ledger_section_means_no_ledger(tmp_path: Path) -> None:
    text = f'[daemon]\nkeystore_file = "{tmp_path}/keys.toml"\n'
    assert parse_config(text, base_dir=tmp_path).ledger is None


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('mode = "online"\nconninfo_credentials = true', "ledger.store", "required"),
        ('store = "SH 1"\nconninfo_credentials = true', "ledger.store", "lower-case"),
        (
            'store = "a"\nmode = "sometimes"\nconninfo_credentials = true',
            "ledger.mode",
            "unknown ledger mode 'sometimes'",
        ),
        ('store = "a"', "ledger.conninfo_file", "required"),
        (
            'store = "a"\nconninfo_credentials = true\nfloor_limit = -1',
            "ledger.floor_limit",
            "integer in 0..",
        ),
        (
            'store = "a"\nconninfo_credentials = true\nsslmode = "verify-full"',
            "ledger.sslrootcert",
            "CA certificate",
        ),
        (
            'store = "a"\nconninfo_credentials = true\npassword = "x"',
            "ledger.password",
            "unknown key",
        ),
    ],
)
def test_a_bad_ledger_section_names_the_key(
    tmp_path: Path, body: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_config(_config(tmp_path, body), base_dir=tmp_path)
    assert caught.value.key == key


def test_a_connection_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config = LedgerConfig("a", "pc", conninfo_file=_conn_file(tmp_path, 0o644))
    with pytest.raises(ConfigError, match="mode 0644; use 0600") as caught:
        read_conninfo(config)
    assert SECRET not in caught.value.message


def test_the_connection_string_comes_from_systemd_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = LedgerConfig("a", "pc")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="LoadCredential=carddaemon-ledger"):
        read_conninfo(config)
    (tmp_path / "carddaemon-ledger").write_text(f"host=/x user=u password={SECRET}")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_conninfo(config) == f"host=/x user=u password={SECRET}"


def test_passwords_are_starred_in_what_is_shown() -> None:
    assert mask(f"host=x password={SECRET} user=u") == "host=x password=*** user=u"
    assert mask(f"password='{SECRET} x' user=u") == "password=*** user=u"
    assert SECRET not in describe(RuntimeError(f"failed: postgres://u:{SECRET}@h/db"))


def test_an_unreachable_ledger_never_logs_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from daemon.journal import Journal
    from daemon.ledger.store import StoreLedger

    caplog.set_level(logging.DEBUG)
    config = LedgerConfig("a", "pc", mode="online", online_budget_ms=100)
    with Journal(tmp_path / "j.db") as journal:
        part = StoreLedger(config, journal, f"host=/nonexistent user=u password={SECRET}")
        try:
            part.check("04AABBCC", 3, "00112233", "debit", 100)  # falls back: within the floor
            assert part.check.fallbacks == 1
        finally:
            part.close()
    assert SECRET not in caplog.text


def test_online_checks_and_fallbacks_are_counted_in_the_metrics(tmp_path: Path) -> None:
    from daemon import metrics
    from daemon.journal import Journal
    from daemon.ledger.store import StoreLedger

    before = metrics.REGISTRY.get_sample_value("carddaemon_ledger_check_fallbacks_total") or 0
    config = LedgerConfig("a", "pc", mode="online", online_budget_ms=50)
    with Journal(tmp_path / "j.db") as journal:
        part = StoreLedger(config, journal, "host=/nonexistent user=u")
        try:
            part.check("04AABBCC", 3, "00112233", "credit", 0)
        finally:
            part.close()
    after = metrics.REGISTRY.get_sample_value("carddaemon_ledger_check_fallbacks_total")
    assert after == before + 1
