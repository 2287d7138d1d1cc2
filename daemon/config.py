"""The daemon's one TOML config file, validated as a whole before anything starts.

Why one validator on top of the areas' own parsers: a store PC must refuse to start on a typo
rather than run with a default nobody chose, and store IT needs one error that names the key
(``printers.receipt.port``), the bad value and what would be valid. Each area still owns its
rules; this module reads the file, rejects unknown keys and sections, and hands each table to
its owner's parser:

* backend names (readers, printers, scanners) -> :mod:`daemon.registry`; per-reader
  dialect -> :func:`daemon.readers.dialects.select_dialect`;
* ``[printers.<id>]`` -> :meth:`daemon.printers.backend.PrinterConfig.from_mapping`;
* ``[scanners.<id>]`` -> :func:`daemon.scanners.config.build_scanner` (built, never opened);
* ``[membercard]`` -> :meth:`daemon.membercard.rules.Programme.from_config`;
* ``[daemon]`` key file -> :meth:`daemon.keystore.Keystore.load` (owner and mode checked).

Every failure is a :class:`~daemon.errors.ConfigError` whose ``key`` is the full dotted path
(``membercard.tiers[2].discount``); file problems name the file (and line, for TOML syntax).
Every key is checked, even after a mistake in the same section (a bad value is recorded and
its default used, see :func:`daemon._config_table.collecting`; the areas' parsers, which stop
at their first mistake, are run once per key); several mistakes come as one
:class:`ConfigMistakes` listing each with its key, so ``check-config`` and one failed start show
them all.
See ``docs/operations.md`` and ``docs/carddaemon.example.toml``.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from daemon import registry
from daemon._config_table import Table, check_keys, collecting, lookup, record, with_value
from daemon.api.settings import ApiConfig, parse_api
from daemon.diagnostics.probe import STATIONS
from daemon.errors import ConfigError, KeystoreError
from daemon.keystore import Keystore
from daemon.ledger.settings import LedgerConfig, parse_ledger
from daemon.membercard.rules import Programme
from daemon.printers.backend import PrinterConfig
from daemon.printers.profiles import PROFILES
from daemon.readers.backends import ReaderBackend, create_backend
from daemon.readers.dialects import Dialect, select_dialect
from daemon.readers.workers import DEFAULT_MAX_QUEUE
from daemon.scanners.base import RawScan, ScannerState
from daemon.scanners.config import build_scanner
from daemon.scanners.worker import Scanner, ScanSink

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_JOB_DEADLINE_MS",
    "ConfigMistakes",
    "DaemonConfig",
    "DaemonSection",
    "ReaderConfig",
    "ReadersConfig",
    "ScannerConfig",
    "load_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONFIG_PATH = Path("/etc/carddaemon/carddaemon.toml")
#: A hardware call gets at most ~2 s (reference: every hardware RPC has a deadline <= 2 s).
DEFAULT_JOB_DEADLINE_MS = 2000
MAX_QUEUE_SIZE = 256
DEFAULT_STATE_DIR = Path("/var/lib/carddaemon")

_SECTIONS = ("daemon", "readers", "printers", "scanners", "membercard", "api", "ledger")
_DAEMON_KEYS = ("state_dir", "journal_path", "keystore_file", "keystore_credentials", "station")
_READER_KEYS = ("match", "dialect", "queue_size", "job_deadline_ms")
_MEMBERCARD_KEYS = (
    "tiers", "bonus", "balance_cap", "hotlist_on_fraud", "abandoned_claim_age_s", "renew_months",
    "refund_days", "cancel_window", "day_cutoff_hour", "reread_after_s",
)  # fmt: skip
_TIER_KEYS = ("name", "discount", "points_per_100_yuan", "upgrade_points")
_BONUS_KEYS = ("min_topup", "bonus")
#: a valid tier / bonus step, to check one field of a listed one alone
_FILLERS: dict[str, dict[str, Any]] = {
    "tiers": {"name": "tier", "discount": 10000, "points_per_100_yuan": 0, "upgrade_points": 0},
    "bonus": {"min_topup": 1, "bonus": 0},
}
_ABSENT = lookup({}, "x")  # what lookup() returns for a key the file does not have
_INDEXED = re.compile(r"(?P<name>[^\[\]]+)\[(?P<index>\d+)\]")
_DID_YOU_MEAN = re.compile(r"unknown key; did you mean '([^']+)'\?")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, slots=True)
class DaemonSection:
    """``[daemon]``: where state lives, where the master keys come from, what this PC is."""

    state_dir: Path = DEFAULT_STATE_DIR
    journal_path: Path = DEFAULT_STATE_DIR / "journal.sqlite3"
    keystore_file: Path | None = None  # None: systemd credential ``carddaemon-keys``
    keystore_credentials: bool = False
    station: str = "pos"  # pos | technician | issuing


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """``[readers.<id>]``: one physical reader, found by a pattern on its PC/SC name."""

    id: str
    match: str
    dialect: str = "auto"
    queue_size: int = DEFAULT_MAX_QUEUE
    job_deadline_ms: int = DEFAULT_JOB_DEADLINE_MS

    def matches(self, reader_name: str) -> bool:
        """Case-insensitive whole-name match; ``*`` and ``?`` are the only wildcards, so the
        square brackets in PC/SC names (``[ACR1252 Dual Reader PICC]``) are literal."""
        return _pattern(self.match).fullmatch(reader_name) is not None

    def dialect_for(self, reader_name: str, firmware: str | None = None) -> Dialect:
        """The configured dialect, or the one detected from the name/firmware for ``auto``."""
        return select_dialect(
            reader_name,
            firmware=firmware,
            override=self.dialect,
            config_key=f"readers.{self.id}.dialect",
        )


@dataclass(frozen=True, slots=True)
class ReadersConfig:
    backend: str = "pcsc"
    readers: tuple[ReaderConfig, ...] = ()

    def for_reader(self, reader_name: str) -> ReaderConfig | None:
        """The first ``[readers.<id>]`` (in file order) whose pattern matches, else ``None``
        (the reader then runs with the defaults: dialect auto, default queue and deadline)."""
        return next((r for r in self.readers if r.matches(reader_name)), None)

    def create_backend(self) -> ReaderBackend:
        """The configured backend, built from this section (``cls.from_config(self)``)."""
        return create_backend(self.backend, self)


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """``[scanners.<id>]``, already checked by the scanner area; :meth:`build` makes it real."""

    id: str
    backend: str
    table: Mapping[str, Any]

    def build(self, sink: ScanSink, *, usb_backend: Any = None) -> Scanner:
        """A :class:`Scanner` (not started) from this table, as the scanner area builds it."""
        return build_scanner(
            self.id, copy.deepcopy(dict(self.table)), sink, usb_backend=usb_backend
        )


@dataclass(frozen=True)
class DaemonConfig:
    """The whole file. ``keystore`` is set when :func:`load_config` loaded the keys."""

    source: str
    daemon: DaemonSection
    readers: ReadersConfig
    printers: Mapping[str, PrinterConfig]
    scanners: Mapping[str, ScannerConfig]
    membercard: Programme
    keystore: Keystore | None = field(default=None, repr=False, compare=False)
    api: ApiConfig = field(default_factory=ApiConfig)
    ledger: LedgerConfig | None = None  # [ledger]: the chain ledger (docs/ledger.md)


def load_config(
    path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH, *, load_keys: bool = True
) -> DaemonConfig:
    """Read and validate the whole file at once; the daemon refuses to start on any error.

    With ``load_keys`` (the default, what the daemon does) the master keys are loaded too, so a
    missing key file or one with unsafe mode stops the start, named by file and mode.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read the config file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}", "the config file is not UTF-8 text") from None
    return parse_config(text, source=str(p), base_dir=p.parent, load_keys=load_keys)


