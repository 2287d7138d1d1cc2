"""Personalisation station: issue, erase, replace, batch issue from CSV."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import (
    CardHotlisted,
    InvalidArgument,
    KeystoreError,
    MemberNotFound,
    UnknownCardFormat,
    WriteUnconfirmed,
)
from daemon.journal import RequestState
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.batch import load_batch, main, run_batch
from daemon.membercard.issuing import IssueSpec, Personaliser
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import Debit, EraseCard, IssueCard, ReplaceCard
from daemon.mifare.trailer import transport_trailer
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from tests.membercard.terminal import PROGRAMME, Terminal, issue, terminal, uid_for

UID = uid_for(100)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    with terminal(Keystore.generate(), tmp_path / "journal.db") as t:
        yield t


def _trailer_access(card: SimCard, sector: int) -> str:
    block = sector * 4 + 3
    return card.memory[block * 16 + 6 : block * 16 + 10].hex().upper()


def test_issue_writes_keys_access_bits_record_purse_and_mad(term: Terminal) -> None:
    card = issue(term, UID, member_id="123", balance=8_800, points=5)
    assert [_trailer_access(card, s) for s in range(5)] == [
        "787788C1", "7F078869", "7F078869", "48778B01", "FF078069",
    ]  # fmt: skip
    assert card.memory[:16] == SimCard.blank(uid=UID).memory[:16]  # block 0 never touched
    key_a = term.keystore.card_key(UID, sector_group=1, key_type="A").reveal()
    assert card.memory[7 * 16 : 7 * 16 + 6] == key_a
    with term.storage() as sc:
        info = term.service.read(sc)
    assert (info.member_id, info.balance, info.points, info.counter) == ("123", 8_800, 5, 1)
    assert term.journal.bound_uid("123") == UID.hex().upper()
    assert term.journal.audit_events("issue")


def test_issue_is_idempotent_and_never_overwrites_a_member_card(term: Terminal) -> None:
    card = issue(term, UID, member_id="1", request_id="iss-1")
    spec = IssueSpec("1", 2, dt.date(2028, 12, 31), 100_000, 50)
    with term.storage() as sc:
        again = term.issuer.issue(sc, IssueCard(spec, request_id="iss-1"))
    assert again.replayed
    before = card.memory
    with pytest.raises(InvalidArgument, match="already holds member 1"), term.storage() as sc:
        term.issuer.issue(sc, IssueCard(IssueSpec("2"), request_id="iss-2"))
    assert card.memory == before
    term.reader.remove()
    term.reader.insert(SimCard.blank(uid=uid_for(99)))
    with pytest.raises(InvalidArgument, match="already has card"), term.storage() as sc:
        term.issuer.issue(sc, IssueCard(IssueSpec("1"), request_id="iss-3"))


def test_foreign_card_is_not_written(term: Terminal) -> None:
    issue(term, UID)  # a card of another key system looks like this to a second keystore
    card = term.reader.card
    assert card is not None
    before = card.memory
    other = Personaliser(Keystore.generate(), term.journal, PROGRAMME)
    with (
        pytest.raises(UnknownCardFormat, match="sector 2 opens with neither"),
        term.storage() as sc,
    ):
        other.issue(sc, IssueCard(IssueSpec("9"), request_id="foreign"))
    assert card.memory == before


def test_configured_factory_key(term: Terminal) -> None:
    factory = bytes.fromhex("0123456789AB")
    card = SimCard.blank(uid=UID)
    mem = bytearray(card.memory)
    for sector in range(16):
        block = sector * 4 + 3
        mem[block * 16 : block * 16 + 6] = factory
    card = SimCard(UID, memory=bytes(mem))
    term.reader.insert(card)
    issuer = Personaliser(term.keystore, term.journal, PROGRAMME, factory_key=factory)
    with term.storage() as sc:
        issuer.issue(sc, IssueCard(IssueSpec("55", balance=1), request_id="f"))
    with term.storage() as sc:
        assert term.service.read(sc).balance == 1


def test_bad_issue_specs(term: Terminal) -> None:
    term.reader.insert(SimCard.blank(uid=UID))
    for spec, field in [
        (IssueSpec("12a"), "member_id"),
        (IssueSpec("1" * 17), "member_id"),
        (IssueSpec("1", tier=9), "tier"),
        (IssueSpec("1", balance=-1), "balance"),
        (IssueSpec("1", balance=PROGRAMME.balance_cap + 1), "balance"),
    ]:
        with pytest.raises((InvalidArgument, ValueError), match=field), term.storage() as sc:
            term.issuer.issue(sc, IssueCard(spec, request_id="bad"))


def test_dictionary_key_refuses_issue(term: Terminal) -> None:
    probe = term.keystore.card_key(UID, sector_group=1, key_type="A").reveal()
    masters = {p: {1: term.keystore.master(p, 1).reveal()} for p in KeyPurpose}
    weak = Keystore(masters, dict.fromkeys(KeyPurpose, 1), weak_keys={probe})
    card = SimCard.blank(uid=UID)
    term.reader.insert(card)
    with pytest.raises(KeystoreError, match="well-known"), term.storage() as sc:
        Personaliser(weak, term.journal, PROGRAMME).issue(
            sc, IssueCard(IssueSpec("1"), request_id="w")
        )
    assert card.memory == SimCard.blank(uid=UID).memory


def test_erase_back_to_transport_and_reissue(term: Terminal) -> None:
    card = issue(term, UID, member_id="77", balance=500, points=0)
    with pytest.raises(InvalidArgument, match="500 fen"), term.storage() as sc:
        term.issuer.erase(sc, EraseCard(request_id="e0"))
    with term.storage() as sc:
        term.issuer.erase(sc, EraseCard(request_id="e1", force=True))
    for sector in range(16):
        block = sector * 4 + 3
        assert card.memory[block * 16 : block * 16 + 16] == transport_trailer()
    assert card.memory[16:48] == bytes(32)
    assert card.memory[:16] == SimCard.blank(uid=UID).memory[:16]
    assert term.journal.bound_uid("77") is None
    assert term.journal.audit_events("erase")[0]["detail"]["destroyed"]["balance"] == 500
    with pytest.raises(UnknownCardFormat), term.storage() as sc:
        term.service.read(sc)
    with term.storage() as sc:  # same card, new member: counter restarts without an alarm
        term.issuer.issue(sc, IssueCard(IssueSpec("78", balance=1), request_id="again"))
    with term.storage() as sc:
        assert term.service.read(sc).member_id == "78"


def test_replace_moves_balance_and_blocks_the_old_card(term: Terminal) -> None:
    old = issue(term, UID, member_id="31", balance=10_000, points=12)
    with term.storage() as sc:
        term.service.debit(sc, Debit(request_id="s1", amount=2_500))
    term.reader.remove()
    new = SimCard.blank(uid=uid_for(101))
    term.reader.insert(new)
    with term.storage() as sc:
        res = replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="rep-1"))
        again = replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="rep-1"))
        info = term.service.read(sc)
    assert again.replayed
    assert (info.member_id, info.balance, info.points) == ("31", 7_500, 12)
    assert term.journal.bound_uid("31") == res.uid
    term.reader.remove()
    term.reader.insert(old)
    with pytest.raises(CardHotlisted, match="replaced"), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="s2", amount=1))
    with pytest.raises(MemberNotFound, match="04FFFFFF"), term.storage() as sc:
        replace_card(term.issuer, sc, ReplaceCard(old_uid="04ffffff", request_id="rep-2"))


def test_replace_refuses_while_the_old_card_has_an_unknown_outcome(term: Terminal) -> None:
    issue(term, UID, member_id="32")
    term.reader.faults.arm()
    term.reader.faults.tear(10, "new")
    with pytest.raises(WriteUnconfirmed), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="torn", amount=5))
    term.reader.insert(SimCard.blank(uid=uid_for(102)))
    with (
        pytest.raises(InvalidArgument, match="unresolved transactions torn"),
        term.storage() as sc,
    ):
        replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="rep"))
    assert term.journal.hotlist_reason(UID.hex().upper()) is None


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_batch_csv_with_bad_rows_names_each_problem(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", [
        "member_id,tier,valid_until,balance,points",
        "1001,0,2028-12-31,0,0",
        "10x2,0,,0,0",
        "1003,9,,0,0",
        "1004,0,2028-13-01,0,0",
        "1005,0,,-5,0",
        "1001,0,,0,0",
        "1006,0,,0",
    ])  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        load_batch(path, PROGRAMME)
    text = str(info.value)
    for part in ("line 3 member_id", "line 5 valid_until", "line 6 balance",
                 "line 7 member_id: 1001 repeats line 2", "line 8: 4 fields"):  # fmt: skip
        assert part in text
    # the field is named once and the tiers by their configured names
    assert "line 4 tier: 9 is not in the tier table (0 普通会员, 1 银卡" in text
    assert "tier: tier" not in text
    with pytest.raises(InvalidArgument, match="unknown columns name"):
        load_batch(_csv(tmp_path / "b.csv", ["member_id,name", "1,x"]), PROGRAMME)
    with pytest.raises(InvalidArgument, match="member_id column"):
        load_batch(_csv(tmp_path / "c.csv", ["id", "1"]), PROGRAMME)


def test_batch_is_restartable_without_issuing_twice(term: Terminal, tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv", ["member_id,balance"] + [f"{5000 + i},{i * 100}" for i in range(5)]
    )
    rows = load_batch(path, PROGRAMME)
    results = tmp_path / "out.csv"
    cards = [SimCard.blank(uid=uid_for(200 + i)) for i in range(6)]
    queue = list(cards[:2])
    progress: list[tuple[int, str]] = []

    def next_card() -> StorageCard | None:
        if not queue:
            return None  # operator stops after two cards
        if term.reader.card is not None:
            term.reader.remove()
        term.reader.insert(queue.pop(0))
        return term.storage()

    first = run_batch(term.issuer, rows, next_card, results, batch_id="b1",
                      progress=lambda d, n, m, s: progress.append((d, s)))  # fmt: skip
    assert (first.issued, first.interrupted) == (2, True)
    queue.extend(cards[2:])
    second = run_batch(term.issuer, rows, next_card, results, batch_id="b1")
    assert (second.issued, second.skipped, second.interrupted) == (3, 2, False)
    with open(results, newline="", encoding="utf-8") as fh:
        out = list(csv.DictReader(fh))
    assert [r["member_id"] for r in out if r["status"] == "issued"] == [
        str(5000 + i) for i in range(5)
    ]
    assert len({r["uid"] for r in out}) == 5
    assert cards[5].memory == SimCard.blank(uid=uid_for(205)).memory  # spare card untouched
    assert progress[0] == (1, "issued")


def test_batch_on_a_real_reader_takes_the_daemon_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The product's batch CLI reads tiers, journal and keys from the config; a config it
    cannot read stops it before any card (exit 2, the file named). Its simulated twin is
    ``python -m demo.batch`` (tests/demo/test_batch.py)."""
    path = _csv(tmp_path / "in.csv", ["member_id", "1"])
    missing = tmp_path / "nowhere.toml"
    code = main(["--config", str(missing), "--reader", "ACS ACR1252 PICC", "--csv", str(path),
                 "--results", str(tmp_path / "r.csv")])  # fmt: skip
    assert code == 2
    assert f"{missing}: cannot read the config file" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def _rewrite_header(term: Terminal, card: SimCard, magic: int, version: int) -> None:
    from daemon.membercard.layout import HEADER_BLOCK
    from daemon.readers.apdu import KeyType

    header = bytearray(card.memory[HEADER_BLOCK * 16 : HEADER_BLOCK * 16 + 16])
    header[0:2] = bytes((magic, version))
    with term.storage() as sc:
        key = term.keystore.card_key(UID, sector_group=1, key_type="B").reveal()
        sc.load_key(key, 0, KeyType.B)
        sc.authenticate(HEADER_BLOCK, KeyType.B, 0)
        sc.write_block(HEADER_BLOCK, bytes(header))


