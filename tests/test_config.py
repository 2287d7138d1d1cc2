"""The daemon's config file: the example loads, and every mistake stops the start by key.

Each bad-config case edits one line of the shipped example (docs/carddaemon.example.toml), the
way store IT would get it wrong, and checks the error names the full dotted key and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import (
    ConfigMistakes,
    DaemonConfig,
    DaemonSection,
    ReaderConfig,
    load_config,
    parse_config,
)
from daemon.errors import ConfigError
from daemon.keystore import KeyPurpose
from daemon.scanners.base import RawScan, ScannerState

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "carddaemon.example.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")


def _edit(old: str, new: str, text: str = EXAMPLE_TEXT) -> str:
    assert text.count(old) == 1, f"{old!r} is not exactly once in the example"
    return text.replace(old, new)


def _refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    return err.value


def _key_file(path: Path, mode: int = 0o600) -> Path:
    sections = "".join(
        f'[{p}]\ncurrent = 1\n1 = "{secrets.token_hex(32)}"\n' for p in ("card_a", "card_b", "mac")
    )
    path.write_text(sections, encoding="utf-8")
    path.chmod(mode)
    return path


def _with_key_file(tmp_path: Path, key_file: Path) -> Path:
    conf = tmp_path / "carddaemon.toml"
    conf.write_text(
        _edit('keystore_file = "/etc/carddaemon/keys.toml"', f'keystore_file = "{key_file}"'),
        encoding="utf-8",
    )
    return conf


# --- the example ------------------------------------------------------------------------------


def test_example_loads_with_the_store_settings() -> None:
    config = load_config(EXAMPLE, load_keys=False)
    assert isinstance(config, DaemonConfig)
    assert config.daemon.station == "pos"
    assert config.daemon.journal_path == Path("/var/lib/carddaemon/journal.sqlite3")
    assert config.daemon.keystore_file == Path("/etc/carddaemon/keys.toml")
    assert config.readers.backend == "pcsc"
    front = config.readers.for_reader("ACS ACR1252 1S CL Reader [ACR1252 1S CL Reader PICC] 00 00")
    assert front is not None
    assert front.id == "front"
    assert front.dialect_for("ACS ACR1252 1S CL Reader PICC").name == "acr1252u"
    assert (front.queue_size, front.job_deadline_ms) == (8, 2000)
    # the SAM slot of the same reader is not the card reader
    assert (
        config.readers.for_reader("ACS ACR1252 1S CL Reader [ACR1252 1S CL Reader SAM] 01 00")
        is None
    )
    receipt = config.printers["receipt"]
    assert (receipt.backend, receipt.port, receipt.printer_profile().paper_mm) == (
        "network",
        9100,
        80,
    )
    assert config.scanners["front"].backend == "serial"
    programme = config.membercard
    assert [t.name for t in programme.tiers] == ["普通会员", "银卡", "金卡", "白金卡"]
    assert [t.discount for t in programme.tiers] == [9500, 9000, 8500, 8000]
    assert programme.points_for(2, 25_000) == 2 * 3  # 250 yuan at 金卡: two whole 100s, 3 each
    assert programme.bonus_for(100_000) == 5000  # 存1000送50
    assert programme.bonus_for(99_999) == 2000
    assert programme.balance_cap == 500_000


def test_example_loads_with_its_key_file(tmp_path: Path) -> None:
    config = load_config(_with_key_file(tmp_path, _key_file(tmp_path / "keys.toml")))
    assert config.keystore is not None
    assert config.keystore.current_version(KeyPurpose.MAC) == 1
    assert "<Keystore" not in repr(config)  # the loaded keys stay out of the config's repr


def test_example_scanner_builds_through_the_scanner_area() -> None:
    config = load_config(EXAMPLE, load_keys=False)

    class Sink:
        def on_scan(self, scanner_id: str, raw: RawScan) -> None: ...

        def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None: ...

    scanner = config.scanners["front"].build(Sink())
    try:
        assert scanner.scanner_id == "front"
        assert scanner.backoff_max_s == 2.0
    finally:
        scanner.close()


# --- the key file -------------------------------------------------------------------------------


def test_missing_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-keys.toml"
    with pytest.raises(ConfigError) as err:
        load_config(_with_key_file(tmp_path, missing))
    assert err.value.key == "daemon.keystore_file"
    assert str(missing) in str(err.value)
    assert "cannot open" in str(err.value)


def test_key_file_readable_by_others_is_refused_naming_file_and_mode(tmp_path: Path) -> None:
    key_file = _key_file(tmp_path / "keys.toml", 0o644)
    with pytest.raises(ConfigError) as err:
        load_config(_with_key_file(tmp_path, key_file))
    assert err.value.key == "daemon.keystore_file"
    assert str(key_file) in str(err.value)
    assert "0644" in str(err.value)
    assert "0600" in str(err.value)  # what would be valid


def test_symlinked_key_file_is_refused_as_a_symlink(tmp_path: Path) -> None:
    real = _key_file(tmp_path / "real-keys.toml")
    link = tmp_path / "keys.toml"
    link.symlink_to(real)
    with pytest.raises(ConfigError) as err:
        load_config(_with_key_file(tmp_path, link))
    assert err.value.key == "daemon.keystore_file"
    assert f"key file {link} is a symbolic link" in str(err.value)


def test_broken_key_file_error_never_shows_its_content(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.toml"
    key_file.write_text('[card_a\n1 = "00112233445566778899aabbccddeeff"\n', encoding="utf-8")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        load_config(_with_key_file(tmp_path, key_file))
    assert err.value.key == "daemon.keystore_file"
    assert "00112233" not in str(err.value)


def test_keys_from_systemd_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _edit('keystore_file = "/etc/carddaemon/keys.toml"', "keystore_credentials = true")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    err = _refused_loading(text)
    assert err.key == "daemon.keystore_credentials"
    assert "CREDENTIALS_DIRECTORY" in str(err)
    _key_file(tmp_path / "carddaemon-keys")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(text, load_keys=True)
    assert config.daemon.keystore_credentials
    assert config.keystore is not None


def _refused_loading(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config(text, load_keys=True)
    return err.value


def test_key_source_must_be_exactly_one() -> None:
    both = _edit(
        'keystore_file = "/etc/carddaemon/keys.toml"',
        'keystore_file = "/etc/carddaemon/keys.toml"\nkeystore_credentials = true',
    )
    assert _refused(both).key == "daemon.keystore_file"
    neither = _edit('keystore_file = "/etc/carddaemon/keys.toml"', "")
    err = _refused(neither)
    assert err.key == "daemon.keystore_file"
    assert "keystore_credentials" in str(err)


# --- the file itself ----------------------------------------------------------------------------


def test_missing_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == str(path)
    assert "cannot read" in str(err.value)


def test_unreadable_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == str(path)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "carddaemon.toml"
    path.write_text('[daemon]\nstation = "pos"\nstate_dir = /var/lib\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == f"{path}:3"
    assert "line 3" in str(err.value)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "carddaemon.toml"
    path.write_bytes('[daemon]\nstation = "pos"\n# 普通会员\n'.encode("gb18030"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == f"{path}:3"
    assert "UTF-8" in str(err.value)


# --- every section: a bad value and an unknown key, each named by its dotted key ----------------

BAD = [
    # [daemon]
    ('station = "pos"', 'station = "cashier"', "daemon.station", ["'cashier'", "technician"]),
    (
        'state_dir = "/var/lib/carddaemon"',
        'state_dir = "var/lib/carddaemon"',
        "daemon.state_dir",
        ["absolute"],
    ),
    ('station = "pos"', 'station = "pos"\nstatedir = "/x"', "daemon.statedir", ["'state_dir'"]),
    # [readers]
    ('backend = "pcsc"', 'backend = "pcsclite"', "readers.backend", ["'pcsclite'", "pcsc, sim"]),
    ('backend = "pcsc"', 'backend = "pcsc"\nbackned = "sim"', "readers.backned", ["'backend'"]),
    (
        'dialect = "acr1252u"',
        'dialect = "acr1255"',
        "readers.front.dialect",
        ["'acr1255'", "omnikey"],
    ),
    ('dialect = "acr1252u"', 'dialekt = "acr1252u"', "readers.front.dialekt", ["'dialect'"]),
    ("queue_size = 8", "queue_size = -1", "readers.front.queue_size", ["-1", "1..256"]),
    ("job_deadline_ms = 2000", "job_deadline_ms = 1.5", "readers.front.job_deadline_ms", ["1.5"]),
    ("job_deadline_ms = 2000", 'job_deadline_ms = "2s"', "readers.front.job_deadline_ms", ["'2s'"]),
    ('match = "ACS ACR1252*PICC*"', "", "readers.front.match", ["required"]),
    ("[readers.front]", '[readers."front lane"]', "readers.front lane", ["device id"]),
    # [printers.<id>]
    ("port = 9100", "port = 70000", "printers.receipt.port", ["70000"]),
    ("port = 9100", "port = -1", "printers.receipt.port", ["-1"]),
    ("drawer_pin = 2", "drawer_pin = 3", "printers.receipt.drawer_pin", ["2 or 5", "3"]),
    ('profile = "zh-80"', 'profile = "zh-100"', "printers.receipt.profile", ["zh-100", "zh-58"]),
    (
        "drawer_pin = 2",
        "drawer_pin = 2\ncolour = 1",
        "printers.receipt.colour",
        ["unknown key", "drawer_pin"],
    ),
    # [scanners.<id>]
    ('suffix = "CR"', 'suffix = "TAB"', "scanners.front.suffix", ["CR, LF, CRLF, NONE", "TAB"]),
    (
        'backend = "serial"',
        'backend = "bluetooth"',
        "scanners.front.backend",
        ["'bluetooth'", "hidpos, serial, sim, wedge"],
    ),
    ('backend = "serial"', 'kind = "serial"', "scanners.front.kind", ["now 'backend'"]),
    ("baudrate = 9600", "baudrate = 0", "scanners.front.baudrate", ["0"]),
    ("baudrate = 9600", "baud = 9600", "scanners.front.baud", ["unknown key"]),
    # [membercard]
    ("discount = 8500", "discount = 8.5", "membercard.tiers[2].discount", ["8.5", "float"]),
    ("discount = 9000", "discount = 12000", "membercard.tiers[1].discount", ["12000", "1..10000"]),
    (
        "points_per_100_yuan = 1 ",
        "point_per_100_yuan = 1 ",
        "membercard.tiers[0].point_per_100_yuan",
        ["'points_per_100_yuan'"],
    ),
    ("min_topup = 200000", "min_topup = 90000", "membercard.bonus[2].min_topup", ["ascending"]),
    ("bonus = 12000", "bonus = 3000", "membercard.bonus[2].bonus", ["3000", "5000"]),
    ("bonus = 12000", "bonus = -1", "membercard.bonus[2].bonus", ["-1"]),
    ("balance_cap = 500000", "balance_cap = 0", "membercard.balance_cap", ["0"]),
    ("hotlist_on_fraud = true", 'hotlist_on_fraud = "yes"', "membercard.hotlist_on_fraud", ["yes"]),
    ("balance_cap = 500000", "balance_cap = 500000\ncap = 1", "membercard.cap", ["unknown key"]),
    # top level
    ("[membercard]\n", "[membercards]\n", "membercards", ["'membercard'"]),
]


@pytest.mark.parametrize(("old", "new", "key", "shown"), BAD, ids=[case[2] for case in BAD])
def test_bad_config_is_refused_naming_the_dotted_key(
    old: str, new: str, key: str, shown: list[str]
) -> None:
    err = _refused(_edit(old, new))
    assert err.key == key, str(err)
    assert str(err).startswith(f"CONFIG_INVALID: {key}: ")
    for text in shown:
        assert text in str(err), f"{text!r} not in {err}"


def test_every_mistake_of_the_file_is_reported_in_one_start() -> None:
    text = _edit("port = 9100", "port = 70000")
    text = _edit("discount = 8500", "discount = 8.5", text)
    text = _edit('dialect = "acr1252u"', 'dialect = "acr1255"', text)
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    assert err.key == "readers.front.dialect"  # sections in order: daemon, readers, printers, ...
    assert [m.key for m in err.mistakes] == [
        "readers.front.dialect",
        "printers.receipt.port",
        "membercard.tiers[2].discount",
    ]
    lines = str(err).splitlines()
    assert lines[0] == "CONFIG_INVALID: 3 mistakes in <string>:"
    assert lines[1].startswith("  readers.front.dialect: unknown reader dialect 'acr1255'")
    assert lines[2] == "  printers.receipt.port: must be an integer in 1..65535, got 70000"
    assert lines[3].startswith("  membercard.tiers[2].discount: must be an integer in 1..10000")
    assert "8.5" in lines[3]


def test_a_typo_and_a_bad_dialect_in_one_section_are_both_reported() -> None:
    text = _edit('dialect = "acr1252u"', 'dialect = "acr999"\nqueue_sise = 8')
    text = _edit("job_deadline_ms = 2000", "job_deadline_ms = 5", text)
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    keys = [m.key for m in err.mistakes]
    assert keys == [
        "readers.front.queue_sise",
        "readers.front.dialect",
        "readers.front.job_deadline_ms",
    ], str(err)
    assert "did you mean 'queue_size'?" in str(err)  # the hint is kept
    assert "'acr999'" in str(err)
    assert "omnikey" in str(err)  # the valid choices
    assert "100..60000, got 5" in str(err)  # the allowed range


def test_a_misspelt_required_key_is_one_mistake_not_two() -> None:
    err = _refused(_edit('match = "ACS ACR1252*PICC*"', 'mach = "ACS ACR1252*PICC*"'))
    assert err.key == "readers.front.mach"
    assert not isinstance(err, ConfigMistakes), str(err)  # no "match: is required" on top
    assert "did you mean 'match'?" in str(err)


def test_several_mistakes_in_one_printer_and_one_tier_are_all_reported() -> None:
    text = _edit("port = 9100", "port = 0")
    text = _edit("drawer_pin = 2", "drawer_pin = 3\ncolour = 1", text)
    text = _edit("discount = 8500", "discount = 0", text)
    text = _edit("balance_cap = 500000", "balance_cap = -5", text)
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    keys = {m.key for m in err.mistakes}
    assert keys == {
        "printers.receipt.port",
        "printers.receipt.drawer_pin",
        "printers.receipt.colour",
        "membercard.tiers[2].discount",
        "membercard.balance_cap",
    }, str(err)
    assert len(err.mistakes) == 5  # one line per mistake, none twice


def test_several_mistakes_in_one_scanner_are_all_reported() -> None:
    text = _edit('suffix = "CR"', 'suffix = "TAB"')
    text = _edit("baudrate = 9600", "baudrate = 0\nbaud = 1", text)
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    assert {m.key for m in err.mistakes} == {
        "scanners.front.suffix",
        "scanners.front.baudrate",
        "scanners.front.baud",
    }, str(err)
    assert "CR, LF, CRLF, NONE" in str(err)


def test_a_parser_that_stops_at_its_first_mistake_still_shows_them_all() -> None:
    """[api]'s listener check stops at a bad mode; the section is checked again without it."""
    text = (
        "[daemon]\nkeystore_credentials = true\n[api]\nmax_streams = 0\nmax_wait_ms = 5\n"
        '[api.pos]\nmode = "0666"\n'
    )
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    assert [m.key for m in err.mistakes] == ["api.pos.mode", "api.max_wait_ms", "api.max_streams"]
    assert "1..1024, got 0" in str(err)


