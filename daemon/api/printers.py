"""``PrinterService``: receipts through the durable spool, reprints, the drawer, previews.

The POS may call everything; the technician lists and watches printers, reads jobs, settles
UNCERTAIN ones (ConfirmPrinted, CancelPrintJob), prints the test page and previews receipts.

Nothing here talks to a printer on the event loop: spooling is SQLite (``asyncio.to_thread``),
printing is the printer's own worker thread, a drawer kick and a status refresh are queued
to that thread (``PrinterService._call``), waited for off the loop.

Idempotency: PrintReceipt, Reprint and OpenDrawer record their ``request_id`` in the spool
(table ``print_requests``) with a fingerprint of the request, in the same transaction as the
job. A retry with the same id and the same request returns the first job (``replayed``); the
same id with another request is ALREADY_EXISTS / REQUEST_ID_REUSED. A drawer kick is recorded
once it was sent: a retry after success does not kick again, one after a failure does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final, cast

from grpc import aio

from daemon.api import convert
from daemon.api.receipt_member import mask_member_id, member_from_journal
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import common_pb2
from daemon.api.v1 import printer_service_pb2 as pb
from daemon.api.v1 import printer_service_pb2_grpc as pb_grpc
from daemon.errors import (
    DeviceNotFound,
    InvalidArgument,
    PrinterOffline,
    ReceiptInvalid,
)
from daemon.events import Event
from daemon.printers.preview import render_preview
from daemon.printers.receipt import Header, Item, MemberSection, Payment, Receipt, Totals
from daemon.printers.service import JOB, STATUS, PrinterService
from daemon.printers.spool import Job, JobState, Replayed
from daemon.printers.status import PrinterStatus
from daemon.station import Station

__all__ = ["PrinterServicer", "mask_member_id", "service"]

logger = logging.getLogger(__name__)

Context = aio.ServicerContext[Any, Any]
_J = pb.PrintJob

_STATES: Final = {
    JobState.QUEUED: _J.STATE_QUEUED,
    JobState.SENDING: _J.STATE_SENDING,
    JobState.PRINTED: _J.STATE_PRINTED,
    JobState.UNCERTAIN: _J.STATE_UNCERTAIN,
    JobState.CANCELLED: _J.STATE_CANCELLED,
}
#: ListPrintJobs: the default page, and how far back it looks (the spool keeps more)
_JOBS_PAGE: Final = 50
_JOBS_MAX: Final = 500

#: library field names (``items[2].amount_fen``) → the contract's (``receipt.items[2].amount``)
_FIELD_NAMES: Final = (
    ("timestamp", "time_text"),
    ("qr", "qr_code"),
    ("footer", "footer_lines"),
)


def _contract_field(field: str) -> str:
    head, dot, rest = field.partition(".")
    base = head.split("[")[0]
    for ours, theirs in _FIELD_NAMES:
        if base == ours:
            head = theirs + head[len(ours) :]
    path = head + dot + rest
    return "receipt." + path.replace("_fen", "")


def _receipt_invalid(exc: ReceiptInvalid) -> ReceiptInvalid:
    """The same error with the field named as the contract spells it."""
    message = exc.message.removeprefix(f"{exc.field}: ")
    return ReceiptInvalid(_contract_field(exc.field), message)


def _fen(value: common_pb2.Money, field: str) -> int:
    """An amount of a receipt; unset means zero; the sign and range are the receipt check's."""
    if value.currency_code and value.currency_code.upper() != convert.CURRENCY:
        raise ReceiptInvalid(
            f"receipt.{field}.currency_code",
            f"{value.currency_code!r} is not this store's currency ({convert.CURRENCY})",
        )
    if not value.currency_code and value.amount_fen:
        raise ReceiptInvalid(f"receipt.{field}.currency_code", f"required ({convert.CURRENCY})")
    return value.amount_fen


