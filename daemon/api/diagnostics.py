"""``DiagnosticsService``: probe, dump, reader self-test, APDU trace, a card's history.

Technician role only. Nothing here changes a card (the Gen2/CUID probe test, which writes block
0 back unchanged, runs only on an issuing station). Card work runs as jobs on the reader's
worker (``Station.run_async``). No response carries key bytes: a dumped trailer's key A and key B
are zeros with ``keys_hidden`` set, the APDU trace is masked where it is recorded
(``readers/trace.py``: LOAD KEY and trailer writes show ``**``), and which key opened a sector is
said in words ("diversified key A (group 1)").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from google.protobuf.duration_pb2 import Duration
from grpc import aio

from daemon.api import convert
from daemon.api.audit import list_audit_events, time_window
from daemon.api.cards import OPERATION_TYPES, operation_result, operation_type
from daemon.api.issuing import page, run_on_reader, state_member_card
from daemon.api.membership_outcome import MEMBERSHIP_TYPES
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import common_pb2
from daemon.api.v1 import diagnostics_service_pb2 as pb
from daemon.api.v1 import diagnostics_service_pb2_grpc as pb_grpc
from daemon.api.v1 import member_card_service_pb2 as mc
from daemon.diagnostics.probe import probe_job
from daemon.diagnostics.report import LatencyStats, ProbeResult
from daemon.errors import (
    CardDaemonError,
    CardError,
    CardMismatch,
    InvalidArgument,
    MalformedBlock,
    MemberNotFound,
    ReaderUnavailable,
)
from daemon.journal import RequestState
from daemon.keystore import KeyPurpose
from daemon.membercard.layout import KEY_GROUP_APP, KEY_GROUP_MAD
from daemon.membercard.requests import normalise_uid
from daemon.membercard.service import OpResult
from daemon.membercard.session import CardSession, key_slot
from daemon.membercard.state import evaluate
from daemon.mifare.access import AccessConditions
from daemon.mifare.access import BlockKind as AccessKind
from daemon.mifare.block0 import Severity
from daemon.mifare.dump import decode_dump
from daemon.mifare.geometry import (
    CardSize,
    access_group,
    block_count,
    sector_blocks,
    sector_count,
)
from daemon.mifare.mad import MAD_KEY_A
from daemon.mifare.trailer import DEFAULT_KEY
from daemon.mifare.value import decode_value_block, is_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.atr import decode_atr
from daemon.readers.monitor import EventKind, ReaderEvent
from daemon.readers.storage import StorageCard
from daemon.readers.workers import JobContext
from daemon.station import Station

__all__ = ["DiagnosticsServicer", "service"]

Context = aio.ServicerContext[Any, Any]
T = TypeVar("T")

MAX_ROUNDS: Final = 1000
DEFAULT_TEST_ROUNDS: Final = 50
DEFAULT_TRACE: Final = 100
MAX_TRACE: Final = 1000
MAX_SECTORS: Final = 40  # a 4K card
_SIZE_BY_CARD_NAME: Final = {
    0x0001: CardSize.CLASSIC_1K,
    0x0002: CardSize.CLASSIC_4K,
    0x0026: CardSize.MINI,
}
_SEVERITY: Final = {
    Severity.INFO: pb.FINDING_SEVERITY_INFO,
    Severity.WARNING: pb.FINDING_SEVERITY_WARNING,
    Severity.ERROR: pb.FINDING_SEVERITY_ERROR,
}
_KINDS: Final = {
    "manufacturer": pb.BLOCK_KIND_MANUFACTURER,
    "trailer": pb.BLOCK_KIND_TRAILER,
    "value": pb.BLOCK_KIND_VALUE,
    "data": pb.BLOCK_KIND_DATA,
    "mad": pb.BLOCK_KIND_DATA,
}
_ROLES: Final = {0: "MAD", 1: "record slot 0", 2: "record slot 1", 3: "purse and header"}
_AUDIT_TYPES: Final = {
    "issue": "issue",
    "issue_failed": "issue",
    "erase": "erase",
    "replace": "replace",
}
_NOT_HISTORY: Final = frozenset({"key_use"})  # which key versions were used: not a card event
_KeyTry = tuple[str, bytes, KeyType]


def _card(uid: bytes, atr: bytes, reader: str) -> common_pb2.Card:
    info = decode_atr(atr)
    event = ReaderEvent(0, EventKind.CARD_PRESENT, reader, atr, uid, info.card_type)
    return convert.card(event)


def _latency(stats: LatencyStats | None) -> pb.LatencyStats | None:
    if stats is None:
        return None

    def ms(value: float) -> Duration:
        out = Duration()
        out.FromNanoseconds(round(value * 1e6))
        return out

    return pb.LatencyStats(
        rounds=stats.rounds,
        p50=ms(stats.p50_ms),
        p99=ms(stats.p99_ms),
        min=ms(stats.min_ms),
        max=ms(stats.max_ms),
    )


def _rounds(value: int, field: str = "latency_rounds") -> int:
    if not 0 <= value <= MAX_ROUNDS:
        raise InvalidArgument(field, f"{value} is not in 0..{MAX_ROUNDS}")
    return value


def probe_response(reader: str, result: ProbeResult) -> pb.ProbeCardResponse:
    out = pb.ProbeCardResponse(
        reader=reader,
        dialect=result.dialect,
        dialect_title=result.dialect_title,
        firmware=result.firmware or "",
        firmware_note=result.firmware_note or "",
        card=_card(result.uid, result.atr, result.reader),
        atr_standard=result.atr_standard or "",
        atr_problem=result.atr_problem or "",
        key_used=result.key_used,
        block0=result.block0 or b"",
        block0_error=result.block0_error or "",
        findings=[
            pb.ProbeFinding(
                severity=_SEVERITY.get(f.severity, pb.FINDING_SEVERITY_UNSPECIFIED),
                code=f.code,
                message=f.message,
            )
            for f in result.findings
        ],
    )
    if result.gen2 is not None:
        out.gen2_verdict = {
            "gen2": pb.GEN2_VERDICT_GEN2,
            "not_writable": pb.GEN2_VERDICT_NOT_WRITABLE,
            "not_run": pb.GEN2_VERDICT_NOT_RUN,
        }[result.gen2.verdict.value]
        out.gen2_detail = result.gen2.detail
    latency = _latency(result.latency)
    if latency is not None:
        out.latency.CopyFrom(latency)
    return out


# --- DumpCard -----------------------------------------------------------------------------------


def _keys_for(station: Station, uid: bytes, sector: int) -> list[_KeyTry]:
    """The keys a technician's dump tries on ``sector``, in order, each with its name."""
    keystore = station.keystore
    tries: list[_KeyTry] = []
    if sector == 0:
        tries.append(("MAD key A", MAD_KEY_A, KeyType.A))
    if sector in (0, 1, 2, 3):
        group = KEY_GROUP_MAD if sector == 0 else KEY_GROUP_APP
        for key_type, purpose in (("A", KeyPurpose.CARD_A), ("B", KeyPurpose.CARD_B)):
            if sector == 0 and key_type == "A":
                continue  # sector 0's key A is the public MAD key
            for version in keystore.versions(purpose):
                key = keystore.card_key(
                    uid, sector_group=group, key_type=key_type, version=version
                ).reveal()
                name = f"diversified key {key_type} (group {group}, version {version})"
                tries.append((name, key, KeyType.A if key_type == "A" else KeyType.B))
    tries.append(("transport key A", DEFAULT_KEY, KeyType.A))
    tries.append(("transport key B", DEFAULT_KEY, KeyType.B))
    return tries


