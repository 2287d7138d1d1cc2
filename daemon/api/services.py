"""Which gRPC services a station offers: the daemon's own, plus any registered by entry point.

The daemon's services are listed here. Other packages add services through the entry-point
group ``carddaemon.api.services``: each entry is a callable ``(station, api_config) ->
Service | None`` that returns ``None`` when it does not apply to this station (the simulator's
``SimulatorService`` answers only on a station running the simulated backend, never on a
``pcsc`` one). So the product never names the simulator, as with the device backends.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Final

from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.errors import ConfigError
from daemon.station import Station

__all__ = ["GROUP", "build_services"]

logger = logging.getLogger(__name__)

#: entry-point group for services of other packages
GROUP: Final = "carddaemon.api.services"

Factory = Callable[[Station, ApiConfig], "Service | None"]

#: the daemon's own services, "module:function" (imported when the server starts)
OWN: Final = (
    "daemon.api.readers:service",
    "daemon.api.cards:service",
    "daemon.api.issuing:service",
    "daemon.api.membership:service",
    "daemon.api.diagnostics:service",
    "daemon.api.printers:service",
    "daemon.api.scanners:service",
)


def _load(target: str) -> Factory:
    module, _, name = target.partition(":")
    factory: Factory = getattr(importlib.import_module(module), name)
    return factory


def build_services(station: Station) -> list[Service]:
    """Every service this station offers, each once (a name twice is a ``ConfigError``)."""
    api = station.config.api
    found: list[Service] = []
    factories = [_load(target) for target in OWN]
    for ep in entry_points(group=GROUP):
        try:
            factories.append(ep.load())
        except Exception as exc:  # a broken plug-in must not stop the tills
            logger.error("API service %s (%s) cannot be loaded: %s", ep.name, ep.value, exc)
    for factory in factories:
        made = factory(station, api)
        if made is None:
            continue
        if any(s.name == made.name for s in found):
            raise ConfigError("api", f"service {made.name} is offered twice")
        found.append(made)
    return found