def test_every_unknown_key_of_a_section_is_listed() -> None:
    text = _edit('station = "pos"', 'station = "pos"\nstatedir = "/x"\njournal = "/y"')
    err = _refused(text)
    assert isinstance(err, ConfigMistakes)
    assert [m.key for m in err.mistakes] == ["daemon.statedir", "daemon.journal"]


def test_two_readers_with_the_same_pattern_are_ambiguous() -> None:
    text = EXAMPLE_TEXT + '\n[readers.rear]\nmatch = "acs acr1252*picc*"\n'
    err = _refused(text)
    assert err.key == "readers.rear.match"
    assert "readers.front" in str(err)


def test_a_scalar_where_a_device_table_belongs_is_refused() -> None:
    err = _refused("[printers]\nport = 9100\n" + EXAMPLE_TEXT.split("[printers.receipt]")[0])
    assert err.key == "printers.port"
    assert "[printers.port]" in str(err)


def test_a_section_that_is_not_a_table_is_refused() -> None:
    err = _refused('readers = "pcsc"\n[daemon]\nkeystore_credentials = true\n[old_readers]\n')
    assert err.key == "old_readers"  # the unknown section first, then ...
    assert str(err).count("\n") == 2  # ... only the section itself, not its keys
    assert "\n  readers: must be a table [readers], got 'pcsc' (str)" in str(err)