def _open(card: StorageCard, block: int, tries: list[_KeyTry]) -> tuple[str | None, str]:
    """Authenticate ``block``'s sector with the first key that opens it: (its name, "") or
    (None, the last error reason)."""
    last = "CARD_AUTH_FAILED"
    for name, key, key_type in tries:
        slot = key_slot(card.dialect, "B" if key_type == KeyType.B else "A")
        try:
            card.load_key(key, slot, key_type)
            card.authenticate(block, key_type, slot)
        except CardError as exc:
            last = exc.reason
            card.reconnect()  # a failed authentication leaves the card deaf until re-selected
            continue
        return name, ""
    return None, last


def _hide_keys(raw: bytes) -> bytes:
    return bytes(6) + raw[6:10] + bytes(6)


def dump_job(
    station: Station, reader: str, sectors: list[int], expected: str | None
) -> Callable[[JobContext], pb.DumpCardResponse]:
    profile = station.profile(reader)

    def job(ctx: JobContext) -> pb.DumpCardResponse:
        card = StorageCard(ctx.connection, profile.dialect, trace=profile.trace)
        ctx.check_deadline("dump (nothing sent yet)")
        uid = card.uid()
        if expected is not None and uid.hex().upper() != expected:
            raise CardMismatch(f"expected card {expected}, presented {uid.hex().upper()}")
        info = decode_atr(card.atr)
        size = _SIZE_BY_CARD_NAME.get(info.card_name_code or 0, CardSize.CLASSIC_1K)
        count = sector_count(size)
        wanted = sectors or list(range(count))
        for s in wanted:
            if s >= count:
                raise InvalidArgument(
                    "sectors", f"sector {s}: a {size.name} card has 0..{count - 1}"
                )
        image = bytearray(16 * block_count(size))
        unread = set(range(block_count(size)))
        opened: dict[int, tuple[str | None, str]] = {}
        for sector in wanted:
            blocks = sector_blocks(sector, size)
            ctx.check_deadline(f"dump of sector {sector}")
            opened[sector] = _open(card, blocks[0], _keys_for(station, uid, sector))
            if opened[sector][0] is None:
                continue
            for block in blocks:
                try:
                    image[16 * block : 16 * block + 16] = card.read_block(block)
                    unread.discard(block)
                except CardError:
                    card.reconnect()
                    break
        decoded = decode_dump(bytes(image), uid_length=len(uid), unread=unread)
        out = pb.DumpCardResponse(card=_card(uid, card.atr, card.reader))
        for sector in wanted:
            key_used, why = opened[sector]
            view = decoded.sectors[sector]
            item = pb.SectorDump(
                sector=sector,
                readable=key_used is not None,
                key_used=key_used or "",
                error_reason=why,
                role=_ROLES.get(sector, ""),
            )
            trailer_raw = bytes(image[16 * view.blocks[-1].block : 16 * view.blocks[-1].block + 16])
            access: AccessConditions | None = None
            if view.blocks[-1].block not in unread:
                try:
                    access = AccessConditions.from_bytes(trailer_raw[6:9])
                except MalformedBlock:
                    access = None
                item.access_bits_valid = access is not None
            if key_used is not None:
                for bv in view.blocks:
                    if bv.block in unread:
                        continue
                    item.blocks.append(_block(bv.block, bv.kind, image, access, size))
            out.sectors.append(item)
        member = _member(station, card)
        if member is not None:
            out.member_card.CopyFrom(member)
        return out

    return job


