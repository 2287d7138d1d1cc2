"""Reader backends: the small interface every backend implements, and a lazy registry.

A backend is chosen by name in the config (``[readers] backend = "pcsc"`` or ``"sim"``). The
registry maps names to ``(module, class)`` and imports the module only when the backend is
created, so importing :mod:`daemon` never imports pyscard (nor the simulator).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from daemon.errors import ConfigError
from daemon.readers.connection import CardConnection

__all__ = [
    "BACKENDS",
    "ReaderBackend",
    "ReaderState",
    "create_backend",
]


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One reader as the backend sees it right now.

    ``generation`` changes whenever a card arrives or leaves, so a card swapped between two
    looks (present both times) is still noticed. ``flags`` is backend-private bookkeeping
    (the PC/SC event state).
    """

    name: str
    present: bool
    atr: bytes = b""
    generation: int = 0
    flags: int = 0


@runtime_checkable
class ReaderBackend(Protocol):
    """What the reader layer needs from PC/SC or the simulator."""

    name: str

    def list_readers(self) -> list[str]:
        """Names of the readers attached now (``PcscUnavailable`` if the service is gone)."""
        ...

    def connect(self, reader: str, *, exclusive: bool = False) -> CardConnection:
        """Connect to the card in ``reader`` (``CardAbsent``, ``ReaderUnavailable``...)."""
        ...

    def wait_for_change(
        self, known: Mapping[str, ReaderState] | None, timeout_s: float
    ) -> dict[str, ReaderState]:
        """Block until the readers differ from ``known`` (``None``: return at once) or the
        timeout passes; return the current states. Used by one monitor thread only."""
        ...

    def cancel(self) -> None:
        """Wake a blocked :meth:`wait_for_change` (from another thread)."""
        ...

    def close(self) -> None:
        """Release everything the backend holds. Idempotent."""
        ...


BACKENDS: Mapping[str, tuple[str, str]] = {
    "pcsc": ("daemon.readers.pcsc", "PcscBackend"),
    "sim": ("sim.backend", "SimBackend"),
}


def create_backend(name: str, /, **options: Any) -> ReaderBackend:
    """Create the backend registered as ``name``; an unknown name is a ``ConfigError``."""
    try:
        module_name, class_name = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(
            "readers.backend", f"unknown reader backend {name!r} (known: {known})"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: ReaderBackend = cls(**options)
    return backend
