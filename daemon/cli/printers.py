"""Receipt printers and the cash drawer: ``printers``, ``print-test``, ``jobs``, ``reprint``,
``confirm-printed`` and ``drawer open``.

A job the daemon cannot know came out of the printer (the link dropped mid-receipt, the daemon
restarted while sending) is UNCERTAIN and waits for a person: look at the paper, then either
``confirm-printed JOB`` (it did print) or ``reprint JOB`` (it did not: a copy marked 重印
REPRINT). ``jobs`` lists them first and exits 1 while any waits. ``reprint`` and ``drawer
open`` are the till's (the pos socket); the rest are the technician's.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from daemon.cli._args import Role, SubParsers, UsageError, add_command
from daemon.cli._client import CALL_TIMEOUT_S, Daemon, connect
from daemon.cli._output import Output, enum_name, proto_dict, when

__all__ = ["register"]


def _stub(daemon: Daemon) -> Any:
    from daemon.api.v1 import printer_service_pb2_grpc as pb_grpc

    return pb_grpc.PrinterServiceStub(daemon.channel)


def _printers(daemon: Daemon) -> Any:
    from daemon.api.v1 import printer_service_pb2 as pb

    stub = _stub(daemon)
    return daemon.call(lambda: stub.ListPrinters(pb.ListPrintersRequest(), timeout=CALL_TIMEOUT_S))


def _printer_name(daemon: Daemon, given: str | None) -> str:
    """``receipt`` / ``printers/receipt`` / none (the only printer) -> ``printers/receipt``."""
    names = [p.name for p in _printers(daemon).printers]
    if given is None:
        if len(names) == 1:
            return str(names[0])
        raise UsageError(f"--printer is required: this PC has {', '.join(names) or 'no printers'}")
    wanted = given if given.startswith("printers/") else f"printers/{given}"
    if wanted not in names:
        raise UsageError(
            f"--printer {given!r}: no such printer (printers: {', '.join(names) or 'none'})"
        )
    return wanted


def _job_name(daemon: Daemon, given: str, printer: str | None) -> str:
    """``7`` (on the only printer, or --printer) or ``printers/receipt/jobs/7``."""
    if given.startswith("printers/"):
        return given
    if not given.isdigit():
        raise UsageError(f"JOB {given!r}: a job number as `carddaemon jobs` lists it, e.g. 7")
    return f"{_printer_name(daemon, printer)}/jobs/{given}"


def _problems(p: Any) -> list[str]:
    found = []
    if not p.reachable:
        found.append("not answering")
    elif not p.online:
        found.append("offline")
    for flag, words in (
        (p.paper_out, "paper out"),
        (p.cover_open, "cover open"),
        (p.cutter_error, "cutter error"),
    ):
        if flag:
            found.append(words)
    if p.error:
        found.append(p.error)
    if p.uncertain_jobs:
        found.append(f"{p.uncertain_jobs} UNCERTAIN job(s): see `carddaemon jobs`")
    return found


def _cmd_printers(args: argparse.Namespace) -> int:
    out = Output(args.json)
    with connect(args) as daemon:
        listed = _printers(daemon)
    bad = {p.name: _problems(p) for p in listed.printers}
    if out.json:
        data = proto_dict(listed)
        for item in data["printers"]:
            item["problems"] = bad[item["name"]]
        out.document(data)
    else:
        rows = []
        for p in listed.printers:
            paper = "out" if p.paper_out else ("near end" if p.paper_near_end else "ok")
            drawer = (
                "-" if not p.HasField("drawer_open") else ("open" if p.drawer_open else "closed")
            )
            rows.append(
                [
                    p.name,
                    p.profile,
                    "ok" if not bad[p.name] else "; ".join(bad[p.name]),
                    paper,
                    drawer,
                    str(p.queued_jobs),
                    str(p.uncertain_jobs),
                ]
            )
        out.table(
            ["PRINTER", "PROFILE", "STATE", "PAPER", "DRAWER", "QUEUED", "UNCERTAIN"],
            rows,
            empty="no printers configured",
        )
    return 1 if any(bad.values()) else 0


def _job_row(job: Any) -> list[str]:
    from daemon.api.v1 import printer_service_pb2 as pb

    state = enum_name(pb.PrintJob.State, job.state, "STATE_").upper()
    return [
        job.name.rsplit("/", 1)[-1],
        state,
        when(job.create_time),
        job.summary,
        job.reprint_of.rsplit("/", 1)[-1] if job.reprint_of else "",
        job.detail,
    ]


def _say_job(out: Output, job: Any, what: str) -> None:
    if out.json:
        out.document(proto_dict(job))
    else:
        row = _job_row(job)
        again = " (already done: nothing printed twice)" if job.replayed else ""
        out.say(f"{what} job {row[0]} ({job.name}): {row[1]} {row[3]}{again}")


def _cmd_jobs(args: argparse.Namespace) -> int:
    from daemon.api.v1 import printer_service_pb2 as pb

    out = Output(args.json)
    with connect(args) as daemon:
        printer = _printer_name(daemon, args.printer)
        stub = _stub(daemon)
        state = pb.PrintJob.STATE_UNCERTAIN if args.uncertain else pb.PrintJob.STATE_UNSPECIFIED
        request = pb.ListPrintJobsRequest(printer=printer, page_size=args.limit, state=state)
        listed = daemon.call(
            lambda: stub.ListPrintJobs(request, timeout=CALL_TIMEOUT_S),
            words={"page_size": "--limit"},
        )
        every = pb.ListPrintJobsRequest(printer=printer, state=pb.PrintJob.STATE_UNCERTAIN)
        uncertain = daemon.call(lambda: stub.ListPrintJobs(every, timeout=CALL_TIMEOUT_S)).jobs
    if out.json:
        data = proto_dict(listed)
        data["uncertain"] = len(uncertain)
        out.document(data)
    else:
        jobs = sorted(listed.jobs, key=lambda j: j.state != pb.PrintJob.STATE_UNCERTAIN)
        out.table(
            ["JOB", "STATE", "CREATED", "WHAT", "REPRINT OF", "DETAIL"],
            (_job_row(j) for j in jobs),
            title=f"{printer}: newest first, UNCERTAIN on top",
            empty="no jobs",
        )
        if uncertain:
            out.say(
                f"{len(uncertain)} UNCERTAIN job(s): look at the paper, then "
                "`carddaemon confirm-printed JOB` if it printed, `carddaemon reprint JOB` if not"
            )
    return 1 if uncertain else 0


def _cmd_print_test(args: argparse.Namespace) -> int:
    from daemon.api.v1 import printer_service_pb2 as pb

    out = Output(args.json)
    with connect(args) as daemon:
        request = pb.TestPrintRequest(printer=_printer_name(daemon, args.printer))
        stub = _stub(daemon)
        done = daemon.call(lambda: stub.TestPrint(request, timeout=CALL_TIMEOUT_S))
    _say_job(out, done.job, "test page:")
    return 0


def _cmd_reprint(args: argparse.Namespace) -> int:
    from daemon.api.v1 import printer_service_pb2 as pb

    out = Output(args.json)
    with connect(args) as daemon:
        name = _job_name(daemon, args.job, args.printer)
        rid = args.request_id or f"reprint:{name}"
        request = pb.ReprintRequest(job=name, request_id=rid)
        stub = _stub(daemon)
        done = daemon.call(
            lambda: stub.Reprint(request, timeout=CALL_TIMEOUT_S),
            words={name: f"JOB {args.job!r}", "job": "JOB", "request_id": "--request-id"},
        )
    _say_job(out, done.job, "reprint (重印 REPRINT):")
    return 0


def _cmd_confirm(args: argparse.Namespace) -> int:
    from daemon.api.v1 import printer_service_pb2 as pb

    out = Output(args.json)
    with connect(args) as daemon:
        name = _job_name(daemon, args.job, args.printer)
        stub = _stub(daemon)
        done = daemon.call(
            lambda: stub.ConfirmPrinted(pb.ConfirmPrintedRequest(job=name), timeout=CALL_TIMEOUT_S),
            words={name: f"JOB {args.job!r}", "job": "JOB"},
        )
    _say_job(out, done.job, "confirmed")
    return 0


def _cmd_drawer_open(args: argparse.Namespace) -> int:
    from daemon.api.v1 import printer_service_pb2 as pb

    out = Output(args.json)
    with connect(args) as daemon:
        printer = _printer_name(daemon, args.printer)
        rid = args.request_id or f"drawer:{uuid.uuid4().hex[:12]}"
        stub = _stub(daemon)
        done = daemon.call(
            lambda: stub.OpenDrawer(
                pb.OpenDrawerRequest(printer=printer, request_id=rid), timeout=CALL_TIMEOUT_S
            ),
            words={"request_id": "--request-id"},
        )
    if out.json:
        out.document({**proto_dict(done), "printer": printer, "request_id": rid})
    else:
        out.say(f"drawer of {printer} opened" + (" (earlier, not again)" if done.replayed else ""))
    return 0


def _printer_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--printer",
        metavar="PRINTER",
        help="printers/<id> or <id> as `carddaemon printers` lists them (default: the only one)",
    )


def _command(
    sub: SubParsers, name: str, func: Any, help: str, role: Role
) -> argparse.ArgumentParser:
    p = add_command(sub, name, func, help=help, role=role)
    _printer_option(p)
    return p


def register(sub: SubParsers) -> None:
    _command(
        sub,
        "printers",
        _cmd_printers,
        "the receipt printers: state, paper, drawer, queued and UNCERTAIN jobs "
        "(exit 1: a printer needs attention)",
        "technician",
    )
    _command(sub, "print-test", _cmd_print_test, "print the daemon's test page", "technician")
    p = _command(
        sub,
        "jobs",
        _cmd_jobs,
        "a printer's recent jobs, UNCERTAIN ones first (exit 1 while any is UNCERTAIN)",
        "technician",
    )
    p.add_argument("--uncertain", action="store_true", help="only the UNCERTAIN jobs")
    p.add_argument(
        "--limit", type=int, default=0, metavar="N", help="at most N jobs, 1..500 (default 50)"
    )
    p = _command(
        sub,
        "reprint",
        _cmd_reprint,
        "print a copy of a job, marked 重印 REPRINT (the till's socket)",
        "pos",
    )
    p.add_argument("job", metavar="JOB", help="the job number from `carddaemon jobs`, e.g. 7")
    p.add_argument(
        "--request-id",
        metavar="ID",
        help="the idempotency key (default reprint:<job>: typing it twice prints one copy)",
    )
    p = _command(
        sub,
        "confirm-printed",
        _cmd_confirm,
        "record that an UNCERTAIN job did come out of the printer",
        "technician",
    )
    p.add_argument("job", metavar="JOB", help="the job number from `carddaemon jobs`, e.g. 7")
    p = sub.add_parser("drawer", help="the cash drawer: `drawer open`")
    drawer = p.add_subparsers(dest="drawer_command", required=True, metavar="COMMAND")
    q = _command(
        drawer, "open", _cmd_drawer_open, "kick the cash drawer open (the till's socket)", "pos"
    )
    q.add_argument("--request-id", metavar="ID", help="the idempotency key (default: a new one)")