def _block(
    n: int, kind: str, image: bytearray, access: AccessConditions | None, size: CardSize
) -> pb.BlockDump:
    raw = bytes(image[16 * n : 16 * n + 16])
    trailer = kind == "trailer"
    out = pb.BlockDump(
        block=n,
        kind=_KINDS.get(kind, pb.BLOCK_KIND_DATA),
        data=_hide_keys(raw) if trailer else raw,
        keys_hidden=trailer,
    )
    if access is not None:
        cond = access.group(access_group(n, size))
        out.access_bits = cond.bits
        out.access = cond.describe(AccessKind.TRAILER if trailer else AccessKind.DATA)
    if not trailer and n != 0 and is_value_block(raw):
        value = decode_value_block(raw)
        out.kind = pb.BLOCK_KIND_VALUE
        out.value = value.value
        out.value_address = value.address
    return out


def _member(station: Station, card: StorageCard) -> mc.MemberCard | None:
    """The member card as the layout decodes it, read-only; None when it is not ours."""
    card.reconnect()
    try:
        state = evaluate(station.keystore, CardSession(card, station.keystore).read_image())
    except CardDaemonError:
        card.reconnect()
        return None
    until = state.header.valid_until
    return state_member_card(
        state, station.programme, until is not None and until < station._today()
    )


# --- TestReader ---------------------------------------------------------------------------------