def parse_config(
    text: str, *, source: str = "<string>", base_dir: Path | None = None, load_keys: bool = False
) -> DaemonConfig:
    """Validate TOML text (what :func:`load_config` does after reading the file)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        where = f"{source}:{found.group(1)}" if found else source
        raise ConfigError(where, f"TOML syntax error: {exc}") from None
    config = _build(doc, source, base_dir, load_keys)
    logger.info(
        "config %s: station %s, %d reader(s), %d printer(s), %d scanner(s)",
        source,
        config.daemon.station,
        len(config.readers.readers),
        len(config.printers),
        len(config.scanners),
    )
    plugins = [
        f"{kind} backend {name!r} ({registry.target(kind, name)})"
        for kind, name in (
            ("readers", config.readers.backend),
            *(("printers", p.backend) for p in config.printers.values()),
            *(("scanners", s.backend) for s in config.scanners.values()),
        )
        if not registry.is_builtin(kind, name)
    ]
    for plugin in dict.fromkeys(plugins):  # e.g. the simulator: no real device behind it
        logger.warning("config %s: %s is not one of carddaemon's own", source, plugin)
    return config


# --- sections -----------------------------------------------------------------------------------


class ConfigMistakes(ConfigError):
    """Several mistakes in one file, each a :class:`ConfigError` with its own key, in file
    order; ``key`` is the first one's. The message lists one per line."""

    def __init__(self, source: str, mistakes: Sequence[ConfigError]) -> None:
        first = mistakes[0]
        super().__init__(first.key, first.message.removeprefix(f"{first.key}: "))
        self.mistakes = tuple(mistakes)
        self.message = f"{len(mistakes)} mistakes in {source}:" + "".join(
            f"\n  {m.message}" for m in mistakes
        )


