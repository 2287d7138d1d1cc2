"""Property: whatever a client sends to any RPC, it gets a typed answer and the daemon goes on.

Requests are generated from the contract's own descriptors (every field of every message,
nested messages, repeated fields, enums with unknown numbers, huge and empty strings), so a
new RPC is covered the day it is added. The answer must be OK, or a status whose ErrorInfo
reason is in the error table with that reason's code — never INTERNAL or UNKNOWN, never a
hang, and the daemon must still be serving afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf import message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from daemon.api.errors import STATUS_BY_REASON
from daemon.api.v1 import (
    diagnostics_service_pb2,
    issuing_service_pb2,
    member_card_service_pb2,
    printer_service_pb2,
    reader_service_pb2,
    scanner_service_pb2,
    simulator_service_pb2,
)
from tests.api.conftest import Api, run_api

#: which socket each service is called on (its role)
ROLE = {
    "ReaderService": "pos",
    "MemberCardService": "pos",
    "SimulatorService": "pos",
    "PrinterService": "pos",
    "ScannerService": "pos",
    "IssuingService": "issuer",
    "DiagnosticsService": "technician",
}
MODULES = (
    reader_service_pb2,
    member_card_service_pb2,
    issuing_service_pb2,
    diagnostics_service_pb2,
    printer_service_pb2,
    scanner_service_pb2,
    simulator_service_pb2,
)
#: answers gRPC itself gives, without an ErrorInfo of ours
TRANSPORT = {
    grpc.StatusCode.DEADLINE_EXCEEDED,  # the client's own 2 s deadline on a wait
    grpc.StatusCode.UNIMPLEMENTED,  # a service of the contract this daemon does not serve yet
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # larger than max_message_bytes
}

_F = d.FieldDescriptor
_INTS = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
}
_TEXT = st.one_of(
    st.sampled_from(["", "front", "readers/front", "readers/back", "gold", "CNY", "x" * 300]),
    st.text(max_size=80),
)


def _scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INTS:
        low, high = _INTS[field.type]
        return st.one_of(st.integers(max(low, -3), 100_000), st.integers(low, high))
    if field.type == _F.TYPE_BOOL:
        return st.booleans()
    if field.type == _F.TYPE_STRING:
        return _TEXT
    if field.type == _F.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return st.floats(allow_nan=False, width=32)
    if field.type == _F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-5, 50))
    raise AssertionError(f"no strategy for {field.full_name}")


def messages(desc: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of type ``desc``: each field left out or set to something odd or plain."""
    cls = message_factory.GetMessageClass(desc)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for field in desc.fields:
            if not draw(st.booleans()):
                continue
            if field.type == _F.TYPE_MESSAGE:
                if depth >= 3 or field.message_type.GetOptions().map_entry:
                    continue
                sub = messages(field.message_type, depth + 1)
                if field.is_repeated:
                    for item in draw(st.lists(sub, max_size=2)):
                        getattr(msg, field.name).add().CopyFrom(item)
                else:
                    getattr(msg, field.name).CopyFrom(draw(sub))
            elif field.is_repeated:
                getattr(msg, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
            else:
                setattr(msg, field.name, draw(_scalar(field)))
        return msg

    return build()


def _methods() -> Iterator[tuple[str, d.MethodDescriptor]]:
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield service.name, method


METHODS = sorted(_methods(), key=lambda item: item[1].full_name)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with run_api(tmp_path_factory.mktemp("fuzz")) as handle:
        yield handle


def _check(err: grpc.RpcError, method: str) -> None:
    code = err.code()
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method, err)
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        assert code in TRANSPORT, (method, code, err.details())
        return
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info), (method, err)
    assert info.domain == "carddaemon"
    assert info.reason in STATUS_BY_REASON, (method, info.reason)
    assert STATUS_BY_REASON[info.reason] == code, (method, info.reason, code)


@pytest.mark.allow_leaks  # the module-scoped daemon outlives each test
@pytest.mark.parametrize(("service", "method"), METHODS, ids=lambda x: getattr(x, "name", x))
def test_any_request_gets_a_typed_answer(
    daemon: Api, service: str, method: d.MethodDescriptor
) -> None:
    channel = daemon.channel(ROLE[service])
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.server_streaming:
        call: Any = channel.unary_stream(
            path, request_class.SerializeToString, response_class.FromString
        )
    else:
        call = channel.unary_unary(path, request_class.SerializeToString, response_class.FromString)

    @settings(
        max_examples=12,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # bounded time: no shrinking
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(messages(method.input_type))
    def one(request: Message) -> None:
        try:
            answer = call(request, timeout=2)
            if method.server_streaming:
                for _ in zip(range(2), answer, strict=False):
                    pass
                answer.cancel()
        except grpc.RpcError as err:
            _check(err, method.full_name)

    one()
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