def self_test_job(station: Station, reader: str, rounds: int) -> Callable[[JobContext], Any]:
    profile = station.profile(reader)

    def job(ctx: JobContext) -> pb.TestReaderResponse:
        checks: list[pb.ReaderCheck] = []
        out = pb.TestReaderResponse()
        try:
            connection = ctx.connection
        except CardError as exc:
            checks.append(pb.ReaderCheck(name="card", passed=False, detail=exc.message))
            out.checks.extend(checks)
            out.passed = False
            return out
        card = StorageCard(connection, profile.dialect, trace=profile.trace)
        if card.dialect.firmware_query:
            try:
                checks.append(pb.ReaderCheck(name="firmware", passed=True, detail=card.firmware()))
            except CardDaemonError as exc:
                checks.append(pb.ReaderCheck(name="firmware", passed=False, detail=exc.message))
        else:
            detail = f"{card.dialect.title} reports firmware only through PC/SC attributes"
            checks.append(pb.ReaderCheck(name="firmware", passed=True, detail=detail))
        try:
            card.reconnect(reset=True)
            checks.append(
                pb.ReaderCheck(name="field", passed=True, detail="field reset, card re-selected")
            )
        except CardDaemonError as exc:
            checks.append(pb.ReaderCheck(name="field", passed=False, detail=exc.message))
        try:
            uid = card.uid().hex().upper()
            checks.append(pb.ReaderCheck(name="uid", passed=True, detail=f"UID {uid}"))
        except CardDaemonError as exc:
            checks.append(pb.ReaderCheck(name="uid", passed=False, detail=exc.message))
        else:
            samples = []
            for _ in range(rounds):
                ctx.check_deadline("latency self-test")
                started = time.perf_counter()
                card.uid()
                samples.append((time.perf_counter() - started) * 1000.0)
            latency = _latency(LatencyStats.from_samples(samples))
            assert latency is not None
            out.latency.CopyFrom(latency)
        out.checks.extend(checks)
        out.passed = all(c.passed for c in checks)
        return out

    return job


# --- GetCardHistory -------------------------------------------------------------------------------


def _history(station: Station, uids: list[str]) -> list[tuple[float, pb.CardHistoryEntry]]:
    journal = station.journal
    if journal is None:
        raise ReaderUnavailable("the station is not running")
    found: list[tuple[float, pb.CardHistoryEntry]] = []
    for uid in uids:
        for event in journal.audit_events(uid=uid):
            name = str(event["event"])
            if name in _NOT_HISTORY:
                continue
            detail = event["detail"]
            entry = pb.CardHistoryEntry(
                request_id=event["request_id"] or "",
                event=name,
                uid=uid,
                member_id=event["member_id"] or "",
                time=convert.timestamp(event["at"]),
            )
            op = str(detail.get("op", "")) if name == "value_change" else _AUDIT_TYPES.get(name)
            if op:
                entry.type = OPERATION_TYPES.get(op, mc.OPERATION_TYPE_UNSPECIFIED)
            if name == "membership_change":  # a tier change or renewal: its outcome says which
                entry.type = MEMBERSHIP_TYPES.get(str(detail.get("op")), entry.type)
            if name == "value_change" and "balance_before" in detail:
                entry.result.CopyFrom(operation_result(OpResult(**detail)))
            reason = detail.get("reason")
            if name in ("refused", "fraud", "issue_failed") and reason:
                entry.error_reason = str(reason)
            found.append((float(event["at"]), entry))
        for at, record in journal.requests_for_uid(uid):
            if record.state is RequestState.COMMITTED:
                continue  # its audit event is in the list already
            outcome = record.outcome or {}
            before = record.before or {}
            entry = pb.CardHistoryEntry(
                request_id=record.request_id,
                event=record.state.name,
                uid=uid,
                member_id=str(before.get("member_id", record.params.get("member_id", ""))),
                error_reason=str(outcome.get("reason", outcome.get("error", ""))),
                time=convert.timestamp(at),
            )
            entry.type = operation_type(record)
            found.append((at, entry))
    found.sort(key=lambda item: item[0], reverse=True)
    return found


# --- the servicer ---------------------------------------------------------------------------------