class _Problems:
    """Every mistake of the file, one per key (the first one found at a key), so store IT sees
    them all in one run instead of fixing them one restart at a time."""

    def __init__(self, doc: Mapping[str, Any], source: str) -> None:
        self._doc = doc
        self._source = source
        self.found: list[ConfigError] = []

    def check(self, build: Callable[[], T]) -> T | None:
        """``build()``, or None when it raised or recorded any mistake (all kept)."""
        result: T | None = None
        with collecting() as found:
            try:
                result = build()
            except ConfigError as exc:
                found.append(exc)
        keys = {e.key for e in self.found}
        for mistake in found:
            hint = _DID_YOU_MEAN.search(mistake.message)
            if hint is not None:  # a misspelt key: its real one is missing, not twice wrong
                meant = f"{mistake.key.rpartition('.')[0]}.{hint[1]}".lstrip(".")
                if lookup(self._doc, meant) is _ABSENT:
                    keys.add(meant)
        for mistake in found:
            if mistake.key not in keys:
                keys.add(mistake.key)
                self.found.append(with_value(mistake, self._doc))
        return None if found else result

    def raise_if_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise ConfigMistakes(self._source, self.found)


def _build(
    doc: Mapping[str, Any], source: str, base_dir: Path | None, load_keys: bool
) -> DaemonConfig:
    problems = _Problems(doc, source)
    problems.check(functools.partial(check_keys, "", doc, _SECTIONS))
    # a section that is not a table was reported just now; it is not checked any further
    sec = {n: problems.check(functools.partial(Table.section, doc, n)) for n in _SECTIONS}

    def unit(name: str, build: Callable[[Table], T]) -> T | None:
        section = sec[name]
        return None if section is None else problems.check(functools.partial(_peel, section, build))

    daemon = unit("daemon", functools.partial(_daemon, base_dir=base_dir))
    readers = unit("readers", _readers)
    printers: dict[str, PrinterConfig] = {}
    for pid, t in unit("printers", _devices) or []:
        printer = problems.check(functools.partial(_printer, pid, t))
        if printer is not None:
            printers[pid] = printer
    scanners: dict[str, ScannerConfig] = {}
    for sid, t in unit("scanners", _devices) or []:
        scanner = problems.check(functools.partial(_scanner, sid, t))
        if scanner is not None:
            scanners[sid] = scanner
    programme = unit("membercard", _membercard)
    api = unit("api", functools.partial(parse_api, base_dir=base_dir))
    ledger = unit("ledger", functools.partial(parse_ledger, base_dir=base_dir))
    keystore = None
    if load_keys and daemon is not None:
        keystore = problems.check(functools.partial(_load_keys, daemon))
    problems.raise_if_any()
    assert daemon is not None  # each is None only when an error was found above
    assert readers is not None
    assert programme is not None
    assert api is not None
    return DaemonConfig(
        source,
        daemon,
        readers,
        MappingProxyType(printers),
        MappingProxyType(scanners),
        programme,
        keystore,
        api,
        ledger,
    )


