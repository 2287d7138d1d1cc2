"""Typed reads from one table of the daemon config, each error naming the full dotted key.

Private helper of :mod:`daemon.config`: the rules every section shares (unknown keys are errors,
with a "did you mean"; integers are never bools or floats; device ids are stable names) live
once here so each section's code reads as a list of its keys.

Inside :func:`collecting` a bad value is recorded and its default used, so the rest of the
table is still checked: store IT sees a typo *and* a bad value of one section in one run.
Outside it (a table checked on its own) the first mistake raises, as before.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

from daemon.errors import ConfigError

__all__ = ["STABLE_ID", "Table", "check_keys", "collecting", "lookup", "record", "with_value"]

T = TypeVar("T")

#: Device ids (``[printers.<id>]``) are stable names the API and logs use for years.
STABLE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_INDEX = re.compile(r"(?P<name>[^\[\]]+)\[(?P<index>\d+)\]")
_SECRET_WORDS = ("secret", "token", "password", "passphrase", "master")
_MISSING: Final = object()
#: the mistakes recorded by the :func:`collecting` block running in this context, if any
_SINK: ContextVar[list[ConfigError] | None] = ContextVar("config_mistakes", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[ConfigError]]:
    """Record mistakes instead of raising at the first; the list holds them in file order."""
    found: list[ConfigError] = []
    token = _SINK.set(found)
    try:
        yield found
    finally:
        _SINK.reset(token)


def record(exc: ConfigError) -> None:
    """Note a mistake and carry on (inside :func:`collecting`), else raise it."""
    sink = _SINK.get()
    if sink is None:
        raise exc
    sink.append(exc)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_keys(where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuse every key not in ``allowed`` (a typo must never be silently ignored)."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            record(
                ConfigError(
                    _join(where, key), f"unknown key; {hint}valid keys here: {', '.join(allowed)}"
                )
            )


def _typo_of(key: str, table: Mapping[str, Any]) -> bool:
    """Whether an unknown key of ``table`` looks like a misspelt ``key`` (its "did you mean"
    already tells store IT; "is required" on top would say the same thing twice)."""
    return bool(difflib.get_close_matches(key, [k for k in table if k != key], n=1))


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

    def problem(self, key: str, message: str) -> None:
        """A mistake at ``key`` that does not stop checking the rest of the table."""
        record(ConfigError(_join(self.where, key), message))

    def _soft(self, key: str, message: str, fallback: T) -> T:
        """Record a bad value and go on with ``fallback`` (raises outside :func:`collecting`)."""
        self.problem(key, message)
        return fallback

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
                else:
                    self.problem(
                        key, f"must be a device table [{self.where}.{key}], got {_describe(value)}"
                    )
                continue
            if not STABLE_ID.fullmatch(key):
                self.problem(
                    key,
                    f"device id {key!r} must be 1-32 letters, digits, '_' or '-' "
                    "(starting with a letter or digit)",
                )
                continue
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
            if _SINK.get() is not None and _typo_of(key, self.raw):
                return _MISSING  # the misspelt key's "did you mean" was recorded
            self.fail(key, "is required")
        return value

    # Each getter, on a bad value inside collecting(), records it and returns the default (or
    # an empty value of the right type for a required key): later checks still run, and the
    # unit counts as failed because something was recorded.

    def string(self, key: str, default: str | None, *, max_len: int = 4096) -> str:
        value = self._get(key, default)
        fallback = default or ""
        if value is _MISSING:
            return fallback
        if not isinstance(value, str):
            return self._soft(key, f"must be a string, got {_describe(value)}", fallback)
        if not value.strip() or len(value) > max_len or "\x00" in value:
            return self._soft(
                key, f"must be a non-empty string of at most {max_len} characters", fallback
            )
        return str(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            return self._soft(
                key, f"must be an integer in {low}..{high}, got {_describe(value)}", default
            )
        if not low <= value <= high:
            return self._soft(key, f"must be an integer in {low}..{high}, got {value}", default)
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            return self._soft(key, f"must be true or false, got {_describe(value)}", default)
        return bool(value)

    def choice(self, key: str, choices: Sequence[str], default: str, *, what: str = "value") -> str:
        value = self._get(key, default)
        if value not in choices:
            return self._soft(
                key, f"unknown {what} {value!r} (valid: {', '.join(choices)})", default
            )
        return str(value)

    def path(self, key: str, default: Path | None, *, base_dir: Path | None) -> Path:
        """An absolute path, or one relative to ``base_dir`` when there is one."""
        fallback = default if default is not None else Path()
        if base_dir is not None and not fallback.is_absolute():
            fallback = base_dir / fallback
        raw = self._get(key, None if default is None else str(default))
        if raw is _MISSING:
            return fallback
        if not isinstance(raw, str):
            return self._soft(key, f"must be a path string, got {_describe(raw)}", fallback)
        text = self.string(key, raw)
        path = Path(text)
        if not path.is_absolute():
            if base_dir is None:
                return self._soft(key, f"{text!r} must be an absolute path", fallback)
            path = base_dir / path
        return path
