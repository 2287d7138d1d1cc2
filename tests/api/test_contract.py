"""The gRPC contract (proto/carddaemon/v1) and its generated code (daemon/api/v1).

Checks what a POS developer relies on and what review would miss: every RPC exists with its
request/response types and streaming shape, every element is documented, enums start with an
``_UNSPECIFIED`` zero, money is never a float, every mutation takes a ``request_id``, the
committed generated code is what the pinned generator produces, and ``buf lint`` is clean.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "proto" / "generate.py"

MODULES = [
    "common",
    "reader_service",
    "member_card_service",
    "issuing_service",
    "membership_service",
    "diagnostics_service",
    "printer_service",
    "scanner_service",
    "simulator_service",
]

U, S = False, True  # unary / server streaming response

#: service -> rpc -> (request, response, server streaming); request/response names follow buf's
#: STANDARD rule (<Rpc>Request / <Rpc>Response).
EXPECTED: dict[str, dict[str, bool]] = {
    "ReaderService": {"ListReaders": U, "GetReader": U, "WatchReaders": S, "WaitForCard": U},
    "MemberCardService": {
        "ReadCard": U,
        "Debit": U,
        "Credit": U,
        "AdjustPoints": U,
        "GetOperation": U,
        "ListPendingOperations": U,
        "Refund": U,
        "CancelTopUp": U,
        "GetDaySettlement": U,
        "CloseDay": U,
        "ExportDaySettlement": U,
        "PrintDaySettlement": U,
    },
    "IssuingService": {
        "IssueCard": U,
        "VerifyCard": U,
        "EraseCard": U,
        "ReplaceCard": U,
        "BatchIssueCards": S,
        "AddToHotlist": U,
        "RemoveFromHotlist": U,
        "ListHotlist": U,
        "ListTiers": U,
    },
    "MembershipService": {"ChangeTier": U, "RenewCard": U},
    "DiagnosticsService": {
        "ProbeCard": U,
        "DumpCard": U,
        "TestReader": U,
        "GetApduTrace": U,
        "GetCardHistory": U,
        "ListAuditEvents": U,
    },
    "PrinterService": {
        "ListPrinters": U,
        "GetPrinter": U,
        "PrintReceipt": U,
        "GetPrintJob": U,
        "ListPrintJobs": U,
        "WatchPrinter": S,
        "Reprint": U,
        "ConfirmPrinted": U,
        "CancelPrintJob": U,
        "OpenDrawer": U,
        "TestPrint": U,
        "PreviewReceipt": U,
    },
    "ScannerService": {"ListScanners": U, "GetScanner": U, "WatchScans": S, "ArmScanner": U},
    "SimulatorService": {
        "ListSimulatedCards": U,
        "PresentCard": U,
        "RemoveCard": U,
        "SwapCard": U,
        "InjectFault": U,
        "ClearFaults": U,
        "InjectScan": U,
    },
}

#: RPCs that change a card, the journal's money or a printout: a client retry must be safe.
IDEMPOTENT = [
    "Debit", "Credit", "AdjustPoints", "IssueCard", "EraseCard", "ReplaceCard",
    "PrintReceipt", "Reprint", "OpenDrawer", "Refund", "CancelTopUp", "PrintDaySettlement",
    "ChangeTier", "RenewCard",
]  # fmt: skip


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carddaemon_proto_generate", GENERATE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pb2(name: str) -> ModuleType:
    return importlib.import_module(f"daemon.api.v1.{name}_pb2")


def _files() -> list[FileDescriptor]:
    return [_pb2(name).DESCRIPTOR for name in MODULES]


@pytest.fixture(scope="module")
def source_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path_factory.mktemp("proto") / "contract.binpb"
    _generator().descriptor_set(out)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def test_generated_modules_import() -> None:
    for name in MODULES:
        pb2 = _pb2(name)
        grpc_mod = importlib.import_module(f"daemon.api.v1.{name}_pb2_grpc")
        assert pb2.DESCRIPTOR.package == "carddaemon.v1"
        assert pb2.DESCRIPTOR.name == f"carddaemon/v1/{name}.proto"
        assert grpc_mod.__name__.startswith("daemon.api.v1.")
    assert "carddaemon" not in sys.modules  # no stray top-level package from protoc's paths


def test_every_rpc_has_its_request_response_and_shape() -> None:
    services = {s.name: s for f in _files() for s in f.services_by_name.values()}
    assert sorted(services) == sorted(EXPECTED)
    for service_name, rpcs in EXPECTED.items():
        service = services[service_name]
        assert service.full_name == f"carddaemon.v1.{service_name}"
        assert sorted(m.name for m in service.methods) == sorted(rpcs), service_name
        for rpc, streaming in rpcs.items():
            method = service.methods_by_name[rpc]
            assert method.input_type.full_name == f"carddaemon.v1.{rpc}Request"
            assert method.output_type.full_name == f"carddaemon.v1.{rpc}Response"
            assert not method.client_streaming
            assert method.server_streaming is streaming, f"{service_name}.{rpc}"


def test_generated_stubs_and_servicers_exist() -> None:
    for name in MODULES:
        grpc_mod = importlib.import_module(f"daemon.api.v1.{name}_pb2_grpc")
        for service in _pb2(name).DESCRIPTOR.services_by_name.values():
            stub = getattr(grpc_mod, f"{service.name}Stub")
            servicer = getattr(grpc_mod, f"{service.name}Servicer")
            assert callable(getattr(grpc_mod, f"add_{service.name}Servicer_to_server"))
            assert stub is not None
            for method in service.methods:
                assert callable(getattr(servicer, method.name))


def _walk(
    fdp: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source_code_info path, full name) of every element that must carry a comment."""

    def enum(
        path: tuple[int, ...], e: descriptor_pb2.EnumDescriptorProto, prefix: str
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        yield path, f"{prefix}{e.name}"
        for i, value in enumerate(e.value):
            yield (*path, 2, i), f"{prefix}{e.name}.{value.name}"

    def message(
        path: tuple[int, ...], m: descriptor_pb2.DescriptorProto, prefix: str
    ) -> Iterator[tuple[tuple[int, ...], str]]:
        name = f"{prefix}{m.name}"
        yield path, name
        for i, field in enumerate(m.field):
            yield (*path, 2, i), f"{name}.{field.name}"
        for i, oneof in enumerate(m.oneof_decl):
            if not oneof.name.startswith("_"):  # proto3 `optional` makes a synthetic oneof
                yield (*path, 8, i), f"{name}.{oneof.name}"
        for i, nested in enumerate(m.nested_type):
            yield from message((*path, 3, i), nested, f"{name}.")
        for i, e in enumerate(m.enum_type):
            yield from enum((*path, 4, i), e, f"{name}.")

    for i, m in enumerate(fdp.message_type):
        yield from message((4, i), m, "")
    for i, e in enumerate(fdp.enum_type):
        yield from enum((5, i), e, "")
    for i, s in enumerate(fdp.service):
        yield (6, i), s.name
        for j, method in enumerate(s.method):
            yield (6, i, 2, j), f"{s.name}.{method.name}"


def test_every_element_has_a_leading_comment(
    source_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    ours = [f for f in source_set.file if f.package == "carddaemon.v1"]
    assert sorted(f.name for f in ours) == sorted(f"carddaemon/v1/{m}.proto" for m in MODULES)
    missing = []
    count = 0
    for fdp in ours:
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in fdp.source_code_info.location
        }
        for path, name in _walk(fdp):
            count += 1
            if not comments.get(path):
                missing.append(f"{fdp.name}: {name}")
    assert count > 500  # the walk really saw the contract
    assert missing == []


def test_enum_zero_values_are_unspecified() -> None:
    def enums(container: object) -> Iterator[object]:
        yield from getattr(container, "enum_types_by_name", {}).values()
        for nested in getattr(container, "message_types_by_name", {}).values():
            yield from enums(nested)
        for nested in getattr(container, "nested_types_by_name", {}).values():
            yield from enums(nested)

    seen = 0
    for f in _files():
        for e in enums(f):
            seen += 1
            zero = e.values_by_number[0]  # type: ignore[attr-defined]
            assert zero.name.endswith("_UNSPECIFIED"), e.full_name  # type: ignore[attr-defined]
    assert seen >= 15


def test_money_is_never_a_float(source_set: descriptor_pb2.FileDescriptorSet) -> None:
    floats = (descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
              descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE)  # fmt: skip

    def fields(m: descriptor_pb2.DescriptorProto) -> Iterator[descriptor_pb2.FieldDescriptorProto]:
        yield from m.field
        for nested in m.nested_type:
            yield from fields(nested)

    bad = [
        f"{fdp.name}: {field.name}"
        for fdp in source_set.file
        if fdp.package == "carddaemon.v1"
        for m in fdp.message_type
        for field in fields(m)
        if field.type in floats
    ]
    assert bad == []
    money = _pb2("common").Money.DESCRIPTOR
    assert [(f.name, f.number) for f in money.fields] == [("currency_code", 1), ("amount_fen", 2)]
    assert money.fields_by_name["amount_fen"].type == money.fields_by_name["amount_fen"].TYPE_INT64


def test_mutations_carry_request_id_and_results_say_replayed() -> None:
    requests = {m.name: m for f in _files() for m in f.message_types_by_name.values()}
    for rpc in IDEMPOTENT:
        request = requests[f"{rpc}Request"]
        assert "request_id" in request.fields_by_name, rpc
    for rpc in ("Debit", "Credit", "AdjustPoints"):
        request = requests[f"{rpc}Request"]
        assert {"expected_uid", "expected_balance"} <= set(request.fields_by_name), rpc
        balance = request.fields_by_name["expected_balance"].message_type
        assert balance is not None
        assert balance.name == "Money"
    assert "replayed" in requests["OperationResult"].fields_by_name
    assert "replayed" in requests["IssuedCard"].fields_by_name
    assert "replayed" in requests["PrintJob"].fields_by_name
    # `points` must tell "unset: by tier" from "0: none"
    assert requests["DebitRequest"].fields_by_name["points"].has_presence


def test_watch_streams_share_the_event_header() -> None:
    responses = {m.name: m for f in _files() for m in f.message_types_by_name.values()}
    header = _pb2("common").EventHeader.DESCRIPTOR
    assert {"sequence", "snapshot", "resync", "dropped_before"} <= set(header.fields_by_name)
    for name in ("WatchReadersResponse", "WatchPrinterResponse", "WatchScansResponse"):
        assert responses[name].fields_by_name["header"].message_type is header
    for name in ("WatchReadersRequest", "WatchPrinterRequest", "WatchScansRequest"):
        assert "resume_after" in responses[name].fields_by_name


def test_generated_code_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATE), "--check"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_buf_lint_is_clean() -> None:
    npx = shutil.which("npx")
    assert npx is not None, "npx (Node.js) is needed for buf lint"
    assert (ROOT / "node_modules" / "@bufbuild" / "buf").is_dir(), "run `npm ci` first"
    done = subprocess.run(
        [npx, "--no-install", "buf", "lint"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
