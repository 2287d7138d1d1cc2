"""Member card operations on the simulator: what a cashier and a customer would notice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import (
    AmountOutOfRange,
    BalanceChanged,
    CardExpired,
    CardHotlisted,
    CardMismatch,
    CounterRollback,
    InsufficientBalance,
    InvalidAmount,
    MalformedBlock,
    RequestIdReused,
    UnknownCardFormat,
    WriteUnconfirmed,
)
from daemon.journal import Journal, RequestState
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.layout import APP_AID, HEADER_BLOCK, KEY_GROUP_APP, SLOT_STATE_BLOCKS
from daemon.membercard.requests import AdjustPoints, Credit, Debit
from daemon.membercard.service import MemberCardService, OpResult
from daemon.mifare.mad import MAD_KEY_A, Mad1
from daemon.mifare.value import decode_value_block
from daemon.readers.apdu import KeyType
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from sim.reader import SimReader
from tests.membercard.terminal import PROGRAMME, TODAY, Terminal, issue, terminal, uid_for

UID = uid_for(42)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    with terminal(Keystore.generate(), tmp_path / "journal.db") as t:
        yield t


def _raw_write(t: Terminal, block: int, data: bytes, key_type: str = "B") -> None:
    """Write with the card's own keys, bypassing the application (tests of bad card data)."""
    with t.storage() as sc:
        key = t.keystore.card_key(sc.uid(), sector_group=KEY_GROUP_APP, key_type=key_type)
        kt = KeyType.B if key_type == "B" else KeyType.A
        sc.load_key(key.reveal(), 0, kt)
        sc.authenticate(block, kt, 0)
        sc.write_block(block, data)


def test_read_shows_member_tier_validity_balance_points(term: Terminal) -> None:
    issue(term, UID, member_id="0088001234", balance=100_000, points=50, tier=2)
    with term.storage() as sc:
        info = term.service.read(sc)
    assert (info.member_id, info.tier_name, info.balance, info.points) == (
        "0088001234", "金卡", 100_000, 50,
    )  # fmt: skip
    assert info.uid == UID.hex().upper()
    assert info.discount == PROGRAMME.tiers[2].discount  # the tier table's rate, for the POS
    assert info.counter == 1
    assert info.status == "active"


def test_debit_earns_points_by_tier_and_tools_see_the_balance(term: Terminal) -> None:
    card = issue(term, UID, balance=100_000, points=0, tier=2)  # 金卡: 3 points per 100 yuan
    with term.storage() as sc:
        paid = term.service.debit(sc, Debit(request_id="sale-1", amount=45_678))
    assert (paid.balance, paid.points, paid.points_delta) == (54_322, 12, 12)
    assert not paid.mirror_pending
    for block in (12, 13):  # the purse value blocks mirror the balance for any MIFARE tool
        assert decode_value_block(card.memory[block * 16 : block * 16 + 16]).value == 54_322
    with term.storage() as sc:
        no_points = term.service.debit(
            sc, Debit(request_id="sale-2", amount=10_000, earn_points=False)
        )
        explicit = term.service.debit(sc, Debit(request_id="sale-3", amount=100, points=7))
    assert no_points.points_delta == 0
    assert explicit.points_delta == 7
    assert explicit.points == 19


def test_topup_bonus_steps_and_pos_override(term: Terminal) -> None:
    issue(term, UID, balance=0, points=0)
    with term.storage() as sc:
        a = term.service.credit(sc, Credit(request_id="t1", amount=100_000))  # 存1000送50
        b = term.service.credit(sc, Credit(request_id="t2", amount=99_999))  # below the first step
        c = term.service.credit(sc, Credit(request_id="t3", amount=100_000, bonus=0))
    assert (a.bonus, a.balance) == (5_000, 105_000)
    assert b.bonus == 0
    assert (c.bonus, c.balance) == (0, 304_999)


def test_points_redeem_and_adjust(term: Terminal) -> None:
    issue(term, UID, points=100)
    with term.storage() as sc:
        assert term.service.adjust_points(sc, AdjustPoints(request_id="r1", delta=-60)).points == 40
        assert term.service.adjust_points(sc, AdjustPoints(request_id="r2", delta=15)).points == 55
        with pytest.raises(InsufficientBalance, match="55 points"):
            term.service.adjust_points(sc, AdjustPoints(request_id="r3", delta=-56))