def test_reader_patterns_take_brackets_literally_and_ignore_case() -> None:
    text = (
        '[daemon]\nkeystore_credentials = true\n[readers]\nbackend = "sim"\n'
        '[readers.a]\nmatch = "HID Global OMNIKEY 5422 [OMNIKEY 5422CL Smartcard Reader] 0?"\n'
        '[readers.b]\nmatch = "*"\ndialect = "generic"\n'
    )
    readers = parse_config(text).readers
    assert readers.backend == "sim"
    a = readers.for_reader("hid global omnikey 5422 [omnikey 5422cl smartcard reader] 01")
    assert a is not None
    assert a.id == "a"
    assert a.dialect_for("HID Global OMNIKEY 5422").name == "omnikey"  # auto
    other = readers.for_reader("HID Global OMNIKEY 5422 O 01")  # "[...]" is not a char class
    assert other is not None
    assert other.id == "b"


def test_a_minimal_config_takes_the_defaults() -> None:
    config = parse_config("[daemon]\nkeystore_credentials = true\n")
    assert config.daemon.station == "pos"
    assert config.daemon.state_dir == Path("/var/lib/carddaemon")
    assert config.readers.backend == "pcsc"
    assert config.readers.for_reader("anything") is None
    assert not config.printers
    assert not config.scanners
    assert len(config.membercard.tiers) == 5  # the programme's default ladder


