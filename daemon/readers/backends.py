"""Reader backends: the small interface every backend implements, and how one is created.

A backend is chosen by name in the config (``[readers] backend = "pcsc"``); names resolve
through :mod:`daemon.registry` (built-ins plus the ``carddaemon.backends.readers`` entry
points, e.g. the simulator's), which imports the module only when the backend is created, so
importing :mod:`daemon` never imports pyscard (nor the simulator).

Every backend class has ``from_config(readers_config)``: the daemon builds its backend from the
parsed ``[readers]`` section alone (:class:`ReadersOptions`, what ``daemon.config`` parses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

from daemon import registry
from daemon.errors import ConfigError
from daemon.readers.connection import CardConnection

__all__ = [
    "ReaderBackend",
    "ReaderOptions",
    "ReaderState",
    "ReadersOptions",
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


class ReaderOptions(Protocol):
    """One ``[readers.<id>]`` table as a backend sees it (``daemon.config.ReaderConfig``)."""

    @property
    def id(self) -> str: ...
    @property
    def match(self) -> str: ...
    @property
    def dialect(self) -> str: ...


class ReadersOptions(Protocol):
    """The ``[readers]`` section as a backend sees it (``daemon.config.ReadersConfig``)."""

    @property
    def backend(self) -> str: ...
    @property
    def readers(self) -> Sequence[ReaderOptions]: ...

    def for_reader(self, reader_name: str) -> ReaderOptions | None:
        """The first configured reader whose ``match`` pattern matches ``reader_name``."""
        ...


@runtime_checkable
class ReaderBackend(Protocol):
    """What the reader layer needs from PC/SC or the simulator."""

    name: str

    @classmethod
    def from_config(cls, config: ReadersOptions) -> Self:
        """The backend for a parsed ``[readers]`` section (the daemon's construction hook)."""
        ...

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


def create_backend(
    name: str, /, config: ReadersOptions | None = None, **options: Any
) -> ReaderBackend:
    """Create the backend registered as ``name``: from ``config`` (the daemon's way) or from
    keyword ``options`` (tools, tests). An unknown or unimportable name is a ``ConfigError``
    on ``readers.backend``."""
    cls = registry.load("readers", name, key="readers.backend")
    if config is not None and options:
        raise TypeError("create_backend: give config or options, not both")
    factory: Any = getattr(cls, "from_config", None) if config is not None else cls
    if factory is None:
        raise ConfigError("readers.backend", f"reader backend {name!r} has no from_config")
    backend: ReaderBackend = factory(config) if config is not None else factory(**options)
    return backend