def test_insufficient_funds_and_cap_leave_the_card_untouched(term: Terminal) -> None:
    card = issue(term, UID, balance=1_000)
    before = card.memory
    with term.storage() as sc:
        with pytest.raises(InsufficientBalance, match="1000 fen < amount 1001"):
            term.service.debit(sc, Debit(request_id="x1", amount=1_001))
        with pytest.raises(AmountOutOfRange, match="cap"):
            term.service.credit(sc, Credit(request_id="x2", amount=PROGRAMME.balance_cap))
    assert card.memory == before
    rec = term.journal.get("x1")
    assert rec is not None
    assert rec.state is RequestState.ABORTED


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100", 2**31, None])
def test_bad_amounts_are_refused_before_the_card_is_touched(term: Terminal, amount: object) -> None:
    card = issue(term, UID)
    before, count = card.memory, term.reader.apdu_count
    with pytest.raises(InvalidAmount, match="amount"), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="bad", amount=amount))  # type: ignore[arg-type]
    assert card.memory == before
    assert term.reader.apdu_count == count
    assert term.journal.get("bad") is None


def test_bad_points_delta(term: Terminal) -> None:
    issue(term, UID)
    for delta in (0, 2**31, 0.5):
        with pytest.raises(InvalidAmount, match="delta"), term.storage() as sc:
            term.service.adjust_points(sc, AdjustPoints(request_id="p", delta=delta))  # type: ignore[arg-type]


def test_expected_uid_and_balance(term: Terminal) -> None:
    issue(term, UID, balance=5_000)
    with term.storage() as sc:
        with pytest.raises(CardMismatch, match="04FFFFFF"):
            term.service.debit(sc, Debit(request_id="a", amount=1, expected_uid="04ffffff"))
        with pytest.raises(BalanceChanged, match="balance is 5000"):
            term.service.debit(sc, Debit(request_id="b", amount=1, expected_balance=4_000))
        ok = term.service.debit(
            sc, Debit(request_id="c", amount=1, expected_uid=UID.hex(), expected_balance=5_000)
        )
    assert ok.balance == 4_999


def test_expired_card_reads_but_cannot_pay(term: Terminal) -> None:
    import datetime as dt

    issue(term, UID, valid_until=dt.date(2026, 11, 22))
    with term.storage() as sc:
        assert term.service.read(sc).status == "expired"
        with pytest.raises(CardExpired, match="2026-11-22"):
            term.service.debit(sc, Debit(request_id="e", amount=1))
    assert TODAY.isoformat() == "2026-11-23"


def test_hotlisted_card_is_refused_at_the_uid(term: Terminal) -> None:
    issue(term, UID)
    term.journal.hotlist(UID.hex().upper(), "reported stolen")
    n = term.reader.apdu_count
    with pytest.raises(CardHotlisted, match="reported stolen"), term.storage() as sc:
        term.service.read(sc)
    assert term.reader.apdu_count - n == 1  # GET UID only


def test_retry_replays_and_reuse_is_refused(term: Terminal) -> None:
    issue(term, UID, balance=10_000)
    with term.storage() as sc:
        first = term.service.debit(sc, Debit(request_id="pos-7", amount=2_500))
        again = term.service.debit(sc, Debit(request_id="pos-7", amount=2_500))
        with pytest.raises(RequestIdReused, match="pos-7"):
            term.service.debit(sc, Debit(request_id="pos-7", amount=2_501))
        assert term.service.read(sc).balance == 7_500
    assert again.replayed
    assert again.balance == first.balance


def test_concurrent_duplicates_execute_once(tmp_path: Path) -> None:
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "j.db") as t:
        card = issue(t, UID, balance=10_000)
    readers = [SimReader(latency="none"), SimReader(latency="none")]
    copies = [SimCard(card.uid, memory=card.memory) for _ in readers]
    for r, c in zip(readers, copies, strict=True):
        r.insert(c)
    results: list[OpResult | CounterRollback] = []
    with Journal(tmp_path / "j.db") as journal:
        service = MemberCardService(ks, journal, PROGRAMME, today=lambda: TODAY)

        def pay(reader: SimReader) -> None:
            with StorageCard(reader.connect()) as sc:
                try:
                    results.append(service.debit(sc, Debit(request_id="dup", amount=1_000)))
                except CounterRollback as exc:
                    results.append(exc)

        threads = [threading.Thread(target=pay, args=(r,)) for r in readers]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    # the duplicate waits for the first, then reads its own copy, which still shows the old
    # counter: even a replay reads the card (a request is bound to its card), so the copy is
    # caught as the clone it is instead of being told the payment went through
    assert sorted(type(r).__name__ for r in results) == ["CounterRollback", "OpResult"]
    assert [r.replayed for r in results if isinstance(r, OpResult)] == [False]
    balances = sorted(
        decode_value_block(c.memory[12 * 16 : 13 * 16]).value for c in copies
    )  # one card paid, the other untouched
    assert balances == [9_000, 10_000]


