"""The daemon's gRPC side: one ``grpc.aio`` server per listener, all over one station.

Each role listens on its own Unix socket (``[api.<role>]``), created with the mode and group
from the config (the process umask must not decide who may connect: the mode is set after
binding, from restrictive to the configured one), and serves only its role's services; the
optional TCP listener needs mutual TLS and takes the role from the client certificate. Health
(``grpc.health.v1``) is on every listener, reflection only on the technician's. With
``[api] metrics_address`` the Prometheus endpoint (:mod:`daemon.metrics`) starts and stops
with the listeners, on the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from daemon.api.guard import AuditWriter, Guard, RefusalAudit, TlsGuard
from daemon.api.settings import ApiConfig, ListenerConfig
from daemon.errors import ConfigError
from daemon.metrics import MetricsEndpoint

__all__ = ["ApiServer", "Listener", "Service"]

logger = logging.getLogger(__name__)

#: ``(servicer, server)`` -> None, as protoc's ``add_XServicer_to_server``.
Register = Callable[[Any, aio.Server], None]


@dataclass(frozen=True)
class Service:
    """One gRPC service the daemon offers: its full name, who may call it, how to add it."""

    name: str  # "carddaemon.v1.ReaderService"
    roles: frozenset[str]  # roles that may call every method
    servicer: Any
    register: Register
    #: roles that may call only some methods (e.g. the technician: GetOperation)
    some: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allowed(self, role: str) -> frozenset[str]:
        """What ``role`` may call: the service name (everything) or ``Service/Method`` names."""
        if role in self.roles:
            return frozenset({self.name})
        return frozenset(f"{self.name}/{m}" for m in self.some.get(role, ()))


@dataclass
class Listener:
    role: str
    address: str  # "unix:/run/carddaemon/pos.sock" or "0.0.0.0:50443"
    server: aio.Server
    path: Path | None = None  # the socket file


class ApiServer:
    """Start/stop every listener; ``health`` is shared so a status set once shows everywhere."""

    def __init__(
        self, config: ApiConfig, services: Sequence[Service], *, audit: AuditWriter | None = None
    ) -> None:
        self.config = config
        self.services = tuple(services)
        #: permission refusals of every listener go to the audit log (one throttle for all)
        self.refusals = RefusalAudit(audit) if audit is not None else None
        self.health = health.aio.HealthServicer()
        self.listeners: list[Listener] = []
        self.metrics: MetricsEndpoint | None = None

    def _options(self) -> list[tuple[str, Any]]:
        size = self.config.max_message_bytes
        return [
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
            ("grpc.so_reuseport", 0),
        ]

    def _server(self, role: str) -> aio.Server:
        allowed = [s for s in self.services if s.allowed(role)]
        names = [name for s in allowed for name in s.allowed(role)]
        guard = Guard(role, names, max_streams=self.config.max_streams, audit=self.refusals)
        server = aio.server(interceptors=[guard], options=self._options())
        # every service on every listener: a call of another role's method is then
        # PERMISSION_DENIED naming the role (the guard), not a puzzling UNIMPLEMENTED
        for service in self.services:
            service.register(service.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if role == "technician":
            from grpc_reflection.v1alpha import reflection

            names = [s.name for s in allowed]
            reflection.enable_server_reflection(
                (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME),
                server,
            )  # fmt: skip
        return server

    async def start(self) -> None:
        """Bind every enabled listener; a socket that cannot be made names its config key."""
        api = self.config
        _runtime_dir(api.runtime_dir)
        for item in api.listeners:
            if item.enabled:
                self.listeners.append(await self._start_unix(item))
        if api.tcp is not None:
            self.listeners.append(await self._start_tcp())
        if api.metrics_address is not None:
            endpoint = MetricsEndpoint(api.metrics_address)
            try:
                await endpoint.start()
            except OSError as exc:
                raise ConfigError(
                    "api.metrics_address",
                    f"cannot listen on {api.metrics_address}: {exc.strerror or exc}",
                ) from None
            self.metrics = endpoint
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def _start_unix(self, item: ListenerConfig) -> Listener:
        path = item.socket
        key = f"api.{item.role}.socket"
        _clear_stale(path, key)
        server = self._server(item.role)
        address = f"unix:{path}"
        # the socket file is made by gRPC's core, possibly off this thread: it is born with
        # no more than the configured mode (umask while binding), then set exactly and checked
        old_umask = os.umask(0o777 & ~item.mode)
        try:
            server.add_insecure_port(address)
            await server.start()
        except RuntimeError as exc:
            raise ConfigError(key, f"cannot listen on {str(path)!r}: {exc}") from None
        finally:
            os.umask(old_umask)
        try:
            await _settle_mode(path, item.mode)
            if item.group is not None:
                os.chown(path, -1, grp.getgrnam(item.group).gr_gid)
        except OSError as exc:
            await server.stop(None)
            raise ConfigError(f"api.{item.role}.group", f"cannot set {path}: {exc}") from None
        logger.info("listening for %s on %s (mode %04o)", item.role, path, item.mode)
        return Listener(item.role, address, server, path)

    async def _start_tcp(self) -> Listener:
        tcp = self.config.tcp
        assert tcp is not None
        by_role = {
            role: [name for s in self.services for name in s.allowed(role)]
            for role in set(tcp.roles.values())
        }
        guard = TlsGuard(
            tcp.roles, by_role, max_streams=self.config.max_streams, audit=self.refusals
        )
        server = aio.server(interceptors=[guard], options=self._options())
        for service in self.services:
            service.register(service.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        credentials = grpc.ssl_server_credentials(
            [(tcp.key_file.read_bytes(), tcp.cert_file.read_bytes())],
            root_certificates=tcp.client_ca_file.read_bytes(),
            require_client_auth=True,
        )
        try:
            port = server.add_secure_port(tcp.address, credentials)
        except RuntimeError as exc:
            raise ConfigError("api.tcp.address", f"cannot listen on {tcp.address}: {exc}") from None
        await server.start()
        address = f"{tcp.address.rpartition(':')[0]}:{port}"
        logger.info("listening for TLS clients on %s", address)
        return Listener("tcp", address, server)

    async def set_serving(self, service: str, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse
        await self.health.set(service, status.SERVING if serving else status.NOT_SERVING)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for ``grace_s``, remove the sockets."""
        await self.health.enter_graceful_shutdown()
        listeners, self.listeners = self.listeners, []
        await asyncio.gather(*(item.server.stop(grace_s) for item in listeners))
        metrics, self.metrics = self.metrics, None
        if metrics is not None:
            await metrics.stop()
        for item in listeners:
            if item.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    item.path.unlink()

    def addresses(self) -> Mapping[str, str]:
        return {item.role: item.address for item in self.listeners}


async def _settle_mode(path: Path, mode: int, timeout_s: float = 2.0) -> None:
    """chmod ``path`` until it holds ``mode`` (the file may appear or be re-made just after
    ``start`` returns)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            os.chmod(path, mode)
            if stat.S_IMODE(path.stat().st_mode) == mode:
                return
        except FileNotFoundError:
            if loop.time() >= deadline:
                raise
        if loop.time() >= deadline:
            raise OSError(f"{path} keeps mode {stat.S_IMODE(path.stat().st_mode):04o}")
        await asyncio.sleep(0.01)


def _runtime_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "api.runtime_dir", f"cannot create {str(path)!r}: {exc.strerror}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("api.runtime_dir", f"{str(path)!r} is not writable by the daemon")


def _clear_stale(path: Path, key: str) -> None:
    """A socket file left by a crashed daemon is removed; anything else there is refused."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(key, f"{str(path)!r} exists and is not a socket; remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody answers: left behind by a daemon that died
        return
    finally:
        probe.close()
    raise ConfigError(key, f"another carddaemon is already listening on {str(path)!r}")
