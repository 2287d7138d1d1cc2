"""The one interceptor every listener runs: role allow-list, error mapping, stream cap.

Why an interceptor and not a decorator per handler: a forgotten decorator would silently serve
a method to the wrong role (gRPC's Python API has no per-call auth hook; grpc/grpc#18459).
Here every call of every service passes the same three checks:

1. the method's service must be in the listener's role allow-list, else ``PERMISSION_DENIED``
   with reason ``ROLE_NOT_ALLOWED`` naming the role and the method;
2. a handler raising a domain error (:mod:`daemon.errors`) is answered with that error's one
   status and ``ErrorInfo`` (:mod:`daemon.api.errors`); anything else is ``INTERNAL`` and
   logged with its traceback, never shown to the client;
3. at most ``max_streams`` server streams are open per listener; one more is
   ``RESOURCE_EXHAUSTED`` (reason ``TOO_MANY_STREAMS``) so a flood cannot starve the tills.

It also counts every call in :mod:`daemon.metrics` (started, handled by status code, latency),
labelled by the method's name and the code only, and binds the request's ``request_id`` for
the call's log lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextvars import ContextVar
from typing import Any, TypeAlias

import grpc
from grpc import aio

from daemon import metrics
from daemon.api.errors import to_status
from daemon.errors import CardDaemonError, CertificateNotMapped, RoleNotAllowed, TooManyStreams
from daemon.logs import REQUEST_ID

__all__ = ["ALWAYS", "CALLER_ROLE", "Guard", "RefusalAudit", "TlsGuard", "abort_with"]

logger = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs

#: The role of the current call, set once the guard admitted it ("" outside a call). A handler
#: reads it when it starts (a stream: before its first message) to shape what it shows, e.g.
#: the scanner service's masking of payment codes for every role but ``pos``.
CALLER_ROLE: ContextVar[str] = ContextVar("carddaemon_caller_role", default="")

#: Services every role may call: health checks.
ALWAYS = frozenset({"grpc.health.v1.Health"})

#: Services whose roles the daemon's config chooses: a refusal names the key to change.
ROLES_FROM_CONFIG = {"carddaemon.v1.MembershipService": "[api] membership_roles"}


def _not_allowed(role: str, method: str) -> RoleNotAllowed:
    key = ROLES_FROM_CONFIG.get(_service(method))
    hint = f" (the roles that may are set by {key})" if key else ""
    return RoleNotAllowed(f"the {role} role may not call {method.lstrip('/')}{hint}")


async def abort_with(context: aio.ServicerContext[Any, Any], exc: CardDaemonError) -> None:
    """End the call with ``exc``'s status and ErrorInfo (raises ``AbortError``).

    A call the client already left (cancelled, or its deadline passed) has no one to answer:
    it ends as cancelled instead (its outcome, if it wrote anything, is in the journal)."""
    if context.cancelled():
        raise asyncio.CancelledError(f"client gone: {exc.reason}")
    status = to_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _service(method: str) -> str:
    """``/carddaemon.v1.ReaderService/ListReaders`` -> ``carddaemon.v1.ReaderService``."""
    return method.lstrip("/").split("/", 1)[0]


def _allowed(method: str, allowed: frozenset[str]) -> bool:
    """The whole service is allowed, or this one ``Service/Method``."""
    return _service(method) in allowed or method.lstrip("/") in allowed


#: writes one audit row: ``(event, detail)``; blocking (the journal), run off the event loop
AuditWriter: TypeAlias = Callable[[str, dict[str, Any]], None]


class RefusalAudit:
    """Every permission refusal goes to the audit log, without letting a client that loops on
    a forbidden method fill the disk or slow the loop: per (role, method), one row at most
    every ``every_s`` seconds, which counts the refusals of that method left out since the last
    row (``repeated``). The row is written on a worker thread; the refusal does not wait."""

    def __init__(self, write: AuditWriter, *, every_s: float = 60.0) -> None:
        self.write = write
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}
        self._left_out: dict[tuple[str, str], int] = {}

    def refused(self, role: str, method: str, exc: CardDaemonError) -> None:
        key = (role, method)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return
        self._last[key] = now
        detail = {"role": role, "method": method, "reason": exc.reason,
                  "repeated": self._left_out.pop(key, 0)}  # fmt: skip
        asyncio.get_running_loop().run_in_executor(None, self._write, detail)

    def _write(self, detail: dict[str, Any]) -> None:
        try:
            self.write("permission_refused", detail)
        except Exception:  # the refusal stands; a journal that cannot write says so itself
            logger.exception("could not audit a permission refusal")


class Guard(aio.ServerInterceptor):
    """Role allow-list + error mapping + stream cap for one listener."""

    def __init__(
        self,
        role: str,
        services: Collection[str],
        *,
        max_streams: int,
        audit: RefusalAudit | None = None,
    ) -> None:
        self.role = role
        self.services = frozenset(services) | ALWAYS
        self.max_streams = max_streams
        self.open_streams = 0
        self.audit = audit

    def refused(self, method: str, exc: CardDaemonError, role: str | None = None) -> None:
        """A call was refused for its role or certificate: audited (throttled)."""
        if self.audit is not None:
            self.audit.refused(role or self.role, method.lstrip("/"), exc)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # unknown method: gRPC answers UNIMPLEMENTED itself
        if not _allowed(method, self.services) and not method.startswith("/grpc.reflection."):
            return _refusal(
                handler,
                _not_allowed(self.role, method),
                method,
                self,
            )
        return _wrapped(handler, self, method)

    def admit(self, context: aio.ServicerContext[Any, Any], method: str) -> None:
        """Per-call check before the handler runs (the role was checked when the call came
        in on a role's own socket; :class:`TlsGuard` checks the client certificate here);
        sets :data:`CALLER_ROLE`."""
        CALLER_ROLE.set(self.role)


class TlsGuard(Guard):
    """The TCP listener: mutual TLS, the role from the client certificate's name.

    gRPC interceptors see no peer, so the role is checked per call on the servicer context
    (``auth_context()``: the certificate's common name and subject alternative names, which
    the TLS handshake has already verified against ``client_ca_file``)."""

    def __init__(
        self,
        names: Mapping[str, str],
        services_by_role: Mapping[str, Collection[str]],
        *,
        max_streams: int,
        audit: RefusalAudit | None = None,
    ) -> None:
        every = {name for names_ in services_by_role.values() for name in names_}
        super().__init__("tcp", every, max_streams=max_streams, audit=audit)
        self.names = dict(names)
        self.by_role = {role: frozenset(v) | ALWAYS for role, v in services_by_role.items()}

    def role_of(self, context: aio.ServicerContext[Any, Any]) -> str | None:
        auth = context.auth_context()
        seen = [
            value.decode("utf-8", "replace")
            for key in ("x509_common_name", "x509_subject_alternative_name")
            for value in auth.get(key, [])
        ]
        return next((self.names[name] for name in seen if name in self.names), None)

    def admit(self, context: aio.ServicerContext[Any, Any], method: str) -> None:
        role = self.role_of(context)
        if role is None:
            unmapped = CertificateNotMapped(
                "the client certificate's name is not mapped to a role in [api.tcp] roles"
            )
            self.refused(method, unmapped, "tcp")
            raise unmapped
        if not _allowed(method, self.by_role.get(role, ALWAYS)):
            refusal = _not_allowed(role, method)
            self.refused(method, refusal, role)
            raise refusal
        CALLER_ROLE.set(role)


def _refusal(handler: Handler, exc: CardDaemonError, method: str, guard: Guard) -> Handler:
    def count() -> None:
        call = _Call(method)
        call.failed(exc)
        call.done()
        guard.refused(method, exc)

    async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        count()
        await abort_with(context, exc)

    async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        count()
        await abort_with(context, exc)
        yield  # pragma: no cover - abort raises

    return _like(handler, unary, stream)


def _like(
    handler: Handler,
    unary: Callable[..., Any],
    stream: Callable[..., Any],
) -> Handler:
    """A handler of the same shape (unary or server stream) with new behaviour."""
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # client or bidi streams: none in our contract


def _request_id(request: Any) -> str:
    """The request's ``request_id`` field (mutations have one), else ""."""
    value = getattr(request, "request_id", "")
    return value[:64] if isinstance(value, str) else ""


class _Call:
    """One call's metrics: started now, handled with the code it ended with."""

    def __init__(self, method: str) -> None:
        self.method = method.lstrip("/")
        self.code = "OK"
        self.start = time.perf_counter()
        metrics.RPC_STARTED.labels(self.method).inc()

    def failed(self, exc: CardDaemonError) -> None:
        self.code = to_status(exc).code.name

    def aborted(self, context: aio.ServicerContext[Any, Any]) -> None:
        """The handler aborted the call itself: the code it set."""
        code: Any = context.code()
        self.code = getattr(code, "name", None) or "UNKNOWN"

    def done(self) -> None:
        metrics.RPC_HANDLED.labels(self.method, self.code).inc()
        metrics.RPC_SECONDS.labels(self.method).observe(time.perf_counter() - self.start)


async def _answer_failure(
    call: _Call, context: aio.ServicerContext[Any, Any], method: str, exc: Exception
) -> None:
    """The one answer to a handler's failure: a domain error with its status and ErrorInfo,
    anything else as INTERNAL (logged with its traceback, never shown to the client)."""
    if isinstance(exc, CardDaemonError):
        call.failed(exc)
        logger.info("%s: %s", method, exc)
        await abort_with(context, exc)
        return
    call.code = "INTERNAL"
    logger.error("%s failed", method, exc_info=exc)
    await abort_with(context, CardDaemonError(f"{method}: internal error"))


def _wrapped(handler: Handler, guard: Guard, method: str) -> Handler:
    # aio handlers are coroutines / async generators; grpc's stubs type them as sync ones
    inner_unary: Any = handler.unary_unary
    inner_stream: Any = handler.unary_stream

    async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        assert inner_unary is not None
        REQUEST_ID.set(_request_id(request))  # this call's task: its log lines carry it
        call = _Call(method)
        try:
            guard.admit(context, method)
            return await inner_unary(request, context)
        except (aio.AbortError, grpc.RpcError):
            call.aborted(context)
            raise
        except asyncio.CancelledError:
            call.code = "CANCELLED"
            raise
        except Exception as exc:
            await _answer_failure(call, context, method, exc)
        finally:
            call.done()

    async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        assert inner_stream is not None
        call = _Call(method)
        if guard.open_streams >= guard.max_streams:
            refusal = TooManyStreams(
                f"{guard.open_streams} streams already open on the {guard.role} listener "
                f"(max_streams = {guard.max_streams})"
            )
            call.failed(refusal)
            call.done()
            await abort_with(context, refusal)
        guard.open_streams += 1
        REQUEST_ID.set(_request_id(request))
        try:
            guard.admit(context, method)
            async for item in inner_stream(request, context):
                yield item
        except (aio.AbortError, grpc.RpcError):
            call.aborted(context)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            call.code = "CANCELLED"
            raise
        except Exception as exc:
            await _answer_failure(call, context, method, exc)
        finally:
            guard.open_streams -= 1
            call.done()

    return _like(handler, unary, stream)
