"""The one backend registry for readers, printers and scanners.

A backend is chosen by name in the config (``[readers] backend = "pcsc"``,
``[printers.<id>] backend = "network"``, ``[scanners.<id>] backend = "serial"``). Each device
kind has a small table of built-in names -> ``"module:Class"``, and an entry-point group
(``carddaemon.backends.<kind>``) where other packages add theirs: the simulator registers its
backends from its own ``pyproject.toml`` and is never named inside ``daemon/``.

Modules are imported only by :func:`load`, so importing :mod:`daemon` imports no hardware
library and no simulator. Every failure is a :class:`~daemon.errors.ConfigError` whose key is
the config key that chose the backend and whose message lists the names that would work.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Final, Literal, get_args

from daemon.errors import ConfigError

__all__ = ["GROUP_PREFIX", "KINDS", "Kind", "clear_cache", "is_builtin", "load", "names", "target"]

logger = logging.getLogger(__name__)

Kind = Literal["readers", "printers", "scanners"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
#: entry-point group per kind: ``carddaemon.backends.readers`` etc.
GROUP_PREFIX: Final = "carddaemon.backends."

_BUILTIN: Final[Mapping[Kind, Mapping[str, str]]] = {
    "readers": {"pcsc": "daemon.readers.pcsc:PcscBackend"},
    "printers": {
        "network": "daemon.printers.connectors:NetworkBackend",
        "serial": "daemon.printers.connectors:SerialBackend",
        "usb": "daemon.printers.connectors:UsbBackend",
    },
    "scanners": {
        "hidpos": "daemon.scanners.usb_hidpos:HidPosScanner",
        "serial": "daemon.scanners.serial_port:SerialScanner",
        "wedge": "daemon.scanners.wedge:KeyboardWedgeScanner",
    },
}


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown device kind {kind!r} (known: {', '.join(KINDS)})")
    return kind


@functools.cache
def _table(kind: Kind) -> Mapping[str, str]:
    """Built-ins plus entry points, read once (a built-in name cannot be taken over)."""
    table = dict(_BUILTIN[kind])
    for ep in entry_points(group=GROUP_PREFIX + kind):
        if ep.name in _BUILTIN[kind]:
            logger.warning(
                "entry point %s = %s ignored: %r is a built-in %s backend",
                ep.name,
                ep.value,
                ep.name,
                kind,
            )
            continue
        table.setdefault(ep.name, ep.value)
    return table


def clear_cache() -> None:
    """Forget the entry points read so far (after installing a package at run time, tests)."""
    _table.cache_clear()


def names(kind: str) -> tuple[str, ...]:
    """Every backend name of this kind, built-in and registered, sorted."""
    return tuple(sorted(_table(_check_kind(kind))))


def target(kind: str, name: str) -> str | None:
    """``"module:Class"`` registered as ``name``, or ``None``; imports nothing."""
    return _table(_check_kind(kind)).get(name)


def is_builtin(kind: str, name: str) -> bool:
    """Whether ``name`` is one of carddaemon's own backends (not added by a package)."""
    return name in _BUILTIN[_check_kind(kind)]


def load(kind: str, name: str, *, key: str) -> type:
    """The backend class registered as ``name``, importing its module now.

    ``key`` is the config key that named it (``printers.front.backend``): an unknown name or a
    module that does not import is a ``ConfigError`` on that key listing the known names.
    """
    checked = _check_kind(kind)
    known = ", ".join(names(checked))
    where = target(checked, name)
    if where is None:
        raise ConfigError(key, f"unknown {checked[:-1]} backend {name!r} (known: {known})")
    module_name, _, attr = where.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except Exception as exc:  # a broken plug-in must stop the start with a message, not a trace
        raise ConfigError(
            key,
            f"{checked[:-1]} backend {name!r} ({where}) cannot be loaded: "
            f"{type(exc).__name__}: {exc} (known: {known})",
        ) from exc
    if not isinstance(obj, type):
        raise ConfigError(
            key, f"{checked[:-1]} backend {name!r} ({where}) is not a class (known: {known})"
        )
    return obj