def _peel(section: Table, build: Callable[[Table], T]) -> T:
    """``build(section)``; a parser that stops at a mistake (``Table.fail``, an area's own
    check) has it recorded and the key taken out (its default then applies), and runs again,
    so the section's next mistake is found too. Stops at a mistake that names no key of it."""
    raw = copy.deepcopy(dict(section.raw))
    while True:
        try:
            return build(Table(section.where, raw))
        except ConfigError as exc:
            if not _take_out(raw, exc.key, section.where):
                raise
            record(exc)


def _take_out(raw: dict[str, Any], key: str, where: str) -> bool:
    """Remove the value at dotted ``key`` (``api.pos.mode``, ``tiers[2].discount``) from the
    section ``where``; False when it names nothing there."""
    if not key.startswith(f"{where}."):
        return False
    node: Any = raw
    parts = key[len(where) + 1 :].split(".")
    for i, part in enumerate(parts):
        found = _INDEXED.fullmatch(part)
        name, index = (found["name"], int(found["index"])) if found else (part, None)
        if not isinstance(node, dict) or name not in node:
            return False
        if index is None and i == len(parts) - 1:
            del node[name]
            return True
        node = node[name]
        if index is not None:
            if not isinstance(node, list) or index >= len(node):
                return False
            if i == len(parts) - 1:
                return False  # a whole item: taking it out would renumber the next ones
            node = node[index]
    return False


def _devices(t: Table) -> list[tuple[str, Table]]:
    return list(t.devices())


def _daemon(t: Table, base_dir: Path | None) -> DaemonSection:
    t.only(_DAEMON_KEYS)
    state_dir = t.path("state_dir", DEFAULT_STATE_DIR, base_dir=base_dir)
    journal = t.path("journal_path", Path("journal.sqlite3"), base_dir=state_dir)
    if journal.is_dir():
        t.fail("journal_path", f"{str(journal)!r} is a directory; name the SQLite file")
    credentials = t.boolean("keystore_credentials", False)
    key_file: Path | None = None
    if "keystore_file" in t.raw:
        if credentials:
            t.fail("keystore_file", "give keystore_file or keystore_credentials = true, not both")
        key_file = t.path("keystore_file", None, base_dir=base_dir)
    elif not credentials:
        t.fail(
            "keystore_file",
            "required: the master key file (owner = daemon user, mode 0600), "
            "or keystore_credentials = true for the systemd credential carddaemon-keys",
        )
    station = t.choice("station", STATIONS, "pos")
    return DaemonSection(state_dir, journal, key_file, credentials, station)


def _readers(t: Table) -> ReadersConfig:
    backend = t.choice("backend", registry.names("readers"), "pcsc", what="reader backend")
    registry.load("readers", backend, key=f"{t.where}.backend")  # importable (pyscard is lazy)
    readers: list[ReaderConfig] = []
    seen: dict[str, str] = {}
    for rid, r in t.devices(options=("backend",)):
        r.only(_READER_KEYS)
        match = r.string("match", None, max_len=200)
        if match.casefold() in seen:
            r.problem(
                "match", f"{match!r} is already the pattern of readers.{seen[match.casefold()]}"
            )
        seen[match.casefold()] = rid
        dialect = r.string("dialect", "auto").strip().lower()
        try:
            select_dialect("", override=dialect, config_key=f"{r.where}.dialect")
        except ConfigError as exc:
            record(exc)  # and go on with the next keys and readers
        readers.append(
            ReaderConfig(
                rid,
                match,
                dialect,
                r.integer("queue_size", DEFAULT_MAX_QUEUE, 1, MAX_QUEUE_SIZE),
                r.integer("job_deadline_ms", DEFAULT_JOB_DEADLINE_MS, 100, 60_000),
            )
        )
    return ReadersConfig(backend, tuple(readers))


def _printer(pid: str, t: Table) -> PrinterConfig:
    """The printer area checks the table; unknown keys and profile names are refused here
    first only so that the error can list what is valid."""
    allowed = [f.name for f in fields(PrinterConfig) if f.name != "id"]
    t.only(allowed)
    profile = t.raw.get("profile")
    if isinstance(profile, str) and profile not in PROFILES:
        t.problem("profile", f"unknown printer profile {profile!r} (valid: {', '.join(PROFILES)})")
    if "port" in t.raw:
        t.integer("port", 9100, 1, 65535)  # the printer area's message does not say the range
    known = {k: v for k, v in t.raw.items() if k in allowed}
    for key, value in known.items():  # the printer area stops at its first mistake: one by one
        if key != "backend":
            _alone(t, key, functools.partial(PrinterConfig.from_mapping, pid, {key: value}))
    return PrinterConfig.from_mapping(pid, known)  # and the rules between keys, backend


