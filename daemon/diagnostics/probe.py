"""Technician probe: what is this reader, what is this card, does block 0 look genuine?

It lives above both ``daemon.readers`` (APDUs, dialects, ATR) and ``daemon.mifare`` (block-0
rules), the only place allowed to combine them. The probe only reads, except for one step that
must be asked for explicitly: the Gen2/CUID test writes the card's *own* block-0 bytes back to
block 0 (a Gen2 card accepts, a genuine chip refuses) and verifies by read-back. A tear during
that write can brick a magic card, so it runs only on an issuing station with block-0 writes
allowed; anywhere else asking for it raises ``OperationNotAllowed`` before the card is touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from daemon.diagnostics.report import Gen2Check, Gen2Verdict, LatencyStats, ProbeResult
from daemon.errors import (
    CardDaemonError,
    CardMismatch,
    CardRemoved,
    InvalidArgument,
    MalformedBlock,
    OperationNotAllowed,
    ReaderBadResponse,
    ReaderError,
    ReaderUnsupported,
    ResponseLost,
    WriteUnconfirmed,
)
from daemon.mifare.block0 import Finding, Severity, check_block0, parse_block0
from daemon.mifare.geometry import CardSize
from daemon.mifare.trailer import DEFAULT_KEY
from daemon.readers.apdu import KeyType
from daemon.readers.atr import AtrInfo, decode_atr
from daemon.readers.connection import CardConnection
from daemon.readers.dialects import GENERIC, Dialect, detect_dialect
from daemon.readers.storage import StorageCard
from daemon.readers.workers import JobContext

__all__ = ["DEFAULT_LATENCY_ROUNDS", "STATIONS", "probe_card", "probe_job"]

logger = logging.getLogger(__name__)

STATIONS: Final = ("pos", "technician", "issuing")
DEFAULT_LATENCY_ROUNDS: Final = 20
MAX_LATENCY_ROUNDS: Final = 1000
_KEY_SLOT = 0

_SIZE_BY_CARD_NAME = {
    0x0001: CardSize.CLASSIC_1K,
    0x0002: CardSize.CLASSIC_4K,
    0x0026: CardSize.MINI,
}
_ULTRALIGHT_NAMES = (0x0003, 0x003A)

Check = Callable[[str], None]


def _no_check(step: str) -> None:
    return None


def _require_gen2_allowed(station: str, allow_block0_write: bool) -> None:
    if station not in STATIONS:
        raise InvalidArgument("station", f"{station!r} is not one of {', '.join(STATIONS)}")
    if station != "issuing":
        raise OperationNotAllowed(
            f"the Gen2/CUID test writes block 0; only an issuing station may run it"
            f" (this station is {station!r})"
        )
    if not allow_block0_write:
        raise OperationNotAllowed(
            "the Gen2/CUID test writes block 0; set allow_block0_write to run it"
        )


def probe_card(
    connection: CardConnection,
    *,
    station: str = "pos",
    check_gen2: bool = False,
    allow_block0_write: bool = False,
    key: bytes | None = None,
    key_type: KeyType = KeyType.A,
    latency_rounds: int = DEFAULT_LATENCY_ROUNDS,
    timer: Callable[[], float] = time.perf_counter,
    dialect: Dialect | None = None,
    check: Check = _no_check,
) -> ProbeResult:
    """Probe the card on ``connection``'s reader.

    ``key`` reads block 0 (default: the transport key FF..FF); ``timer`` returns seconds
    (``time.perf_counter`` on hardware, the simulator's virtual clock in tests); ``check`` is
    called between steps (a worker passes its deadline check). The connection stays open.
    """
    if station not in STATIONS:
        raise InvalidArgument("station", f"{station!r} is not one of {', '.join(STATIONS)}")
    if check_gen2:
        _require_gen2_allowed(station, allow_block0_write)
    if isinstance(latency_rounds, bool) or not 0 <= latency_rounds <= MAX_LATENCY_ROUNDS:
        raise InvalidArgument(
            "latency_rounds", f"{latency_rounds!r} is not in 0..{MAX_LATENCY_ROUNDS}"
        )
    card, firmware, firmware_note = _identify(connection, dialect)
    info = decode_atr(connection.atr)
    check("reading the UID")
    uid = card.uid()
    result = ProbeResult(
        reader=card.reader,
        dialect=card.dialect.name,
        dialect_title=card.dialect.title,
        firmware=firmware,
        firmware_note=firmware_note,
        atr=info.atr,
        atr_standard=info.standard,
        atr_card_name=info.card_type,
        atr_problem=info.problem,
        uid=uid,
        card_type=_card_type(info, uid),
        key_used="transport key" if key is None else "given key",
    )
    result.findings.extend(_atr_findings(info, uid))
    check("reading block 0")
    _block0(card, result, info, key if key is not None else DEFAULT_KEY, key_type)
    if check_gen2:
        check("Gen2/CUID test")
        result.gen2 = _gen2(
            card, connection, result, key if key is not None else DEFAULT_KEY, key_type
        )
    if latency_rounds:
        result.latency = _latency(card, latency_rounds, timer, check)
    logger.info(
        "probe of %s: %s uid %s, %d finding(s)",
        result.reader,
        result.card_type,
        uid.hex(),
        len(result.findings),
    )
    return result


def probe_job(
    *,
    station: str = "pos",
    check_gen2: bool = False,
    allow_block0_write: bool = False,
    key: bytes | None = None,
    key_type: KeyType = KeyType.A,
    latency_rounds: int = DEFAULT_LATENCY_ROUNDS,
    timer: Callable[[], float] = time.perf_counter,
    dialect: Dialect | None = None,
) -> Callable[[JobContext], ProbeResult]:
    """A :class:`~daemon.readers.workers.ReaderWorker` job running :func:`probe_card`.

    The Gen2 policy is checked here, at submit time, so a refused test never even queues.
    """
    if check_gen2:
        _require_gen2_allowed(station, allow_block0_write)

    def job(ctx: JobContext) -> ProbeResult:
        return probe_card(
            ctx.connection,
            station=station,
            check_gen2=check_gen2,
            allow_block0_write=allow_block0_write,
            key=key,
            key_type=key_type,
            latency_rounds=latency_rounds,
            timer=timer,
            dialect=dialect,
            check=ctx.check_deadline,
        )

    return job


# --- steps ------------------------------------------------------------------------------------


def _identify(
    connection: CardConnection, dialect: Dialect | None
) -> tuple[StorageCard, str | None, str | None]:
    """The card in its reader's dialect, the firmware string, and why there is none.

    A reader whose name says nothing (generic dialect) is asked the ACS firmware query: an
    ACS reader behind a driver-given name (vpcd, some Windows drivers) is then recognised.
    """
    card = StorageCard(connection, dialect)
    if dialect is None and card.dialect is GENERIC:
        firmware = card.probe_firmware()
        if firmware is not None:
            found = detect_dialect(card.reader, firmware)
            return StorageCard(connection, found, trace=card.trace), firmware, None
        return card, None, "the reader did not answer the ACS firmware query"
    firmware, note = _firmware(card)
    return card, firmware, note


def _firmware(card: StorageCard) -> tuple[str | None, str | None]:
    if not card.dialect.firmware_query:
        return None, f"{card.dialect.title} reports firmware only through PC/SC attributes"
    try:
        return card.firmware(), None
    except (ReaderUnsupported, ReaderBadResponse) as exc:
        return None, exc.message


def _card_type(info: AtrInfo, uid: bytes) -> str:
    size = {4: "single-size UID", 7: "double-size UID", 10: "triple-size UID"}.get(len(uid))
    return f"{info.card_type}, {size}" if size else info.card_type


def _atr_findings(info: AtrInfo, uid: bytes) -> list[Finding]:
    found: list[Finding] = []
    if not info.pcsc_part3:
        found.append(
            Finding(
                "ATR_NOT_STORAGE_CARD",
                Severity.WARNING,
                f"ATR is not a PC/SC Part 3 storage-card ATR ({info.problem or info.card_type})",
            )
        )
        return found
    code = info.card_name_code
    if code in _SIZE_BY_CARD_NAME and len(uid) not in (4, 7):
        found.append(
            Finding(
                "UID_LENGTH_UNEXPECTED",
                Severity.ERROR,
                f"ATR names {info.card_type}, whose UID is 4 or 7 bytes; card answered {len(uid)}",
            )
        )
    elif code in _ULTRALIGHT_NAMES and len(uid) != 7:
        found.append(
            Finding(
                "UID_LENGTH_UNEXPECTED",
                Severity.ERROR,
                f"ATR names {info.card_type}, whose UID is 7 bytes; card answered {len(uid)}",
            )
        )
    if code not in _SIZE_BY_CARD_NAME:
        found.append(
            Finding(
                "ATR_NOT_CLASSIC",
                Severity.WARNING,
                f"ATR names {info.card_type}, not MIFARE Classic; block 0 checked as a 1K",
            )
        )
    return found


def _read_block0(card: StorageCard, key: bytes, key_type: KeyType) -> bytes:
    card.load_key(key, _KEY_SLOT, key_type)
    card.authenticate(0, key_type, _KEY_SLOT)
    return card.read_block(0)


def _block0(
    card: StorageCard, result: ProbeResult, info: AtrInfo, key: bytes, key_type: KeyType
) -> None:
    try:
        raw = _read_block0(card, key, key_type)
    except (CardRemoved, ResponseLost, ReaderError):
        raise
    except CardDaemonError as exc:
        result.block0_error = f"not readable with the {result.key_used} ({exc.reason})"
        card.reconnect()  # a failed authentication leaves the card deaf until re-selected
        return
    result.block0 = raw
    size = _SIZE_BY_CARD_NAME.get(info.card_name_code or 0, CardSize.CLASSIC_1K)
    try:
        parsed = parse_block0(raw, uid_length=len(result.uid))
    except (InvalidArgument, MalformedBlock) as exc:
        result.findings.append(Finding("BLOCK0_UNPARSEABLE", Severity.ERROR, exc.message))
        return
    result.findings.extend(check_block0(parsed, size))
    if parsed.uid != result.uid:
        result.findings.append(
            Finding(
                "UID_MISMATCH",
                Severity.ERROR,
                f"block 0 holds UID {parsed.uid.hex(' ').upper()}, the card answered"
                f" {result.uid.hex(' ').upper()} (UID changed since selection, or an emulator)",
            )
        )


def _gen2(
    card: StorageCard,
    connection: CardConnection,
    result: ProbeResult,
    key: bytes,
    key_type: KeyType,
) -> Gen2Check:
    """Write the card's own block 0 back: Gen2 accepts, genuine refuses; read-back decides."""
    if result.block0 is None:
        return Gen2Check(Gen2Verdict.NOT_RUN, "block 0 was not readable with the key given")
    card.reconnect()
    original = _read_block0(card, key, key_type)
    if original != result.block0:
        raise CardMismatch(
            f"reader {card.reader!r}: block 0 changed between two reads (card swapped?);"
            " Gen2 test not run, nothing written"
        )
    try:
        response = card.exchange(card.dialect.write(0, original))
    except WriteUnconfirmed as exc:
        raise WriteUnconfirmed(
            f"reader {card.reader!r}: answer to the block-0 write test lost"
            f" ({_cause_reason(exc)}); present the card again and probe it to verify block 0"
        ) from exc
    if not response.ok:
        card.reconnect()  # a refused WRITE sends the chip back to idle
    readback = _read_block0(card, key, key_type)
    if readback != original:
        logger.error("reader %s: block 0 differs after the Gen2 write test", card.reader)
        raise WriteUnconfirmed(
            f"reader {card.reader!r}: block 0 reads back different after writing its own bytes"
            f" (SW {response.sw:04X}); the card's block 0 must be checked by hand"
        )
    if response.ok:
        return Gen2Check(
            Gen2Verdict.GEN2,
            "block 0 accepted an ordinary authenticated WRITE (verified by read-back):"
            " a UID-changeable Gen2/CUID card, not a genuine chip",
        )
    return Gen2Check(
        Gen2Verdict.NOT_WRITABLE,
        f"block 0 WRITE refused (SW {response.sw:04X}), block 0 verified unchanged: not Gen2/CUID"
        " (genuine chip, sector 0 access bits, or a magic type PC/SC cannot see)",
    )


def _cause_reason(exc: BaseException) -> str:
    cause = exc.__cause__
    return cause.reason if isinstance(cause, CardDaemonError) else "unparseable answer"


def _latency(
    card: StorageCard, rounds: int, timer: Callable[[], float], check: Check
) -> LatencyStats:
    samples: list[float] = []
    for _ in range(rounds):
        check("latency self-test")
        started = timer()
        card.uid()
        samples.append((timer() - started) * 1000.0)
    return LatencyStats.from_samples(samples)
