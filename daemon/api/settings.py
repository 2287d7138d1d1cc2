"""``[api]``: where the daemon listens, who may connect, and the server-side caps.

Why one Unix socket per role: over a Unix socket gRPC cannot tell which user called, so the
socket file's group and mode decide who may connect, and each socket serves only its role's
methods. A remote issuing station may use TCP, but only with mutual TLS: the role then comes
from the client certificate, mapped here by name.

::

    [api]
    runtime_dir = "/run/carddaemon"      # RuntimeDirectory=carddaemon
    max_message_bytes = 1048576
    max_wait_ms = 60000                  # the longest WaitForCard wait
    max_call_ms = 10000                  # a call without a client deadline
    max_streams = 16                     # open streams per listener
    metrics_address = "127.0.0.1:9464"   # optional: Prometheus /metrics, loopback only
    membership_roles = ["issuer"]        # who may call ChangeTier / RenewCard (tier, validity)

    [api.pos]
    socket = "pos.sock"                  # relative: inside runtime_dir
    mode = 0o660
    group = "carddaemon-pos"

    [api.tcp]                            # optional
    address = "0.0.0.0:50443"
    cert_file = "/etc/carddaemon/tls/server.crt"
    key_file = "/etc/carddaemon/tls/server.key"
    client_ca_file = "/etc/carddaemon/tls/clients-ca.crt"
    roles = { "issuing-station-01" = "issuer" }
"""

from __future__ import annotations

import grp
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from daemon._config_table import Table

__all__ = [
    "DEFAULT_RUNTIME_DIR",
    "ROLES",
    "ApiConfig",
    "ListenerConfig",
    "TcpConfig",
    "parse_api",
]

#: The three roles, each with its own socket and its own set of services.
ROLES: Final = ("pos", "technician", "issuer")
DEFAULT_RUNTIME_DIR: Final = Path("/run/carddaemon")
_API_KEYS = (
    "runtime_dir",
    "max_message_bytes",
    "max_wait_ms",
    "max_call_ms",
    "max_streams",
    "metrics_address",
    "membership_roles",
)
_LISTENER_KEYS = ("enabled", "socket", "mode", "group")
_TCP_KEYS = ("address", "cert_file", "key_file", "client_ca_file", "roles")


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One role's Unix socket."""

    role: str
    socket: Path
    mode: int = 0o660
    group: str | None = None  # None: the daemon's own group
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """The optional mutual-TLS listener; ``roles`` maps a certificate name to a role."""

    address: str
    cert_file: Path
    key_file: Path
    client_ca_file: Path
    roles: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ApiConfig:
    runtime_dir: Path = DEFAULT_RUNTIME_DIR
    listeners: tuple[ListenerConfig, ...] = field(
        default_factory=lambda: tuple(
            ListenerConfig(role, DEFAULT_RUNTIME_DIR / f"{role}.sock") for role in ROLES
        )
    )
    tcp: TcpConfig | None = None
    max_message_bytes: int = 1 << 20
    max_wait_ms: int = 60_000
    max_call_ms: int = 10_000
    max_streams: int = 16
    #: ``HOST:PORT`` of the Prometheus endpoint (a loopback host); None: no endpoint
    metrics_address: str | None = None
    #: roles that may change a card's tier or validity (MembershipService ChangeTier, RenewCard)
    membership_roles: tuple[str, ...] = ("issuer",)

    def listener(self, role: str) -> ListenerConfig | None:
        return next((item for item in self.listeners if item.role == role), None)


def parse_api(t: Table, base_dir: Path | None) -> ApiConfig:
    """The ``[api]`` table (absent: the defaults, sockets in ``/run/carddaemon``)."""
    t.only([*_API_KEYS, *ROLES, "tcp"])
    runtime = t.path("runtime_dir", DEFAULT_RUNTIME_DIR, base_dir=base_dir)
    listeners = tuple(_listener(t, role, runtime) for role in ROLES)
    tcp = _tcp(t, base_dir) if "tcp" in t.raw else None
    return ApiConfig(
        runtime,
        listeners,
        tcp,
        t.integer("max_message_bytes", 1 << 20, 4096, 64 << 20),
        t.integer("max_wait_ms", 60_000, 100, 600_000),
        t.integer("max_call_ms", 10_000, 100, 600_000),
        t.integer("max_streams", 16, 1, 1024),
        _metrics_address(t),
        _membership_roles(t),
    )


