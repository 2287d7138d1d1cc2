"""Technician probe over the in-process simulator: reader models, block 0 rules, Gen2 policy."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest

from daemon.diagnostics import Gen2Verdict, ProbeResult, probe_card, probe_job
from daemon.errors import (
    CardRemoved,
    InvalidArgument,
    OperationNotAllowed,
    OperationTimeout,
    WriteUnconfirmed,
)
from daemon.readers.connection import Response
from daemon.readers.workers import ReaderWorker
from sim.card import SimCard
from sim.connection import SimConnection
from sim.models import ModelName
from sim.reader import SimReader
from tests.pcscd_stack import Stack

UID4 = bytes.fromhex("5C7E31A9")
UID7 = bytes.fromhex("04A23C8A5D2F80")
# A genuine NXP 1K with a 4-byte NUID: UID, BCC, SAK 08, ATQA 04 00, manufacturer data.
GENUINE_BLOCK0 = (
    UID4 + bytes((0x5C ^ 0x7E ^ 0x31 ^ 0xA9, 0x08)) + bytes.fromhex("0400C847002000000016")
)
SECRET_KEY = bytes.fromhex("3F9A0C71E25B")
TRANSPORT_TRAILER = b"\xff" * 6 + bytes.fromhex("FF078069") + b"\xff" * 6
ROUNDS = 7


def virtual_timer(reader: SimReader) -> float:
    return reader.clock.now_ms / 1000.0


def make_reader(model: ModelName, card: SimCard) -> SimReader:
    reader = SimReader(model=model)
    reader.insert(card)
    return reader


def genuine_1k() -> SimCard:
    card = SimCard.blank(uid=UID4)
    card.program(0, GENUINE_BLOCK0)
    return card


def probe(reader: SimReader, *, latency_rounds: int = ROUNDS, **options: Any) -> ProbeResult:
    with reader.connect() as connection:
        return probe_card(
            connection,
            timer=lambda: virtual_timer(reader),
            latency_rounds=latency_rounds,
            **options,
        )


def test_genuine_1k_with_4_byte_uid_passes_every_check() -> None:
    reader = make_reader("acr1252u", genuine_1k())
    result = probe(reader)
    assert result.reader == "ACS ACR1252 1S CL Reader PICC 00 00"
    assert result.dialect == "acr1252u"
    assert result.firmware == "ACR1252U_V202.2"
    assert result.atr_standard == "ISO 14443 A part 3"
    assert result.atr_card_name == "MIFARE Classic 1K"
    assert result.uid == UID4
    assert result.card_type == "MIFARE Classic 1K, single-size UID"
    assert result.block0 == GENUINE_BLOCK0
    assert result.block0_ok is True
    assert result.findings == []
    assert result.gen2 is None
    text = result.format_text()
    assert "Card type    MIFARE Classic 1K, single-size UID" in text
    assert "[ok, transport key]" in text
    assert "Findings  none" in text
    assert "Gen2/CUID    not tested" in text


def test_seven_byte_uid_card_is_read_with_its_own_block0_layout() -> None:
    reader = make_reader("acr1252u", SimCard.blank(uid=UID7))
    result = probe(reader)
    assert result.uid == UID7
    assert result.card_type == "MIFARE Classic 1K, double-size UID"
    assert result.block0 is not None
    assert result.block0[:7] == UID7
    assert result.errors == []
    assert result.finding_codes() == ["MANUFACTURER_NXP"]
    assert "04 A2 3C 8A 5D 2F 80 (7 bytes)" in result.format_text()


def test_bad_bcc_in_block0_is_reported_as_an_error() -> None:
    image = bytearray(SimCard.blank(uid=UID4, variant="gen2").memory)
    image[4] ^= 0x5A  # corrupt the BCC, as a badly written magic card has it
    reader = make_reader("acr1252u", SimCard(UID4, variant="gen2", memory=bytes(image)))
    result = probe(reader)
    assert result.block0_ok is False
    assert "BCC_MISMATCH" in [f.code for f in result.errors]
    text = result.format_text()
    assert "1 error(s)" in text
    assert "ERROR    BCC_MISMATCH: BCC is" in text


def test_atr_size_disagreeing_with_block0_sak_is_reported() -> None:
    card = SimCard.blank(uid=UID4, size="4k")
    block0 = bytearray(card.block(0))
    block0[5] = 0x08  # SAK of a 1K on a card whose reader-synthesised ATR says 4K
    card.program(0, bytes(block0))
    result = probe(make_reader("omnikey5x21", card))
    assert result.atr_card_name == "MIFARE Classic 4K"
    assert "SAK_SIZE_MISMATCH" in result.finding_codes()


class MislabellingConnection:
    """A reader that names the card wrongly in its ATR (Access-IS ATR110 says 00 03 for a 1K)."""

    ULTRALIGHT_ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")

    def __init__(self, inner: SimConnection, atr: bytes = ULTRALIGHT_ATR) -> None:
        self.inner = inner
        self._atr = atr

    @property
    def reader_name(self) -> str:
        return self.inner.reader_name

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> Response:
        return self.inner.transmit(apdu)

    def reconnect(self, reset: bool = False) -> None:
        self.inner.reconnect(reset)

    def close(self) -> None:
        self.inner.close()


def test_atr_card_name_is_checked_against_the_uid_length() -> None:
    reader = make_reader("generic", genuine_1k())
    with reader.connect() as inner:
        result = probe_card(MislabellingConnection(inner), latency_rounds=0)
    assert result.atr_card_name == "MIFARE Ultralight"
    codes = result.finding_codes()
    assert "UID_LENGTH_UNEXPECTED" in codes
    assert "ATR_NOT_CLASSIC" in codes
    assert "whose UID is 7 bytes; card answered 4" in result.format_text()


def test_a_non_storage_card_atr_is_flagged_but_the_probe_goes_on() -> None:
    iso14443_4 = bytes.fromhex("3B8180018080")  # ISO 14443-4 card, no historical payload
    reader = make_reader("omnikey5x21", genuine_1k())
    with reader.connect() as inner:
        result = probe_card(MislabellingConnection(inner, iso14443_4), latency_rounds=0)
    assert result.finding_codes() == ["ATR_NOT_STORAGE_CARD"]
    assert result.atr_standard is None
    assert result.block0 == GENUINE_BLOCK0
    assert "ATR          3B 81 80 01 80 80" in result.format_text()


@pytest.mark.parametrize(
    ("model", "firmware", "dialect"),
    [
        ("acr122u", "ACR122U207", "acr122u"),
        ("acr1252u", "ACR1252U_V202.2", "acr1252u"),
        ("omnikey5x21", None, "omnikey"),
    ],
)
def test_reader_models_dialect_and_firmware(
    model: ModelName, firmware: str | None, dialect: str
) -> None:
    reader = make_reader(model, genuine_1k())
    result = probe(reader)
    assert result.dialect == dialect
    assert result.firmware == firmware
    assert result.errors == []
    text = result.format_text()
    if firmware is None:
        assert result.firmware_note is not None
        assert "Firmware     - (HID OMNIKEY 5x21/5x22 reports firmware only" in text
    else:
        assert f"Firmware     {firmware}" in text


@pytest.mark.parametrize(("model", "per_apdu_ms"), [("acr122u", 25.0), ("acr1252u", 5.0)])
def test_latency_self_test_measures_the_reader(model: ModelName, per_apdu_ms: float) -> None:
    """On the virtual clock each GET DATA UID costs exactly the model's reader overhead (the
    reader answers it without air time): the slow ACR122U shows as five times the ACR1252U."""
    reader = make_reader(model, genuine_1k())
    result = probe(reader, latency_rounds=ROUNDS)
    lat = result.latency
    assert lat is not None
    assert lat.rounds == ROUNDS
    for value in (lat.min_ms, lat.p50_ms, lat.p99_ms, lat.max_ms):
        assert value == pytest.approx(per_apdu_ms)
    assert f"{ROUNDS} x GET DATA UID: p50 {per_apdu_ms:.2f} ms" in result.format_text()
    assert probe(reader, latency_rounds=0).latency is None


@pytest.mark.parametrize("rounds", [-1, 1001, True])
def test_bad_latency_rounds_are_refused_naming_the_field(rounds: int) -> None:
    reader = make_reader("acr1252u", genuine_1k())
    with pytest.raises(InvalidArgument, match="latency_rounds"):
        probe(reader, latency_rounds=rounds)


@pytest.mark.parametrize("model", ["acr1252u", "omnikey5x21"])
def test_gen2_card_detected_on_issuing_station_block0_unchanged(model: ModelName) -> None:
    card = SimCard.blank(uid=UID4, variant="gen2")
    before = card.block(0)
    result = probe(
        make_reader(model, card), station="issuing", check_gen2=True, allow_block0_write=True
    )
    assert result.gen2 is not None
    assert result.gen2.verdict is Gen2Verdict.GEN2
    assert card.block(0) == before
    assert "Gen2/CUID    gen2: block 0 accepted" in result.format_text()


@pytest.mark.parametrize("model", ["acr1252u", "acr122u", "omnikey5x21", "generic"])
def test_genuine_card_is_not_gen2_and_block0_stays_intact(model: ModelName) -> None:
    card = genuine_1k()
    result = probe(
        make_reader(model, card), station="issuing", check_gen2=True, allow_block0_write=True
    )
    assert result.gen2 is not None
    assert result.gen2.verdict is Gen2Verdict.NOT_WRITABLE
    assert card.block(0) == GENUINE_BLOCK0
    assert result.latency is not None  # the card answers normally after the refused write


@pytest.mark.parametrize(
    ("station", "allow", "why"),
    [
        ("pos", True, "only an issuing station"),
        ("technician", True, "only an issuing station"),
        ("issuing", False, "set allow_block0_write"),
    ],
)
def test_gen2_test_refused_without_issuing_role_and_flag(
    station: str, allow: bool, why: str
) -> None:
    card = SimCard.blank(uid=UID4, variant="gen2")
    before = card.memory
    reader = make_reader("acr1252u", card)
    with pytest.raises(OperationNotAllowed, match=why) as info:
        probe(reader, station=station, check_gen2=True, allow_block0_write=allow)
    assert info.value.reason == "OPERATION_NOT_ALLOWED"
    assert reader.apdu_count == 0  # refused before the card was touched
    assert card.memory == before
    with pytest.raises(OperationNotAllowed, match=why):
        probe_job(station=station, check_gen2=True, allow_block0_write=allow)


def test_unknown_station_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument, match="station: 'kiosk' is not one of"):
        probe(make_reader("acr1252u", genuine_1k()), station="kiosk")


def test_wrong_key_reports_block0_unreadable_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    card = genuine_1k()
    card.program(3, SECRET_KEY + bytes.fromhex("FF078069") + b"\xff" * 6)
    reader = make_reader("omnikey5x21", card)
    with caplog.at_level(1):  # everything, APDU trace lines included
        wrong = probe(reader, key=bytes.fromhex("A0A1A2A3A4A5"))
        right = probe(reader, key=SECRET_KEY)
    assert wrong.block0 is None
    assert wrong.block0_error == "not readable with the given key (CARD_AUTH_FAILED)"
    assert wrong.latency is not None  # re-selected after the failed authentication
    assert right.block0 == GENUINE_BLOCK0
    assert right.key_used == "given key"
    for shown in (right.format_text(), repr(right), wrong.format_text(), caplog.text):
        assert SECRET_KEY.hex() not in shown.lower()
        assert SECRET_KEY.hex(" ").upper() not in shown
        assert "A0 A1 A2 A3 A4 A5" not in shown


def test_card_pulled_during_probe_is_a_typed_error() -> None:
    reader = make_reader("acr1252u", genuine_1k())
    reader.faults.remove_before(3)
    with pytest.raises(CardRemoved, match="ACR1252"):
        probe(reader)


def _apdu_number_of_block0_write(model: ModelName) -> int:
    """Where the Gen2 write falls in the probe's APDU sequence, found on a twin reader."""
    twin = make_reader(model, SimCard.blank(uid=UID4, variant="gen2"))
    probe(twin, station="issuing", check_gen2=True, allow_block0_write=True, latency_rounds=0)
    sent = [apdu for apdu, _ in twin.history]
    assert twin.card is not None
    return sent.index(bytes.fromhex("FFD6000010") + twin.card.block(0)) + 1