def test_journal_path_may_not_be_a_directory(tmp_path: Path) -> None:
    text = f'[daemon]\nkeystore_credentials = true\nstate_dir = "{tmp_path}"\njournal_path = "."\n'
    err = _refused(text)
    assert err.key == "daemon.journal_path"


def test_importing_config_loads_no_hardware_library() -> None:
    code = (
        "import sys, daemon.config\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('smartcard', 'serial', 'usb', 'escpos', 'evdev', 'sim'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the operations doc stays true ----------------------------------------------------------------

OPERATIONS = EXAMPLE.parent / "operations.md"


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices)
    return found


def test_operations_doc_lists_every_cli_command_that_exists() -> None:
    from daemon.cli import build_parser as daemon_parser
    from sim.cli import build_parser as sim_parser

    text = OPERATIONS.read_text(encoding="utf-8")
    for prog, parser in (("carddaemon", daemon_parser()), ("carddaemon-sim", sim_parser())):
        commands = _subcommands(parser)
        assert commands
        for command in commands:
            assert f"`{prog} {command}" in text, f"{prog} {command} is not in operations.md"


def test_operations_doc_describes_every_config_key() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    keys = [f"`{f.name}`" for f in dataclasses.fields(DaemonSection)]
    keys += [f"`readers.<id>.{f.name}`" for f in dataclasses.fields(ReaderConfig) if f.name != "id"]
    keys += ["`readers.backend`", "`balance_cap`", "`hotlist_on_fraud`"]
    keys += ["`[[membercard.tiers]]`", "`[[membercard.bonus]]`"]
    for key in keys:
        assert key in text, f"{key} is not described in operations.md"
    assert "vsmartcard-vpcd" in text