def receipt_from_message(message: pb.Receipt, member: MemberSection | None = None) -> Receipt:
    """The contract's receipt as the library's; ``member`` replaces the message's block."""
    if not message.HasField("header"):
        raise ReceiptInvalid("receipt.header", "required: the store block")
    if not message.HasField("totals"):
        raise ReceiptInvalid("receipt.totals", "required: subtotal, discount, total, change")
    head = message.header
    items = tuple(
        Item(
            item.name,
            item.quantity,
            _fen(item.unit_price, f"items[{i}].unit_price"),
            _fen(item.amount, f"items[{i}].amount"),
            _fen(item.discount, f"items[{i}].discount"),
        )
        for i, item in enumerate(message.items)
    )
    t = message.totals
    if member is None and message.HasField("member"):
        m = message.member
        member = MemberSection(
            m.masked_member_id,
            m.tier,
            _fen(m.discount, "member.discount"),
            _fen(m.balance_before, "member.balance_before"),
            _fen(m.balance_after, "member.balance_after"),
            m.points_earned,
            m.points_balance,
        )
    return Receipt(
        header=Header(
            head.store_name,
            tuple(head.lines),
            head.use_stored_logo,
            head.logo_png or None,
        ),
        items=items,
        totals=Totals(
            subtotal_fen=_fen(t.subtotal, "totals.subtotal"),
            total_fen=_fen(t.total, "totals.total"),
            discount_fen=_fen(t.discount, "totals.discount"),
            change_fen=_fen(t.change, "totals.change"),
        ),
        payments=tuple(
            Payment(p.method, _fen(p.amount, f"payments[{i}].amount"))
            for i, p in enumerate(message.payments)
        ),
        receipt_no=message.receipt_no,
        timestamp=message.time_text,
        member=member,
        qr=message.qr_code or None,
        barcode=message.barcode or None,
        footer=tuple(message.footer_lines),
        cut=not message.skip_cut,
        open_drawer=message.open_drawer,
    )


def job_message(job: Job, *, replayed: bool = False) -> pb.PrintJob:
    return pb.PrintJob(
        name=f"printers/{job.printer}/jobs/{job.id}",
        request_id=job.request_id,
        state=_STATES.get(job.state, _J.STATE_UNSPECIFIED),
        summary=job.summary,
        reprint_of=(
            f"printers/{job.printer}/jobs/{job.reprint_of}" if job.reprint_of is not None else ""
        ),
        detail=job.detail,
        create_time=convert.timestamp(job.created_at),
        update_time=convert.timestamp(job.updated_at),
        replayed=replayed,
    )


def printer_message(svc: PrinterService, status: PrinterStatus | None = None) -> pb.Printer:
    """Blocking (two spool counts): call off the event loop."""
    st = svc.status() if status is None else status
    errors = [
        name
        for bad, name in (
            (st.unrecoverable_error, "unrecoverable error"),
            (st.auto_recoverable_error, "auto-recoverable error"),
            (st.error and not (st.cover_open or st.paper_end or st.paper_end_stop), "error"),
        )
        if bad
    ]
    message = pb.Printer(
        name=svc.source,
        profile=svc.printer.profile.name,
        chars_per_line=svc.printer.profile.chars_per_line,
        reachable=st.reachable,
        online=st.online and st.reachable,
        paper_near_end=st.paper_near_end,
        paper_out=st.paper_end or st.paper_end_stop,
        cover_open=st.cover_open,
        cutter_error=st.cutter_error,
        error=", ".join(errors),
        status_change_time=convert.timestamp(svc.status_time),
        queued_jobs=svc.spool.count(svc.config.id, JobState.QUEUED),
        uncertain_jobs=svc.spool.count(svc.config.id, JobState.UNCERTAIN),
    )
    if st.drawer_open is not None and st.reachable:
        message.drawer_open = st.drawer_open
    return message


def _fingerprint(kind: str, printer: str, body: bytes = b"") -> str:
    return f"{kind}:{printer}:" + hashlib.sha256(body).hexdigest()


