"""``ScannerService``: the barcode scanners of this PC and their classified scans.

Every role may list, get and watch; only the POS role may arm a one-shot scanner. Scans come
from the station's scan stream (:class:`daemon.scanners.stream.ScanStream`), subscribed with the
caller's role (:data:`daemon.api.guard.CALLER_ROLE`): payment codes and member tokens reach
the ``pos`` listener (or a TLS client whose certificate maps to ``pos``) in clear and every
other caller masked (``masked`` set). Nothing here logs a scan's text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from daemon.api import convert
from daemon.api.guard import CALLER_ROLE
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import scanner_service_pb2 as pb
from daemon.api.v1 import scanner_service_pb2_grpc as pb_grpc
from daemon.errors import InvalidArgument, ScannerUnavailable
from daemon.events import Event
from daemon.scanners.base import ScannerState
from daemon.scanners.classify import ScanKind
from daemon.scanners.events import Role, ScanEvent, StatusEvent
from daemon.scanners.stream import ScanStream
from daemon.station import Station

__all__ = ["ScannerServicer", "caller_role", "scan_message", "service"]

Context = aio.ServicerContext[Any, Any]
_S = pb.Scanner

_STATES = {
    ScannerState.STARTING: _S.STATE_STARTING,
    ScannerState.CONNECTED: _S.STATE_CONNECTED,
    ScannerState.DISCONNECTED: _S.STATE_DISCONNECTED,
    ScannerState.CLOSED: _S.STATE_CLOSED,
}
_KINDS: dict[ScanKind, pb.ScanKind.ValueType] = {
    kind: pb.ScanKind.Value(f"SCAN_KIND_{kind.value}") for kind in ScanKind
}
_KIND_OF: dict[int, ScanKind] = {int(v): k for k, v in _KINDS.items()}
_READ_ONLY = frozenset({"ListScanners", "GetScanner", "WatchScans"})


def caller_role() -> Role:
    """The current call's role as the scan stream knows roles; any role it does not know
    (a TLS role of another name) is shown what a technician is shown: masked."""
    try:
        return Role(CALLER_ROLE.get())
    except ValueError:
        return Role.TECHNICIAN


def _stream(station: Station) -> ScanStream:
    if station.scans is None:
        raise ScannerUnavailable("the station's scanners are not running")
    return station.scans


def scanner_message(station: Station, sid: str) -> pb.Scanner:
    """``scanners/{sid}`` as it is now: state and detail from its last status event."""
    worker = station.scanner(sid)
    stream = _stream(station)
    message = pb.Scanner(
        name=f"scanners/{sid}",
        backend=station.config.scanners[sid].backend,
        state=_STATES[worker.state],
        one_shot=stream.is_one_shot(sid),
    )
    message.armed = message.one_shot and stream.is_armed(sid)
    last = station.hub.states().get(f"scanners/{sid}")
    if last is not None and isinstance(last.payload, StatusEvent):
        _status_fields(message, last.payload, last.time)
    return message


def _status_fields(message: pb.Scanner, status: StatusEvent, when: float) -> None:
    message.state = _STATES[status.state]
    message.detail = status.detail
    message.state_change_time.CopyFrom(convert.timestamp(when))


def scan_message(event: ScanEvent, publish_time: float) -> pb.Scan:
    """One scan as its subscriber may see it (``event`` is already the role's view)."""
    verdict = event.classification
    received = publish_time - max(0, event.published_ns - event.received_ns) / 1e9
    scan = pb.Scan(
        scanner=f"scanners/{event.scanner_id}",
        text=event.text,
        masked=event.masked,
        aim=event.aim or "",
        symbology=verdict.symbology.name,
        kind=_KINDS[verdict.kind],
        valid=verdict.valid,
        problem=verdict.problem or "",
        suffix_missing=event.suffix_missing,
        receive_time=convert.timestamp(received),
    )
    if verdict.product is not None:
        p = verdict.product
        scan.product.CopyFrom(
            pb.ProductCode(kind=p.kind.value, code=p.code, gtin14=p.gtin14, check_ok=p.check_ok)
        )
    scan.gs1.extend(pb.Gs1Element(ai=e.ai, title=e.title, value=e.value) for e in verdict.gs1)
    if verdict.kind is ScanKind.MEMBER:
        member = pb.MemberToken(member_id=verdict.member_id or "")
        if verdict.member_status is not None:
            member.status = pb.MemberToken.Status.Value(f"STATUS_{verdict.member_status.value}")
        if verdict.member_expiry is not None:
            member.expire_time.CopyFrom(convert.timestamp(verdict.member_expiry))
        scan.member.CopyFrom(member)
    if verdict.payment is not None:
        scan.payment = pb.PaymentProvider.Value(f"PAYMENT_PROVIDER_{verdict.payment.value}")
    return scan


class ScannerServicer(pb_grpc.ScannerServiceServicer):
    def __init__(self, station: Station) -> None:
        self.station = station

    def _id(self, name: str, field: str) -> str:
        sid = convert.resource_id(name, "scanners", field)
        self.station.scanner(sid)  # DeviceNotFound (NOT_FOUND) names the ids that exist
        return sid

    async def ListScanners(
        self, request: pb.ListScannersRequest, context: Context
    ) -> pb.ListScannersResponse:
        return pb.ListScannersResponse(
            scanners=[scanner_message(self.station, sid) for sid in self.station.scanners]
        )

    async def GetScanner(
        self, request: pb.GetScannerRequest, context: Context
    ) -> pb.GetScannerResponse:
        sid = self._id(request.name, "name")
        return pb.GetScannerResponse(scanner=scanner_message(self.station, sid))

    async def ArmScanner(
        self, request: pb.ArmScannerRequest, context: Context
    ) -> pb.ArmScannerResponse:
        sid = self._id(request.name, "name")
        _stream(self.station).arm(sid)
        return pb.ArmScannerResponse(scanner=scanner_message(self.station, sid))

    async def WatchScans(
        self, request: pb.WatchScansRequest, context: Context
    ) -> AsyncIterator[pb.WatchScansResponse]:
        role = caller_role()  # read before the first message: the guard set it for this call
        sources = {f"scanners/{self._id(name, 'scanners')}" for name in request.scanners}
        kinds: set[ScanKind] = set()
        for kind in request.kinds:
            if kind not in _KIND_OF:
                raise InvalidArgument("kinds", f"{kind} is not a ScanKind")
            kinds.add(_KIND_OF[kind])
        stream = _stream(self.station)
        last = self.station.hub.last_seq
        if request.resume_after > last:
            raise InvalidArgument(
                "resume_after",
                f"{request.resume_after} is after the last event ({last}): the daemon "
                "restarted since; start again with 0",
            )
        lost = 0  # events the hub dropped before ones this client filtered out
        with stream.subscribe(role, after=request.resume_after or None) as sub:
            async for event in sub:
                message = self._message(event, sources, kinds, lost)
                if message is None:
                    lost += event.dropped_before
                    continue
                lost = 0
                yield message

    def _message(
        self, event: Event, sources: set[str], kinds: set[ScanKind], lost: int
    ) -> pb.WatchScansResponse | None:
        if sources and event.source not in sources:
            return None
        payload = event.payload
        header = convert.header(event, extra_dropped=lost)
        out = pb.WatchScansResponse(header=header)
        if isinstance(payload, StatusEvent):
            sid = payload.scanner_id
            if sid in self.station.scanners:
                out.status.CopyFrom(scanner_message(self.station, sid))
            else:
                out.status.name = event.source
            _status_fields(out.status, payload, event.time)
        elif isinstance(payload, ScanEvent):
            if kinds and payload.classification.kind not in kinds:
                return None
            out.scan.CopyFrom(scan_message(payload, event.time))
        else:
            return None
        return out


def service(station: Station, api: ApiConfig) -> Service:
    return Service(
        pb.DESCRIPTOR.services_by_name["ScannerService"].full_name,
        frozenset({"pos"}),
        ScannerServicer(station),
        pb_grpc.add_ScannerServiceServicer_to_server,
        some={"technician": _READ_ONLY, "issuer": _READ_ONLY},
    )