# --- anything store IT can type gives a ConfigError, never a crash --------------------------------

_VALUE_LINE = re.compile(r"^(\w+) = (.*?)(\s+#.*)?$", re.MULTILINE)
_LINES = [m.start() for m in _VALUE_LINE.finditer(EXAMPLE_TEXT)]
_TOML_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.sampled_from(["0.5", "-1.5", "8.5", "1e3", "inf", "nan"]),
    st.sampled_from(["true", "false", "1979-05-27", "07:32:00", "{}", "{ a = 1 }"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
        lambda t: json.dumps(t, ensure_ascii=False)
    ),
    st.lists(st.integers(-5, 300), max_size=3).map(lambda xs: "[" + ", ".join(map(str, xs)) + "]"),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(range(len(_LINES))), _TOML_VALUES), min_size=1, max_size=4)
)
def test_any_value_in_any_key_is_accepted_or_a_config_error(
    edits: list[tuple[int, str]],
) -> None:
    lines = EXAMPLE_TEXT.splitlines()
    numbers = [EXAMPLE_TEXT.count("\n", 0, start) for start in _LINES]
    for index, value in edits:
        n = numbers[index]
        key = lines[n].split(" = ", 1)[0]
        lines[n] = f"{key} = {value}"
    key = "daemon"
    try:
        parse_config("\n".join(lines) + "\n")
    except ConfigError as exc:
        key = exc.key
    section = key.split(".", 1)[0].split("[", 1)[0]
    assert section in {"daemon", "readers", "printers", "scanners", "membercard", "api"}, key