class DiagnosticsServicer(pb_grpc.DiagnosticsServiceServicer):
    def __init__(self, station: Station, api: ApiConfig) -> None:
        self.station = station
        self.max_call_s = api.max_call_ms / 1000

    def _reader(self, name: str) -> str:
        rid = convert.resource_id(name, "readers", "reader")
        self.station.reader(rid)
        return rid

    async def _run(self, rid: str, job: Callable[[JobContext], T], context: Context) -> T:
        left = cast("float | None", context.time_remaining())
        limit = self.max_call_s if left is None else min(left, self.max_call_s)
        return await run_on_reader(self.station, rid, job, max(limit, 0.0))

    async def ProbeCard(
        self, request: pb.ProbeCardRequest, context: Context
    ) -> pb.ProbeCardResponse:
        rid = self._reader(request.reader)
        rounds = _rounds(request.latency_rounds)
        job = probe_job(
            station=self.station.config.daemon.station,
            check_gen2=request.gen2_check,
            allow_block0_write=request.gen2_check,  # asking for the test is the permission
            latency_rounds=rounds,
            dialect=self.station.profile(rid).dialect,
        )
        result = await self._run(rid, job, context)
        if result.block0 is None and not request.gen2_check:
            # a member card's sector 0 opens with the public MAD key, not the transport key
            again = probe_job(
                station=self.station.config.daemon.station,
                key=MAD_KEY_A,
                latency_rounds=0,
                dialect=self.station.profile(rid).dialect,
            )
            mad = await self._run(rid, again, context)
            if mad.block0 is not None:
                result.block0, result.block0_error = mad.block0, None
                result.findings = mad.findings
                result.key_used = "MAD key A"
        return probe_response(f"readers/{rid}", result)

    async def DumpCard(self, request: pb.DumpCardRequest, context: Context) -> pb.DumpCardResponse:
        rid = self._reader(request.reader)
        sectors = list(request.sectors)
        for s in sectors:
            if not 0 <= s < MAX_SECTORS:
                raise InvalidArgument("sectors", f"sector {s} is not in 0..{MAX_SECTORS - 1}")
        if len(set(sectors)) != len(sectors):
            raise InvalidArgument("sectors", "a sector is listed twice")
        expected = (
            normalise_uid("expected_uid", request.expected_uid) if request.expected_uid else None
        )
        return await self._run(rid, dump_job(self.station, rid, sectors, expected), context)

    async def TestReader(
        self, request: pb.TestReaderRequest, context: Context
    ) -> pb.TestReaderResponse:
        rid = self._reader(request.reader)
        rounds = _rounds(request.latency_rounds) or DEFAULT_TEST_ROUNDS
        out: pb.TestReaderResponse = await self._run(
            rid, self_test_job(self.station, rid, rounds), context
        )
        out.reader = f"readers/{rid}"
        return out

    async def GetApduTrace(
        self, request: pb.GetApduTraceRequest, context: Context
    ) -> pb.GetApduTraceResponse:
        rid = self._reader(request.reader)
        if request.limit < 0:
            raise InvalidArgument("limit", f"must not be negative, got {request.limit}")
        limit = min(request.limit or DEFAULT_TRACE, MAX_TRACE)
        trace = self.station.profile(rid).trace
        entries = trace.entries()[-limit:]
        out = pb.GetApduTraceResponse(total=trace.count)
        for e in entries:
            duration = Duration()
            duration.FromNanoseconds(round(e.duration_ms * 1e6))
            out.exchanges.append(
                pb.ApduExchange(
                    index=e.seq,
                    send_time=convert.timestamp(e.at),
                    command_hex=e.apdu.replace(" ", ""),
                    response_hex=(e.response or "").replace(" ", ""),
                    status_word=e.sw or 0,
                    duration=duration,
                    error_reason=e.error or "",
                )
            )
        return out

    async def GetCardHistory(
        self, request: pb.GetCardHistoryRequest, context: Context
    ) -> pb.GetCardHistoryResponse:
        if bool(request.uid) == bool(request.member_id):
            raise InvalidArgument("uid", "exactly one of uid and member_id is required")
        start, size = page(request.page_size, request.page_token)
        journal = self.station.journal
        if journal is None:
            raise ReaderUnavailable("the station is not running")
        if request.uid:
            uids = [normalise_uid("uid", request.uid)]
        else:
            member = request.member_id
            if len(member) > 16 or not (member.isascii() and member.isdigit()):
                raise InvalidArgument("member_id", f"must be 1-16 digits, got {member[:40]!r}")
            uids = await asyncio.to_thread(journal.uids_of_member, member)
            if not uids:
                raise MemberNotFound(f"member {member} is unknown to this PC's journal")
        since, until = time_window(
            request.start_time,
            request.end_time,
            request.HasField("start_time"),
            request.HasField("end_time"),
        )
        found = await asyncio.to_thread(_history, self.station, uids)
        found = [
            (at, entry)
            for at, entry in found
            if (since is None or at >= since) and (until is None or at < until)
        ]
        chunk = found[start : start + size]
        return pb.GetCardHistoryResponse(
            entries=[entry for _, entry in chunk],
            next_page_token=str(start + size) if start + size < len(found) else "",
        )

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        # off the event loop: the journal's lock may be held by a reader worker's commit
        return await asyncio.to_thread(list_audit_events, self.station.journal, request)


def service(station: Station, api: ApiConfig) -> Service:
    return Service(
        pb.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name,
        frozenset({"technician"}),
        DiagnosticsServicer(station, api),
        pb_grpc.add_DiagnosticsServiceServicer_to_server,
    )