@pytest.mark.parametrize(
    ("magic", "version", "match"), [(0xCD, 3, "format version 3"), (0x42, 1, "magic 42")]
)
def test_cards_not_understood_are_neither_issued_over_nor_erased(
    term: Terminal, magic: int, version: int, match: str
) -> None:
    card = issue(term, UID, member_id="61", balance=0, points=0)
    _rewrite_header(term, card, magic, version)
    before = card.memory
    with pytest.raises(UnknownCardFormat, match=match), term.storage() as sc:
        term.issuer.issue(sc, IssueCard(IssueSpec("62"), request_id="over"))
    with pytest.raises(UnknownCardFormat, match=match), term.storage() as sc:
        term.issuer.erase(sc, EraseCard(request_id="wipe"))
    assert card.memory == before


def test_batch_csv_saved_by_excel_with_a_bom_and_more_bad_values(tmp_path: Path) -> None:
    """A UTF-8 CSV from Excel starts with a byte order mark: still a member_id header. Amounts
    that are fractions, too large or text are named by line and column."""
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffmember_id,balance,points\r\n1001,100,0\r\n1002,1.5,0\r\n1003,0,2147483648\r\n"
        "1004,abc,0\r\n,0,0\r\n1005,999999999,0\r\n".encode()
    )
    with pytest.raises(InvalidArgument) as info:
        load_batch(path, PROGRAMME)
    text = str(info.value)
    for part in ("line 3 balance", "line 4 points", "line 5 balance", "line 6 member_id",
                 "line 7 balance"):  # fmt: skip
        assert part in text
    assert "line 2" not in text
    path.write_bytes("\ufeffmember_id,balance\r\n1001,100\r\n".encode())
    assert [(r.line, r.spec.member_id, r.spec.balance) for r in load_batch(path, PROGRAMME)] == [
        (2, "1001", 100)
    ]


def test_a_card_is_replaced_once(term: Terminal) -> None:
    """A second replace of the same lost card (a new request_id, another blank card) would put
    the member's balance on two cards: refused, naming the card that already replaced it, and
    the second blank card is not written."""
    issue(term, UID, member_id="33", balance=10_000)
    term.reader.remove()
    term.reader.insert(SimCard.blank(uid=uid_for(103)))
    with term.storage() as sc:
        first = replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="rep-a"))
    term.reader.remove()
    spare = SimCard.blank(uid=uid_for(104))
    term.reader.insert(spare)
    with (
        pytest.raises(InvalidArgument, match=f"already has card {first.uid}; card") as info,
        term.storage() as sc,
    ):
        replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="rep-b"))
    assert "already replaced" in info.value.message
    assert spare.memory == SimCard.blank(uid=uid_for(104)).memory
    rec = term.journal.get("rep-b")
    assert rec is not None
    assert rec.state is not RequestState.COMMITTED
    assert not term.journal.audit_events("issue", uid=uid_for(104).hex().upper())