def test_card_torn_away_during_the_block0_write_is_write_unconfirmed() -> None:
    n = _apdu_number_of_block0_write("acr1252u")
    card = SimCard.blank(uid=UID4, variant="gen2")
    reader = make_reader("acr1252u", card)
    reader.faults.tear(n, outcome="old")
    with pytest.raises(WriteUnconfirmed, match=r"block-0 write test lost.*probe it to verify"):
        probe(reader, station="issuing", check_gen2=True, allow_block0_write=True)


def test_probe_runs_as_a_reader_worker_job() -> None:
    reader = make_reader("acr1252u", genuine_1k())
    with ReaderWorker(reader.name, reader.connect) as worker:
        job = probe_job(latency_rounds=3, timer=lambda: virtual_timer(reader))
        result = worker.submit_within(job, 30.0).result(10.0)
    assert result.uid == UID4
    assert result.latency is not None
    assert result.latency.rounds == 3


def test_acs_reader_behind_a_generic_name_is_recognised_by_its_firmware() -> None:
    reader = SimReader("Virtual PCD 00 00", model="acr122u")
    reader.insert(genuine_1k())
    result = probe(reader)
    assert result.dialect == "acr122u"
    assert result.firmware == "ACR122U207"
    plain = probe(make_reader("generic", genuine_1k()))
    assert plain.dialect == "generic"
    assert plain.firmware is None
    assert plain.firmware_note == "the reader did not answer the ACS firmware query"


