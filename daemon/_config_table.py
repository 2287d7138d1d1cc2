"""Typed reads from one table of the daemon config, each error naming the full dotted key.

Private helper of :mod:`daemon.config`: the rules every section shares (unknown keys are errors,
with a "did you mean"; integers are never bools or floats; device ids are stable names) live
once here so each section's code reads as a list of its keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from daemon.errors import ConfigError

__all__ = ["STABLE_ID", "Table", "check_keys", "lookup", "with_value"]

#: Device ids (``[printers.<id>]``) are stable names the API and logs use for years.
STABLE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_INDEX = re.compile(r"(?P<name>[^\[\]]+)\[(?P<index>\d+)\]")
_SECRET_WORDS = ("secret", "token", "password", "passphrase", "master")
_MISSING: Final = object()


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_keys(where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuse any key not in ``allowed`` (a typo must never be silently ignored)."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                _join(where, key), f"unknown key; {hint}valid keys here: {', '.join(allowed)}"
            )


def lookup(doc: Mapping[str, Any], key: str) -> object:
    """The value at a dotted key such as ``membercard.tiers[2].discount`` (or a sentinel)."""
    node: object = doc
    for part in key.split("."):
        m = _INDEX.fullmatch(part)
        name, index = (m["name"], int(m["index"])) if m else (part, None)
        if not isinstance(node, Mapping) or name not in node:
            return _MISSING
        node = node[name]
        if index is not None:
            if not isinstance(node, list) or index >= len(node):
                return _MISSING
            node = node[index]
    return node


def with_value(exc: ConfigError, doc: Mapping[str, Any]) -> ConfigError:
    """``exc`` with the offending value appended when its message does not show it yet.

    The areas' parsers name the key but not always the value; store IT needs both. Tables and
    lists are not echoed, nor anything under a key that sounds secret.
    """
    value = lookup(doc, exc.key)
    if value is _MISSING or isinstance(value, (dict, list)):
        return exc
    last = exc.key.rsplit(".", 1)[-1].lower()
    if any(word in last for word in _SECRET_WORDS):
        return exc
    prefix = f"{exc.key}: "
    text = exc.message.removeprefix(prefix)  # ConfigError puts the key in front of the text
    if text.startswith("unknown key"):
        return exc
    if any(_shows(text, shown) for shown in (repr(value), str(value))):
        return exc
    return ConfigError(exc.key, f"{text} (got {_describe(value)})")


def _shows(text: str, value: str) -> bool:
    """Whether ``value`` appears in ``text`` as a whole token (0 is not shown by "10000")."""
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\.)", text) is not None


class Table:
    """One table of the config; ``where`` is its dotted path (``readers.front``)."""

    def __init__(self, where: str, raw: Mapping[str, Any]) -> None:
        self.where = where
        self.raw = raw

    @classmethod
    def section(cls, doc: Mapping[str, Any], name: str) -> Table:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(name, f"must be a table [{name}], got {_describe(value)}")
        return cls(name, value)

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(_join(self.where, key), message)

    def only(self, allowed: Sequence[str]) -> None:
        check_keys(self.where, self.raw, allowed)

    def devices(self, options: Sequence[str] = ()) -> Iterator[tuple[str, Table]]:
        """The ``[<section>.<id>]`` sub-tables; other keys must be one of ``options``."""
        for key, value in self.raw.items():
            if not isinstance(value, dict):
                if key in options:
                    continue
                if options:
                    check_keys(self.where, {key: value}, options)
                self.fail(
                    key, f"must be a device table [{self.where}.{key}], got {_describe(value)}"
                )
            if not STABLE_ID.fullmatch(key):
                self.fail(
                    key,
                    f"device id {key!r} must be 1-32 letters, digits, '_' or '-' "
                    "(starting with a letter or digit)",
                )
            yield key, Table(_join(self.where, key), value)

    def tables(self, name: str) -> list[Mapping[str, Any]]:
        """An array of tables (``[[membercard.tiers]]``); anything else gives ``[]`` and is
        left for the owning parser to refuse."""
        value = self.raw.get(name, [])
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
        return []

    # --- typed values ---------------------------------------------------------------------------

    def _get(self, key: str, default: Any) -> Any:
        value = self.raw.get(key, default)
        if value is None:
            self.fail(key, "is required")
        return value

    def string(self, key: str, default: str | None, *, max_len: int = 4096) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_describe(value)}")
        if not value.strip() or len(value) > max_len or "\x00" in value:
            self.fail(key, f"must be a non-empty string of at most {max_len} characters")
        return str(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"must be an integer in {low}..{high}, got {_describe(value)}")
        if not low <= value <= high:
            self.fail(key, f"must be an integer in {low}..{high}, got {value}")
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_describe(value)}")
        return bool(value)

    def choice(self, key: str, choices: Sequence[str], default: str, *, what: str = "value") -> str:
        value = self._get(key, default)
        if value not in choices:
            self.fail(key, f"unknown {what} {value!r} (valid: {', '.join(choices)})")
        return str(value)

    def path(self, key: str, default: Path | None, *, base_dir: Path | None) -> Path:
        """An absolute path, or one relative to ``base_dir`` when there is one."""
        raw = self._get(key, None if default is None else str(default))
        text = self.string(key, raw) if isinstance(raw, str) else raw
        if not isinstance(text, str):
            self.fail(key, f"must be a path string, got {_describe(text)}")
        path = Path(text)
        if not path.is_absolute():
            if base_dir is None:
                self.fail(key, f"{text!r} must be an absolute path")
            else:
                path = base_dir / path
        return path