def test_relative_state_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    """A store folder that moves as a whole (the demo store, a test) keeps its state with it;
    text with no file behind it still needs an absolute path (see BAD)."""
    path = tmp_path / "carddaemon.toml"
    path.write_text(
        '[daemon]\nkeystore_credentials = true\nstate_dir = "state"\n', encoding="utf-8"
    )
    config = load_config(path, load_keys=False)
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.daemon.journal_path == tmp_path / "state" / "journal.sqlite3"


def test_the_example_api_section_is_what_the_daemon_reads() -> None:
    api = parse_config(EXAMPLE_TEXT).api
    assert [(item.role, str(item.socket), item.mode) for item in api.listeners] == [
        ("pos", "/run/carddaemon/pos.sock", 0o660),
        ("technician", "/run/carddaemon/technician.sock", 0o660),
        ("issuer", "/run/carddaemon/issuer.sock", 0o660),
    ]
    assert (api.max_wait_ms, api.max_call_ms, api.max_streams) == (60_000, 10_000, 16)
    assert api.tcp is None


def test_a_daemon_start_lists_the_same_mistakes_as_check_config(tmp_path: Path) -> None:
    conf = tmp_path / "carddaemon.toml"
    text = _edit('dialect = "acr1252u"', 'dialect = "acr999"\nqueue_sise = 8')
    conf.write_text(_edit("port = 9100", "port = 70000", text), encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    runs = [
        subprocess.run(
            [str(bin_dir / "carddaemon"), *args, str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for args in (["serve", "--config"], ["check-config"])
    ]
    serve, check = runs
    assert (serve.returncode, check.returncode) == (2, 2)
    listed = [line.strip() for line in check.stderr.splitlines()[1:]]
    assert len(listed) == 4  # the typo, the dialect, the port, the missing key file
    assert (
        serve.stderr.splitlines()[0] == f"carddaemon serve: CONFIG_INVALID: 4 mistakes in {conf}:"
    )
    assert [line.strip() for line in serve.stderr.splitlines()[1:]] == listed