def _alone(t: Table, key: str, check: Callable[[], object], rename: str | None = None) -> None:
    """Run an area's parser on one key only and record its mistake when it is about that key
    (``rename``: the key the parser names, e.g. ``tiers[0]`` checked alone for ``tiers[3]``)."""
    try:
        check()
    except ConfigError as exc:
        named = f"{t.where}.{rename or key}"
        if exc.key == named or exc.key.startswith((f"{named}.", f"{named}[")):
            record(
                ConfigError(
                    f"{t.where}.{key}" + exc.key[len(named) :], exc.message[len(exc.key) + 2 :]
                )
            )


class _CheckSink:
    """Receives nothing: lets the scanner area build (and so check) a scanner at load time."""

    def on_scan(self, scanner_id: str, raw: RawScan) -> None:
        return None

    def on_status(self, scanner_id: str, state: ScannerState, detail: str) -> None:
        return None

    def set_one_shot(self, scanner_id: str, one_shot: bool) -> None:
        return None


def _scanner(sid: str, t: Table) -> ScannerConfig:
    table = copy.deepcopy(dict(t.raw))
    # the scanner area stops at its first mistake: record it, drop the key (its default then
    # applies) and check again, until the table builds or the mistake is not one key's
    rest = copy.deepcopy(table)
    for _ in range(len(table) + 1):
        try:
            build_scanner(sid, copy.deepcopy(rest), _CheckSink()).close()  # opens nothing
            break
        except ConfigError as exc:
            key = exc.key.removeprefix(f"{t.where}.")
            if key in ("backend", "kind") or key not in rest:
                raise
            record(exc)
            del rest[key]
    return ScannerConfig(sid, str(table["backend"]), MappingProxyType(table))


def _membercard(t: Table) -> Programme:
    """The programme rules; unknown keys and non-ascending steps are refused here because
    :meth:`Programme.from_config` ignores the first and silently sorts the second."""
    t.only(_MEMBERCARD_KEYS)
    for name, allowed in (("tiers", _TIER_KEYS), ("bonus", _BONUS_KEYS)):
        for i, item in enumerate(t.tables(name)):
            check_keys(f"{t.where}.{name}[{i}]", item, allowed)
    # Programme.from_config stops at its first mistake: each key, tier and tier field alone
    for key, value in t.raw.items():
        if key not in _MEMBERCARD_KEYS:
            continue
        if key not in _FILLERS or not t.tables(key):
            _alone(t, key, functools.partial(Programme.from_config, {key: value}, key=t.where))
            continue
        filler = _FILLERS[key]
        for i, item in enumerate(t.tables(key)):
            for name in filler:
                if name in item:
                    alone = [{**filler, name: item[name]}]
                    _alone(
                        t,
                        f"{key}[{i}].{name}",
                        functools.partial(Programme.from_config, {key: alone}, key=t.where),
                        rename=f"{key}[0].{name}",
                    )
    programme = Programme.from_config(t.raw, key=t.where)
    for (_, prev), (i, cur) in itertools.pairwise(enumerate(t.tables("bonus"))):
        if cur["min_topup"] <= prev["min_topup"]:
            t.fail(
                f"bonus[{i}].min_topup",
                f"{cur['min_topup']} is not above the previous step's {prev['min_topup']};"
                " list the steps in ascending min_topup",
            )
        if cur["bonus"] < prev["bonus"]:
            t.fail(
                f"bonus[{i}].bonus",
                f"{cur['bonus']} is below the previous step's {prev['bonus']};"
                " a larger top-up must not earn a smaller bonus",
            )
    return programme


def _load_keys(section: DaemonSection) -> Keystore:
    key = "daemon.keystore_file" if section.keystore_file else "daemon.keystore_credentials"
    try:
        return Keystore.load(section.keystore_file)
    except KeystoreError as exc:  # its messages name the file and mode, never key bytes
        raise ConfigError(key, exc.message) from None


@functools.lru_cache(maxsize=64)
def _pattern(match: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in match)
    return re.compile(body, re.IGNORECASE | re.DOTALL)
