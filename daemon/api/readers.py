"""``ReaderService``: the readers of this PC, their cards, and waiting for a card (every role).

Everything here comes from the station's event hub and reader table; no call touches a card,
so nothing here queues on a reader worker. ``ListReaders`` and ``GetReader`` also show a
configured reader that no PC/SC reader matches (STATE_DETACHED with its ``match`` pattern):
a reader missing from the list would look like one nobody ever set up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from grpc import aio

from daemon.api import convert
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import reader_service_pb2 as pb
from daemon.api.v1 import reader_service_pb2_grpc as pb_grpc
from daemon.errors import DeviceNotFound, OperationTimeout, ReaderUnavailable
from daemon.events import Event
from daemon.readers.monitor import ReaderEvent
from daemon.station import MissingReader, ReaderInfo, Station

__all__ = ["ReaderServicer", "service"]

Context = aio.ServicerContext[Any, Any]
_R = pb.Reader


def _card_event(station: Station, info: ReaderInfo) -> ReaderEvent | None:
    monitor = station.monitor
    return None if monitor is None else monitor.snapshot().get(info.name)


def reader_message(station: Station, info: ReaderInfo) -> pb.Reader:
    card = _card_event(station, info)
    message = pb.Reader(
        name=info.path,
        pcsc_name=info.name,
        dialect=info.dialect,
        state=_R.STATE_CARD_PRESENT if card is not None else _R.STATE_EMPTY,
        match=info.match,
    )
    if card is not None:
        message.card.CopyFrom(convert.card(card))
    return message


def missing_message(gone: MissingReader) -> pb.Reader:
    """A configured reader nothing attached matches: its id, what it expects, no PC/SC name."""
    dialect = "" if gone.dialect.strip().lower() == "auto" else gone.dialect
    return pb.Reader(name=gone.path, dialect=dialect, state=_R.STATE_DETACHED, match=gone.match)


class ReaderServicer(pb_grpc.ReaderServiceServicer):
    def __init__(self, station: Station, api: ApiConfig) -> None:
        self.station = station
        self.max_wait_s = api.max_wait_ms / 1000

    async def ListReaders(
        self, request: pb.ListReadersRequest, context: Context
    ) -> pb.ListReadersResponse:
        station = self.station
        readers = [reader_message(station, info) for info in station.readers()]
        readers += [missing_message(gone) for gone in station.missing_readers()]
        return pb.ListReadersResponse(readers=sorted(readers, key=lambda r: r.name))

    async def GetReader(
        self, request: pb.GetReaderRequest, context: Context
    ) -> pb.GetReaderResponse:
        rid = convert.resource_id(request.name, "readers", "name")
        try:
            info = self.station.reader(rid)
        except DeviceNotFound:
            for gone in self.station.missing_readers():
                if gone.id == rid:
                    return pb.GetReaderResponse(reader=missing_message(gone))
            raise
        return pb.GetReaderResponse(reader=reader_message(self.station, info))

    async def WatchReaders(
        self, request: pb.WatchReadersRequest, context: Context
    ) -> AsyncIterator[pb.WatchReadersResponse]:
        sources = [
            f"readers/{convert.resource_id(name, 'readers', 'readers')}" for name in request.readers
        ]
        hub = self.station.hub
        after = request.resume_after or None
        with hub.subscribe(
            sources=[*sources, "readers"] if sources else "readers",
            where=(lambda e: e.source in sources or e.source == "readers") if sources else None,
            after=after,
            name=f"WatchReaders {context.peer()}",
        ) as sub:
            async for event in sub:
                message = self._message(event)
                if message is not None:
                    yield message

    def _message(self, event: Event) -> pb.WatchReadersResponse | None:
        header = convert.header(event)
        out = pb.WatchReadersResponse(header=header)
        payload = cast(ReaderEvent, event.payload)
        rid = event.source.partition("/")[2]
        if event.snapshot and rid:
            state = _R.STATE_CARD_PRESENT if event.kind == "card_present" else _R.STATE_EMPTY
            reader = pb.Reader(name=event.source, pcsc_name=payload.reader or "", state=state)
            self._dialect(reader, rid)
            if event.kind == "card_present":
                reader.card.CopyFrom(convert.card(payload, event.time))
            out.snapshot.reader.CopyFrom(reader)
        elif event.kind == "reader_attached":
            reader = pb.Reader(
                name=event.source, pcsc_name=payload.reader or "", state=_R.STATE_EMPTY
            )
            self._dialect(reader, rid)
            out.reader_attached.reader.CopyFrom(reader)
        elif event.kind == "reader_detached":
            out.reader_detached.reader = event.source
        elif event.kind == "card_present":
            out.card_present.reader = event.source
            out.card_present.card.CopyFrom(convert.card(payload, event.time))
        elif event.kind == "card_removed":
            out.card_removed.reader = event.source
        elif event.kind == "service_lost":
            out.service_lost.detail = payload.error or "the PC/SC service stopped answering"
        elif event.kind == "service_restored":
            out.service_restored.SetInParent()
        else:
            return None
        return out

    def _dialect(self, reader: pb.Reader, rid: str) -> None:
        with contextlib.suppress(DeviceNotFound):  # detached meanwhile: no dialect to say
            reader.dialect = self.station.reader(rid).dialect

    async def WaitForCard(
        self, request: pb.WaitForCardRequest, context: Context
    ) -> pb.WaitForCardResponse:
        rid = convert.resource_id(request.reader, "readers", "reader")
        self.station.reader(rid)
        wanted = self.max_wait_s
        if request.HasField("timeout"):
            asked = convert.seconds(request.timeout, "timeout")
            wanted = min(wanted, asked) if asked > 0 else wanted
        left = cast("float | None", context.time_remaining())
        if left is not None:
            wanted = min(wanted, left)
        source = f"readers/{rid}"
        with self.station.hub.subscribe(sources=source, name=f"WaitForCard {source}") as sub:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wanted
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise OperationTimeout(f"{source}: no card within {wanted:g} s; call again")
                try:
                    event = await sub.get_async(remaining)
                except OperationTimeout:
                    continue
                if event.kind == "reader_detached":
                    raise ReaderUnavailable(f"{source}: the reader was detached while waiting")
                if event.kind == "card_present" and not (event.snapshot and request.new_card_only):
                    payload = cast(ReaderEvent, event.payload)
                    return pb.WaitForCardResponse(
                        card=convert.card(payload, event.time), sequence=event.seq
                    )


def service(station: Station, api: ApiConfig) -> Service:
    return Service(
        pb.DESCRIPTOR.services_by_name["ReaderService"].full_name,
        frozenset({"pos", "technician", "issuer"}),
        ReaderServicer(station, api),
        pb_grpc.add_ReaderServiceServicer_to_server,
    )