def test_probe_on_the_simulator_and_through_real_pcscd(stack: Stack) -> None:
    """Same probe, both paths: names from pcscd, ATR synthesised by vpcd's card, Gen2 by write."""
    expected = {0: ("acr1252u", "ACR1252U_V202.2"), 1: ("omnikey", None)}
    for i, (dialect, firmware) in expected.items():
        card = SimCard.blank(uid=UID4, variant="gen2")
        before = card.block(0)
        stack.insert(i, card)
        with closing(stack.backend.connect(stack.name(i))) as connection:
            result = probe_card(
                connection,
                station="issuing",
                check_gen2=True,
                allow_block0_write=True,
                latency_rounds=3,
            )
        assert result.reader == stack.name(i)
        assert (result.dialect, result.firmware) == (dialect, firmware)
        assert result.atr_card_name == "MIFARE Classic 1K"
        assert result.uid == UID4
        assert result.gen2 is not None
        assert result.gen2.verdict is Gen2Verdict.GEN2
        assert card.block(0) == before
        assert result.latency is not None
        assert result.latency.p50_ms > 0
        stack.remove(i)


def test_gen2_test_is_not_run_when_block0_is_not_readable() -> None:
    card = SimCard.blank(uid=UID4, variant="gen2")
    before = card.memory
    result = probe(
        make_reader("acr1252u", card),
        station="issuing",
        check_gen2=True,
        allow_block0_write=True,
        key=SECRET_KEY,
    )
    assert result.gen2 is not None
    assert result.gen2.verdict is Gen2Verdict.NOT_RUN
    assert card.memory == before


def test_probe_job_stops_between_steps_when_its_deadline_runs_out() -> None:
    """The worker's clock is the reader's virtual clock: 20 UID round trips at 5 ms each do not
    fit into 40 ms, so the self-test stops with a typed error instead of overrunning."""
    reader = make_reader("acr1252u", genuine_1k())

    def now() -> float:
        return virtual_timer(reader)

    with ReaderWorker(reader.name, reader.connect, clock=now) as worker:
        future = worker.submit(probe_job(latency_rounds=20, timer=now), now() + 0.040)
        with pytest.raises(OperationTimeout, match="latency self-test ran past its deadline"):
            future.result(10.0)
