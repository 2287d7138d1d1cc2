# ruff: noqa: N802  (servicer methods carry the contract's RPC names)
"""``SimulatorService``: the simulated store's cards and hands, as a gRPC service.

Why here, in the demo: the service needs both the station (its readers, its personaliser, its
event hub) and the simulator (cards, faults), and only the demo may use both; the daemon finds
it by entry point (``carddaemon.api.services``) and never names it. The factory answers
``None`` unless the station runs the simulated reader backend, so a ``pcsc`` station never
offers it (a call is UNIMPLEMENTED there).

The catalogue (:data:`DEMO_CARDS`) is made when the service is created: fixed UIDs and member
ids, the member cards personalised through the station's own personaliser (the store's keys,
the store's journal) on a private personalisation bench, so nothing shows on the station's
readers or its event hub. Where a card lies at start (``gold`` on ``readers/front``, ``silver``
on ``readers/back``) is applied only by :meth:`Catalogue.lay_out` (``carddaemon-demo serve``):
under a bare ``carddaemon serve`` every card starts in the drawer. ``InjectScan`` hands a code
to a simulated scanner (:meth:`sim.scanners.backend.SimScanner.inject`), as a cashier scanning.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Final

from grpc import aio

from daemon.api import convert
from daemon.api.server import Service
from daemon.api.settings import ApiConfig
from daemon.api.v1 import simulator_service_pb2 as pb
from daemon.api.v1 import simulator_service_pb2_grpc as pb_grpc
from daemon.errors import CardDaemonError, DeviceNotFound, InvalidArgument
from daemon.membercard.requests import IssueCard, IssueSpec
from daemon.readers.dialects import detect_dialect
from daemon.readers.storage import StorageCard
from daemon.readers.trace import ApduTrace
from daemon.station import Station
from sim.backend import SimBackend
from sim.card import SimCard
from sim.faults import TearOutcome
from sim.reader import SimReader
from sim.scanners.backend import SimScanner
from sim.store import transport_card

__all__ = ["DEMO_CARDS", "Catalogue", "DemoCard", "SimulatorServicer", "service"]

logger = logging.getLogger(__name__)

Context = aio.ServicerContext[Any, Any]

#: how long a present/remove waits for the station to see it (the monitor polls every 10 ms)
SEEN_TIMEOUT_S: Final = 5.0
MAX_APDU: Final = 1000


@dataclass(frozen=True, slots=True)
class DemoCard:
    """One card of the simulated store: a member card (``tier`` set) or a blank one."""

    card_id: str
    uid: str  # 4 bytes, upper-case hex
    member_id: str | None = None
    tier: str | None = None  # a tier name of [membercard]
    balance: int = 0  # fen
    points: int = 0
    start: str | None = None  # reader id it lies on at start (carddaemon-demo serve)


#: The store's cards: two members of different tiers, two blank cards for the issuing desk.
DEMO_CARDS: Final = (
    DemoCard("gold", "9E1A4B01", "8860000000017", "金卡", 50_000, 2_345, start="front"),
    DemoCard("silver", "9E1A4B02", "8860000000024", "银卡", 20_000, 680, start="back"),
    DemoCard("blank", "9E1A4B03"),
    DemoCard("blank-2", "9E1A4B04"),
)

_FAULTS: Final = {
    pb.InjectFaultRequest.FAULT_REMOVE_BEFORE: "remove_before",
    pb.InjectFaultRequest.FAULT_REMOVE_AFTER: "remove_after",
    pb.InjectFaultRequest.FAULT_TEAR: "tear",
    pb.InjectFaultRequest.FAULT_LOSE_RESPONSE: "lose_response",
}
_OUTCOMES: Final[dict[int, TearOutcome]] = {
    pb.InjectFaultRequest.TEAR_OUTCOME_UNSPECIFIED: "garbage",
    pb.InjectFaultRequest.TEAR_OUTCOME_OLD: "old",
    pb.InjectFaultRequest.TEAR_OUTCOME_NEW: "new",
    pb.InjectFaultRequest.TEAR_OUTCOME_GARBAGE: "garbage",
    pb.InjectFaultRequest.TEAR_OUTCOME_UNSTABLE: "unstable",
}


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


class Catalogue:
    """The simulated cards (kept for the daemon's lifetime) and where each lies now."""

    def __init__(self, station: Station, backend: SimBackend) -> None:
        self.station = station
        self.backend = backend
        self.cards: dict[str, SimCard] = {}
        self.descriptions: dict[str, str] = {}
        self.specs = {card.card_id: card for card in DEMO_CARDS}
        for demo in DEMO_CARDS:
            self.cards[demo.card_id] = transport_card(bytes.fromhex(demo.uid))
            self.descriptions[demo.card_id] = "blank card in transport state, for issuing"
        self._personalise()

    # --- making the cards -------------------------------------------------------------------

    def _personalise(self) -> None:
        """Issue each member card through the station's personaliser, off the store's readers.

        A journal that already knows a demo card (a store folder reused after a restart: the
        simulated cards lived only in the last process) leaves it blank with a warning, so the
        journal's history of that card is never contradicted."""
        personaliser = self.station.personaliser
        journal = self.station.journal
        if personaliser is None or journal is None:
            raise CardDaemonError("the station is not running: no demo cards")
        bench = SimReader("carddaemon demo personalisation bench")
        dialect = detect_dialect(bench.name)
        trace = ApduTrace(bench.name)
        today = dt.date.today()
        tiers = [tier.name for tier in self.station.programme.tiers]
        for demo in DEMO_CARDS:
            if demo.member_id is None or demo.tier is None:
                continue
            request_id = f"demo-card-{demo.card_id}"
            if journal.get(request_id) is not None:
                logger.warning(
                    "demo card %s: this journal already issued it in an earlier run; it stays "
                    "blank (use a fresh store folder)", demo.card_id,
                )  # fmt: skip
                continue
            tier = tiers.index(demo.tier) if demo.tier in tiers else len(tiers) - 1
            spec = IssueSpec(
                demo.member_id,
                tier=tier,
                valid_until=dt.date(today.year + 2, 12, 31),
                balance=demo.balance,
                points=demo.points,
            )
            card = self.cards[demo.card_id]
            bench.insert(card)
            try:
                with bench.connect() as connection:
                    storage = StorageCard(connection, dialect, trace=trace)
                    personaliser.issue(storage, IssueCard(spec, request_id))
            except CardDaemonError as exc:
                logger.warning("demo card %s could not be issued: %s", demo.card_id, exc)
                continue
            finally:
                bench.remove()
            name = tiers[tier] if tiers else demo.tier
            self.descriptions[demo.card_id] = (
                f"{name} member {demo.member_id}, issued with {_yuan(demo.balance)} "
                f"and {demo.points} points"
            )
        bench.close()

    def lay_out(self) -> None:
        """Lay each card with a ``start`` reader on it (what ``carddaemon-demo serve`` shows),
        waiting until the station has seen it arrive."""
        for demo in DEMO_CARDS:
            if demo.start is None:
                continue
            self.station.wait_for_reader(demo.start)
            if self.where(demo.card_id) is None:
                self.present(demo.start, demo.card_id)

    # --- looking up -------------------------------------------------------------------------

    def card(self, card_id: str) -> SimCard:
        try:
            return self.cards[card_id]
        except KeyError:
            ids = ", ".join(self.cards)
            name = card_id or "(empty)"
            raise DeviceNotFound(
                f"cards/{name}", f"no simulated card with that id (cards: {ids})"
            ) from None

    def reader(self, name: str, field: str = "reader") -> tuple[str, SimReader]:
        """``readers/front`` → (``front``, its simulated reader)."""
        rid = convert.resource_id(name, "readers", field)
        info = self.station.reader(rid)
        return info.id, self.backend.reader(info.name)

    def _reader_ids(self) -> dict[str, str]:
        return {info.name: info.id for info in self.station.readers()}

    def where(self, card_id: str) -> str | None:
        """The id of the reader the card lies on now, or None."""
        card = self.cards[card_id]
        ids = self._reader_ids()
        for sim in self.backend.readers:
            if sim.card is card:
                return ids.get(sim.name, sim.name)
        return None

    def card_id_of(self, card: SimCard | None) -> str | None:
        return next((cid for cid, c in self.cards.items() if c is card), None)

    def message(self, card_id: str) -> pb.SimulatedCard:
        rid = self.where(card_id)
        return pb.SimulatedCard(
            card_id=card_id,
            description=self.descriptions[card_id],
            uid=self.specs[card_id].uid,
            reader=f"readers/{rid}" if rid is not None else "",
        )

    def removed_message(self, card: SimCard | None) -> pb.SimulatedCard | None:
        if card is None:
            return None
        cid = self.card_id_of(card)
        if cid is None:  # a card a test laid by hand
            return pb.SimulatedCard(uid=card.uid.hex().upper(), description="not a demo card")
        return self.message(cid)

    # --- the hands (blocking: called on a thread) ----------------------------------------

    def _check_free(self, card_id: str, rid: str) -> None:
        lies = self.where(card_id)
        if lies is not None and lies != rid:
            raise InvalidArgument(
                "card_id",
                f"card {card_id!r} already lies on readers/{lies}; remove it there first",
            )

    def present(self, reader: str, card_id: str) -> pb.SimulatedCard:
        rid, sim = self.reader(reader)
        card = self.card(card_id)
        self._check_free(card_id, rid)
        if sim.card is not None:
            held = self.card_id_of(sim.card) or sim.card.uid.hex().upper()
            raise InvalidArgument(
                "reader", f"readers/{rid} already holds card {held!r}; use SwapCard"
            )
        self._insert(rid, sim, card)
        return self.message(card_id)

    def remove(self, reader: str) -> pb.SimulatedCard | None:
        rid, sim = self.reader(reader)
        return self._take(rid, sim)

    def swap(self, reader: str, card_id: str) -> tuple[pb.SimulatedCard | None, pb.SimulatedCard]:
        rid, sim = self.reader(reader)
        card = self.card(card_id)
        self._check_free(card_id, rid)
        removed = self._take(rid, sim)
        self._insert(rid, sim, card)
        return removed, self.message(card_id)

    def _insert(self, rid: str, sim: SimReader, card: SimCard) -> None:
        source = f"readers/{rid}"
        hub = self.station.hub
        with hub.subscribe(sources=source, kinds="card_present") as seen:
            sim.insert(card)
            seen.wait_for(lambda e: e.source == source and not e.snapshot, SEEN_TIMEOUT_S)

    def _take(self, rid: str, sim: SimReader) -> pb.SimulatedCard | None:
        if sim.card is None:
            return None
        source = f"readers/{rid}"
        with self.station.hub.subscribe(sources=source, kinds="card_removed") as gone:
            card = sim.remove()
            if card is not None:
                gone.wait_for(lambda e: e.source == source and not e.snapshot, SEEN_TIMEOUT_S)
        return self.removed_message(card)


class SimulatorServicer(pb_grpc.SimulatorServiceServicer):
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    async def ListSimulatedCards(
        self, request: pb.ListSimulatedCardsRequest, context: Context
    ) -> pb.ListSimulatedCardsResponse:
        cards = await asyncio.to_thread(
            lambda: [self.catalogue.message(cid) for cid in self.catalogue.cards]
        )
        return pb.ListSimulatedCardsResponse(cards=cards)

    async def PresentCard(
        self, request: pb.PresentCardRequest, context: Context
    ) -> pb.PresentCardResponse:
        card = await asyncio.to_thread(self.catalogue.present, request.reader, request.card_id)
        return pb.PresentCardResponse(card=card)

    async def RemoveCard(
        self, request: pb.RemoveCardRequest, context: Context
    ) -> pb.RemoveCardResponse:
        card = await asyncio.to_thread(self.catalogue.remove, request.reader)
        return pb.RemoveCardResponse(card=card)

    async def SwapCard(self, request: pb.SwapCardRequest, context: Context) -> pb.SwapCardResponse:
        removed, presented = await asyncio.to_thread(
            self.catalogue.swap, request.reader, request.card_id
        )
        return pb.SwapCardResponse(removed=removed, presented=presented)

    async def InjectFault(
        self, request: pb.InjectFaultRequest, context: Context
    ) -> pb.InjectFaultResponse:
        _, sim = self.catalogue.reader(request.reader)
        kind = _FAULTS.get(request.fault)
        if kind is None:
            raise InvalidArgument(
                "fault", "required: FAULT_REMOVE_BEFORE, FAULT_REMOVE_AFTER, FAULT_TEAR or "
                "FAULT_LOSE_RESPONSE",
            )  # fmt: skip
        if not 1 <= request.apdu <= MAX_APDU:
            raise InvalidArgument(
                "apdu", f"must be 1..{MAX_APDU} (1 = the next APDU), got {request.apdu}"
            )
        outcome = _OUTCOMES.get(request.tear_outcome)
        if outcome is None:
            raise InvalidArgument("tear_outcome", f"unknown value {request.tear_outcome}")
        if kind != "tear" and request.tear_outcome:
            raise InvalidArgument("tear_outcome", "only for FAULT_TEAR")
        plan = sim.faults
        plan.arm()  # APDU numbers count from now: 1 = the next APDU the reader sees
        if kind == "tear":
            plan.tear(request.apdu, outcome)
        elif kind == "remove_before":
            plan.remove_before(request.apdu)
        elif kind == "remove_after":
            plan.remove_after(request.apdu)
        else:
            plan.lose_response(request.apdu)
        return pb.InjectFaultResponse(pending_faults=len(plan.pending))

    async def ClearFaults(
        self, request: pb.ClearFaultsRequest, context: Context
    ) -> pb.ClearFaultsResponse:
        _, sim = self.catalogue.reader(request.reader)
        cleared = len(sim.faults.pending)
        sim.faults.clear()
        return pb.ClearFaultsResponse(cleared=cleared)

    async def InjectScan(
        self, request: pb.InjectScanRequest, context: Context
    ) -> pb.InjectScanResponse:
        station = self.catalogue.station
        scanner = station.scanner(convert.resource_id(request.scanner, "scanners", "scanner"))
        gun = scanner.backend
        if not isinstance(gun, SimScanner):
            raise InvalidArgument("scanner", f"{request.scanner!r} is not a simulated scanner")
        if not request.data:
            raise InvalidArgument("data", "required: what the scanner reads")
        delivered = gun.inject(request.data, aim=request.aim or None)  # checks the AIM id
        return pb.InjectScanResponse(delivered=delivered)


def service(station: Station, api: ApiConfig) -> Service | None:
    """The service on a station of simulated readers; ``None`` on any other (``pcsc``)."""
    backend = station.backend
    if not isinstance(backend, SimBackend):
        return None
    return Service(
        pb.DESCRIPTOR.services_by_name["SimulatorService"].full_name,
        frozenset({"pos", "technician", "issuer"}),
        SimulatorServicer(Catalogue(station, backend)),
        pb_grpc.add_SimulatorServiceServicer_to_server,
    )