class PrinterServicer(pb_grpc.PrinterServiceServicer):
    def __init__(self, station: Station) -> None:
        self.station = station
        self._drawer_lock = asyncio.Lock()

    # --- names ----------------------------------------------------------------------------

    def _printer(self, name: str, field: str) -> PrinterService:
        return self.station.printer(convert.resource_id(name, "printers", field))

    def _job(self, name: str, field: str) -> tuple[PrinterService, int]:
        """``printers/{p}/jobs/{n}`` → the printer's service and the job id (NOT_FOUND for a
        job that does not exist or belongs to another printer)."""
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "printers" or parts[2] != "jobs":
            raise InvalidArgument(field, f"{name!r} is not a printers/<id>/jobs/<n> name")
        svc = self.station.printer(parts[1])
        if not parts[3].isdigit() or len(parts[3]) > 18:
            raise InvalidArgument(field, f"{parts[3]!r} is not a job number")
        job_id = int(parts[3])
        try:
            job = svc.job(job_id)
        except InvalidArgument:
            raise DeviceNotFound(name, "no such print job") from None
        if job.printer != svc.config.id:
            raise DeviceNotFound(name, "no such print job")
        return svc, job_id

    def _receipt(self, message: pb.Receipt) -> Receipt:
        rid = message.card_request_id
        member = member_from_journal(self.station, rid, message) if rid else None
        return receipt_from_message(message, member)

    # --- status ---------------------------------------------------------------------------

    async def ListPrinters(
        self, request: pb.ListPrintersRequest, context: Context
    ) -> pb.ListPrintersResponse:
        services = list(self.station.printers.values())
        printers = await asyncio.to_thread(lambda: [printer_message(s) for s in services])
        return pb.ListPrintersResponse(printers=printers)

    async def GetPrinter(
        self, request: pb.GetPrinterRequest, context: Context
    ) -> pb.GetPrinterResponse:
        svc = self._printer(request.name, "name")
        return pb.GetPrinterResponse(printer=await asyncio.to_thread(printer_message, svc))

    async def WatchPrinter(
        self, request: pb.WatchPrinterRequest, context: Context
    ) -> AsyncIterator[pb.WatchPrinterResponse]:
        svc = self._printer(request.printer, "printer")
        with self.station.hub.subscribe(
            sources=svc.source,
            kinds=(STATUS, JOB),
            after=request.resume_after or None,
            name=f"WatchPrinter {context.peer()}",
        ) as sub:
            async for event in sub:
                yield await self._event(svc, event)

    async def _event(self, svc: PrinterService, event: Event) -> pb.WatchPrinterResponse:
        out = pb.WatchPrinterResponse(header=convert.header(event))
        if event.kind == STATUS:
            status = cast(PrinterStatus, event.payload)
            out.status.CopyFrom(await asyncio.to_thread(printer_message, svc, status))
        else:
            out.job.CopyFrom(job_message(cast(Job, event.payload)))
        return out

    # --- jobs -----------------------------------------------------------------------------

    async def PrintReceipt(
        self, request: pb.PrintReceiptRequest, context: Context
    ) -> pb.PrintReceiptResponse:
        svc = self._printer(request.printer, "printer")
        rid = convert.request_id(request.request_id)
        if not request.HasField("receipt"):
            raise ReceiptInvalid("receipt", "required")
        body = request.receipt.SerializeToString(deterministic=True)
        fingerprint = _fingerprint("receipt", svc.config.id, body)

        def run() -> pb.PrintJob:
            earlier = svc.spool.request(rid, fingerprint)
            if isinstance(earlier, Replayed) and earlier.job is not None:
                return job_message(earlier.job, replayed=True)
            receipt = self._receipt(request.receipt)
            try:
                job = svc.submit(receipt, rid, fingerprint)
            except ReceiptInvalid as exc:
                raise _receipt_invalid(exc) from None
            return job_message(job, replayed=job.created_at < started)

        started = time.time()
        return pb.PrintReceiptResponse(job=await asyncio.to_thread(run))

    async def GetPrintJob(
        self, request: pb.GetPrintJobRequest, context: Context
    ) -> pb.GetPrintJobResponse:
        svc, job_id = await asyncio.to_thread(self._job, request.name, "name")
        return pb.GetPrintJobResponse(job=job_message(await asyncio.to_thread(svc.job, job_id)))

    async def ListPrintJobs(
        self, request: pb.ListPrintJobsRequest, context: Context
    ) -> pb.ListPrintJobsResponse:
        size = request.page_size or _JOBS_PAGE
        if not 1 <= size <= _JOBS_MAX:
            raise InvalidArgument("page_size", f"{size} is not within 1..{_JOBS_MAX}")
        state = request.state

        def run() -> list[pb.PrintJob]:
            svc = self._printer(request.printer, "printer")
            jobs = [job_message(job) for job in svc.spool.jobs(svc.config.id, limit=_JOBS_MAX)]
            return [j for j in jobs if not state or j.state == state][:size]

        return pb.ListPrintJobsResponse(jobs=await asyncio.to_thread(run))

    async def Reprint(self, request: pb.ReprintRequest, context: Context) -> pb.ReprintResponse:
        rid = convert.request_id(request.request_id)

        def run() -> pb.PrintJob:
            svc, job_id = self._job(request.job, "job")
            fingerprint = _fingerprint("reprint", svc.config.id, str(job_id).encode())
            earlier = svc.spool.request(rid, fingerprint)
            if earlier is not None and earlier.job is not None:
                return job_message(earlier.job, replayed=True)
            try:
                job = svc.reprint(job_id, rid, fingerprint)
            except InvalidArgument as exc:
                raise InvalidArgument("job", exc.message.removeprefix("job_id: ")) from None
            return job_message(job)

        return pb.ReprintResponse(job=await asyncio.to_thread(run))

    async def ConfirmPrinted(
        self, request: pb.ConfirmPrintedRequest, context: Context
    ) -> pb.ConfirmPrintedResponse:
        def run() -> Job:
            svc, job_id = self._job(request.job, "job")
            job = svc.job(job_id)
            if job.state is JobState.PRINTED:
                return job
            if job.state is not JobState.UNCERTAIN:
                raise InvalidArgument(
                    "job", f"{request.job} is {job.state}; only an UNCERTAIN job can be confirmed"
                )
            return svc.confirm_printed(job_id)

        return pb.ConfirmPrintedResponse(job=job_message(await asyncio.to_thread(run)))

    async def CancelPrintJob(
        self, request: pb.CancelPrintJobRequest, context: Context
    ) -> pb.CancelPrintJobResponse:
        def run() -> Job:
            svc, job_id = self._job(request.job, "job")
            job = svc.job(job_id)
            if job.state is JobState.CANCELLED:
                return job
            if job.state not in (JobState.QUEUED, JobState.UNCERTAIN):
                raise InvalidArgument(
                    "job", f"{request.job} is {job.state}; only QUEUED or UNCERTAIN jobs cancel"
                )
            try:
                return svc.cancel(job_id)
            except InvalidArgument as exc:  # started SENDING meanwhile
                raise InvalidArgument("job", exc.message.removeprefix("job_id: ")) from None

        return pb.CancelPrintJobResponse(job=job_message(await asyncio.to_thread(run)))

    # --- drawer, test page, preview --------------------------------------------------------

    async def OpenDrawer(
        self, request: pb.OpenDrawerRequest, context: Context
    ) -> pb.OpenDrawerResponse:
        svc = self._printer(request.printer, "printer")
        rid = convert.request_id(request.request_id)
        if not svc.printer.profile.drawer:
            raise InvalidArgument(
                "printer", f"profile {svc.printer.profile.name} has no drawer port"
            )
        fingerprint = _fingerprint("drawer", svc.config.id)
        async with self._drawer_lock:  # two retries racing must not both kick
            if await asyncio.to_thread(svc.spool.request, rid, fingerprint) is not None:
                return pb.OpenDrawerResponse(replayed=True)
            status = await asyncio.to_thread(svc.status, True)
            if not status.reachable:
                raise PrinterOffline(f"{svc.source}: the printer does not answer")
            await asyncio.to_thread(svc.kick_drawer)
            await asyncio.to_thread(svc.spool.record_request, rid, "drawer", svc.config.id,
                                    fingerprint)  # fmt: skip
        logger.info("%s: drawer kicked (request_id %s)", svc.source, rid)
        return pb.OpenDrawerResponse(replayed=False)

    async def TestPrint(
        self, request: pb.TestPrintRequest, context: Context
    ) -> pb.TestPrintResponse:
        svc = self._printer(request.printer, "printer")
        return pb.TestPrintResponse(job=job_message(await asyncio.to_thread(svc.test_print)))

    async def PreviewReceipt(
        self, request: pb.PreviewReceiptRequest, context: Context
    ) -> pb.PreviewReceiptResponse:
        svc = self._printer(request.printer, "printer")
        if not request.HasField("receipt"):
            raise ReceiptInvalid("receipt", "required")

        def run() -> pb.PreviewReceiptResponse:
            receipt = self._receipt(request.receipt)
            try:
                preview = render_preview(receipt, svc.printer.profile, svc.encoder.stored_logo)
            except ReceiptInvalid as exc:
                raise _receipt_invalid(exc) from None
            return pb.PreviewReceiptResponse(
                png=preview.png, width_dots=preview.width, height_dots=preview.height
            )

        return await asyncio.to_thread(run)


def service(station: Station, api: ApiConfig) -> Service:
    technician = frozenset(
        {
            "ListPrinters",
            "GetPrinter",
            "GetPrintJob",
            "ListPrintJobs",
            "WatchPrinter",
            "ConfirmPrinted",
            "CancelPrintJob",
            "TestPrint",
            "PreviewReceipt",
        }
    )
    return Service(
        pb.DESCRIPTOR.services_by_name["PrinterService"].full_name,
        frozenset({"pos"}),
        PrinterServicer(station),
        pb_grpc.add_PrinterServiceServicer_to_server,
        some={"technician": technician},
    )