def _membership_roles(t: Table) -> tuple[str, ...]:
    """``membership_roles``: which roles may change a tier or renew a card (a store's choice:
    the issuing desk only, or the tills too). An empty list lets no role do it."""
    raw = t.raw.get("membership_roles", ["issuer"])
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        t.fail("membership_roles", f'must be a list of role names such as ["issuer"], got {raw!r}')
    for role in raw:
        if role not in ROLES:
            t.fail("membership_roles", f"{role!r} is not a role (roles: {', '.join(ROLES)})")
    if len(set(raw)) != len(raw):
        t.fail("membership_roles", f"names a role twice: {raw!r}")
    return tuple(raw)


def _metrics_address(t: Table) -> str | None:
    """``metrics_address``: HOST:PORT on a loopback host (the metrics are for this PC's own
    agent; a chain's monitoring scrapes through it, never the daemon directly)."""
    if t.raw.get("metrics_address") is None:
        return None
    address = t.string("metrics_address", None, max_len=64)
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        t.fail("metrics_address", f"{address!r} is not HOST:PORT (e.g. 127.0.0.1:9464)")
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        t.fail(
            "metrics_address",
            f"{host!r} is not a loopback address: the metrics are served on this PC only "
            "(use 127.0.0.1 or [::1])",
        )
    return f"127.0.0.1:{port}" if name == "localhost" else address


def _sub(t: Table, name: str) -> Table:
    raw = t.raw.get(name, {})
    if not isinstance(raw, Mapping):
        t.fail(name, f"must be a table ([{t.where}.{name}]), got {raw!r}")
    return Table(f"{t.where}.{name}", raw)


def _listener(t: Table, role: str, runtime: Path) -> ListenerConfig:
    sub = _sub(t, role)
    sub.only(_LISTENER_KEYS)
    socket = sub.path("socket", Path(f"{role}.sock"), base_dir=runtime)
    mode = _mode(sub)
    group = sub.raw.get("group")
    if group is not None:
        group = sub.string("group", None, max_len=64)
        try:
            grp.getgrnam(group)
        except KeyError:
            sub.fail(
                "group",
                f"no such group {group!r} on this PC (create it, e.g. with the sysusers.d "
                "file, or leave the key out to use the daemon's own group)",
            )
    return ListenerConfig(role, socket, mode, group, sub.boolean("enabled", True))


def _mode(sub: Table) -> int:
    raw: Any = sub.raw.get("mode", 0o660)
    if isinstance(raw, str):
        try:
            raw = int(raw, 8)
        except ValueError:
            sub.fail("mode", f'{raw!r} is not an octal file mode such as "0660"')
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 0o777:
        sub.fail("mode", f"must be a file mode such as 0o660, got {raw!r}")
    if raw & 0o600 != 0o600:
        sub.fail("mode", f"{raw:04o} leaves the daemon unable to use its own socket")
    if raw & 0o002:
        sub.fail("mode", f"{raw:04o} lets every user on the PC connect; use a group instead")
    return int(raw)


def _tcp(t: Table, base_dir: Path | None) -> TcpConfig:
    sub = _sub(t, "tcp")
    sub.only(_TCP_KEYS)
    address = sub.string("address", None, max_len=255)
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        sub.fail("address", f"{address!r} is not HOST:PORT (e.g. 0.0.0.0:50443)")
    files = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        path = sub.path(key, None, base_dir=base_dir)
        if not path.is_file() or not os.access(path, os.R_OK):
            sub.fail(key, f"{str(path)!r} is not a readable file (TLS needs it)")
        files[key] = path
    roles = sub.raw.get("roles")
    if not isinstance(roles, Mapping) or not roles:
        sub.fail("roles", 'map each client certificate name to a role: { "lane-1" = "pos" }')
    for name, role in roles.items():
        if role not in ROLES:
            sub.fail(f"roles.{name}", f"{role!r} is not a role (roles: {', '.join(ROLES)})")
    return TcpConfig(
        address,
        files["cert_file"],
        files["key_file"],
        files["client_ca_file"],
        dict(roles),
    )