def test_unconfirmed_write_is_resolved_by_the_next_read(term: Terminal) -> None:
    issue(term, UID, balance=10_000)
    term.reader.faults.arm()
    term.reader.faults.lose_response(11)  # the MAC block write: executed, answer lost
    with pytest.raises(WriteUnconfirmed), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="lost", amount=300))
    rec = term.journal.get("lost")
    assert rec is not None
    assert rec.state is RequestState.PENDING
    with term.storage() as sc:
        info = term.service.read(sc)
        assert info.resolved == ("lost",)
        assert info.repaired  # the purse mirror is finished from the card alone
        retry = term.service.debit(sc, Debit(request_id="lost", amount=300))
    assert info.balance == 9_700
    assert retry.replayed
    lost = term.journal.get("lost")
    assert lost is not None
    assert lost.state is RequestState.COMMITTED


def test_pending_request_on_another_card(term: Terminal) -> None:
    card = issue(term, UID)
    term.reader.faults.arm()
    term.reader.faults.tear(10, "old")
    with pytest.raises(WriteUnconfirmed), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="torn", amount=1))
    term.reader.remove()
    issue(term, uid_for(43), member_id="77")  # another member's card
    with pytest.raises(CardMismatch, match="present that card") as info, term.storage() as sc:
        term.service.debit(sc, Debit(request_id="torn", amount=1))
    assert card.uid.hex().upper() in info.value.message  # names the card to bring back


def test_pending_the_card_can_no_longer_settle_is_left_for_manual_review(tmp_path: Path) -> None:
    """Torn at terminal A, then paid three times at terminal B: the card's two records are
    both B's, so nothing on it says whether A's write ever landed. A keeps the request
    PENDING, audits it, lists it for an alert, and refuses a retry instead of guessing."""
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "a.db") as a, terminal(ks, tmp_path / "b.db") as b:
        card = issue(a, UID, balance=10_000)
        a.reader.faults.arm()
        a.reader.faults.tear(9, "old")  # the new record's state block: nothing written
        with pytest.raises(WriteUnconfirmed), a.storage() as sc:
            a.service.debit(sc, Debit(request_id="torn", amount=500))
        a.reader.faults.clear()
        b.reader.insert(card)
        for i in range(3):
            with b.storage() as sc:
                b.service.debit(sc, Debit(request_id=f"b{i}", amount=100))
        b.reader.remove()
        a.reader.insert(card)
        with a.storage() as sc:
            info = a.service.read(sc)
        assert (info.balance, info.counter, info.resolved) == (9_700, 4, ())
        rec = a.journal.get("torn")
        assert rec is not None
        assert rec.state is RequestState.PENDING
        assert [e["request_id"] for e in a.journal.audit_events("pending_undetermined")] == ["torn"]
        assert [r.request_id for r in a.journal.pending()] == ["torn"]
        with pytest.raises(WriteUnconfirmed, match="manual review"), a.storage() as sc:
            a.service.debit(sc, Debit(request_id="torn", amount=500))
        with a.storage() as sc:
            assert a.service.read(sc).balance == 9_700  # the retry did not pay


def test_blank_and_foreign_cards_are_not_member_cards(term: Terminal) -> None:
    for card in (SimCard.blank(uid=UID), SimCard.blank(uid=uid_for(5))):
        term.reader.insert(card)
        before = card.memory
        with (
            pytest.raises(UnknownCardFormat, match="does not open with our key"),
            term.storage() as sc,
        ):
            term.service.debit(sc, Debit(request_id=f"f{card.uid.hex()}", amount=1))
        assert card.memory == before
        term.reader.remove()


def test_other_format_version_is_refused_and_not_written(term: Terminal) -> None:
    card = issue(term, UID)
    header = bytearray(card.memory[HEADER_BLOCK * 16 : HEADER_BLOCK * 16 + 16])
    header[1] = 3
    _raw_write(term, HEADER_BLOCK, bytes(header))
    before = card.memory
    with pytest.raises(UnknownCardFormat, match="format version 3"), term.storage() as sc:
        term.service.credit(sc, Credit(request_id="v2", amount=100))
    assert card.memory == before


def test_malformed_card_data(term: Terminal) -> None:
    card = issue(term, UID)
    good = card.memory[HEADER_BLOCK * 16 : HEADER_BLOCK * 16 + 16]
    header = bytearray(good)
    header[2:10] = b"\xab" * 8  # member ID is not BCD
    _raw_write(term, HEADER_BLOCK, bytes(header))
    with pytest.raises(MalformedBlock, match="member_id"), term.storage() as sc:
        term.service.read(sc)
    _raw_write(term, HEADER_BLOCK, good)
    _raw_write(term, SLOT_STATE_BLOCKS[0], b"\x5a" * 16, "A")  # the only record: garbage
    with pytest.raises(UnknownCardFormat, match="no valid record"), term.storage() as sc:
        term.service.read(sc)


