"""``scans``: the barcode scanners' codes as they arrive, live, over the technician socket.

Why the technician socket: the daemon masks payment codes and member tokens for every role
but the till's (``1012**********3456``), so a technician sees that the scanner reads the code
and what kind it is, never a payable code. Lines (JSON lines with ``--json``) until Ctrl-C or
``--count``.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from daemon.cli._args import SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, connect
from daemon.cli._output import Output, enum_name, when

__all__ = ["register"]

_KINDS: Final = ("product", "gs1", "member", "payment", "text")


def _scanner_id(name: str) -> str:
    return name if name.startswith("scanners/") else f"scanners/{name}"


def _line(event: Any) -> str:
    from daemon.api.v1 import scanner_service_pb2 as pb

    stamp = when(event.header.publish_time)
    if event.WhichOneof("event") == "status":
        s = event.status
        state = enum_name(pb.Scanner.State, s.state, "STATE_")
        return f"{stamp}  {s.name} {state}" + (f": {s.detail}" if s.detail else "")
    scan = event.scan
    kind = enum_name(pb.ScanKind, scan.kind, "SCAN_KIND_")
    if scan.kind == pb.SCAN_KIND_PAYMENT:
        kind += f" ({enum_name(pb.PaymentProvider, scan.payment, 'PAYMENT_PROVIDER_')})"
    check = "ok" if scan.valid else f"PROBLEM: {scan.problem or 'not valid'}"
    masked = " (masked)" if scan.masked else ""
    return f"{stamp}  {scan.scanner} {kind}: {scan.text}{masked} [{scan.symbology or '?'}] {check}"


def _cmd_scans(args: argparse.Namespace) -> int:
    from daemon.api.v1 import scanner_service_pb2 as pb
    from daemon.api.v1 import scanner_service_pb2_grpc as pb_grpc

    out = Output(args.json)
    wanted = [_scanner_id(s) for s in args.scanner]
    kinds = [pb.ScanKind.Value(f"SCAN_KIND_{k.upper()}") for k in args.kind or ()]
    with connect(args) as daemon:
        stub = pb_grpc.ScannerServiceStub(daemon.channel)
        if wanted:  # the stream filters silently: a typo would show nothing, forever
            listed = daemon.call(
                lambda: stub.ListScanners(pb.ListScannersRequest(), timeout=CALL_TIMEOUT_S)
            )
            names = [s.name for s in listed.scanners]
            for given, name in zip(args.scanner, wanted, strict=True):
                if name not in names:
                    raise UsageError(
                        f"SCANNER {given!r}: no such scanner (scanners: "
                        f"{', '.join(names) or 'none configured'})"
                    )
        request = pb.WatchScansRequest(scanners=wanted, kinds=kinds)
        events = (
            event
            for event in daemon.stream(lambda: stub.WatchScans(request))
            if not args.scans_only or event.WhichOneof("event") == "scan"
        )
        return out.follow(events, _line, args.count)


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "scans",
        _cmd_scans,
        help="live barcode scans (payment codes and member tokens masked) until Ctrl-C",
        role="technician",
    )
    p.add_argument(
        "scanner",
        nargs="*",
        metavar="SCANNER",
        help="only these scanners (scanners/<id> or <id>); none: every scanner",
    )
    p.add_argument(
        "--kind",
        action="append",
        choices=_KINDS,
        help=f"only scans of this kind (repeatable): {', '.join(_KINDS)}",
    )
    p.add_argument(
        "--scans-only",
        action="store_true",
        help="leave out the scanners' status lines (the first lines are their state now)",
    )
    p.add_argument(
        "--count", type=int, default=0, metavar="N", help="stop after N lines; 0: until Ctrl-C"
    )