def test_tools_see_our_application_in_the_mad(term: Terminal) -> None:
    issue(term, UID)
    with term.storage() as sc:
        sc.load_key(MAD_KEY_A, 0, KeyType.A)  # the public MAD key: any tool can do this
        sc.authenticate(1, KeyType.A, 0)
        mad = Mad1.from_bytes(b"".join(sc.read_blocks(1, 2)))
        trailer = sc.read_block(3)
    assert [mad.aid_for_sector(s) for s in (1, 2, 3, 4)] == [APP_AID, APP_AID, APP_AID, 0]
    assert trailer[6:10].hex().upper() == "787788C1"


def test_key_and_mac_rotation(tmp_path: Path) -> None:
    old = Keystore.generate()
    with terminal(old, tmp_path / "a.db") as t:
        card = issue(t, UID, balance=1_000)
    masters = {p: {1: old.master(p, 1).reveal(), 2: bytes(range(32))} for p in KeyPurpose}
    new = Keystore(masters, dict.fromkeys(KeyPurpose, 2))  # v1 kept for cards not re-keyed
    with terminal(new, tmp_path / "b.db") as t:
        t.reader.insert(card)
        with t.storage() as sc:
            paid = t.service.debit(sc, Debit(request_id="rot", amount=1))
    assert paid.balance == 999
    mac_block = card.memory[9 * 16 : 10 * 16]  # counter 2 lives in slot 1
    assert mac_block[0] == 2  # written under the new MAC key version


def test_no_key_bytes_in_logs_or_audit(term: Terminal, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)
    card = issue(term, UID)
    term.reader.faults.arm()
    term.reader.faults.tear(9, "garbage")
    with pytest.raises(WriteUnconfirmed), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="t", amount=1))
    term.reader.insert(card)
    with term.storage() as sc:
        term.service.read(sc)
    secrets = [
        term.keystore.card_key(UID, sector_group=g, key_type=k).reveal().hex()
        for g in (0, 1)
        for k in "AB"
    ] + [term.keystore.master(p, 1).reveal().hex() for p in KeyPurpose]
    audit = str(term.journal.audit_events())
    for secret in secrets:
        assert secret not in caplog.text.lower()
        assert secret.upper() not in caplog.text
        assert secret not in audit.lower()
    uses = term.journal.audit_events("key_use")
    assert uses
    assert uses[-1]["detail"]["uses"][0] == {"purpose": "card_a", "version": 1, "group": 1}
    assert logging.getLogger("daemon.membercard.service").name.endswith("service")


@pytest.mark.parametrize("model", ["acr122u", "omnikey5x21", "generic"])
def test_every_reader_model_runs_the_protocol(tmp_path: Path, model: str) -> None:
    """Single-block readers and readers without ACS value commands (purse written with B)."""
    with terminal(Keystore.generate(), tmp_path / "j.db", model=model) as t:
        card = issue(t, UID, balance=10_000, points=0)
        with t.storage() as sc:
            t.service.debit(sc, Debit(request_id="d", amount=1_234))
            t.service.credit(sc, Credit(request_id="c", amount=100_000))
            info = t.service.read(sc)
        assert (info.balance, info.points) == (10_000 - 1_234 + 105_000, 0)
        assert decode_value_block(card.memory[13 * 16 : 14 * 16]).value == info.balance
        t.reader.faults.arm()
        t.reader.faults.tear(t.reader.faults.count + 13, "garbage")  # somewhere in the purse
        with pytest.raises(WriteUnconfirmed), t.storage() as sc:
            t.service.debit(sc, Debit(request_id="d2", amount=1))
        t.reader.insert(card)
        with t.storage() as sc:
            assert t.service.read(sc).balance in (info.balance, info.balance - 1)


def test_single_key_slot_reader_reloads_between_key_types(tmp_path: Path) -> None:
    """A reader with one volatile key slot: key B replaces key A and A is loaded again."""
    import dataclasses

    from daemon.readers.dialects import GENERIC

    one_slot = dataclasses.replace(GENERIC, name="one-slot", key_slots=(0,))
    with terminal(Keystore.generate(), tmp_path / "j.db", model="generic") as t:
        card = issue(t, UID, balance=1_000)
        for rid in ("c1", "c2"):
            with StorageCard(t.reader.connect(), one_slot) as sc:
                t.service.credit(sc, Credit(request_id=rid, amount=100))
        with StorageCard(t.reader.connect(), one_slot) as sc:
            assert t.service.read(sc).balance == 1_200
        assert decode_value_block(card.memory[12 * 16 : 13 * 16]).value == 1_200
