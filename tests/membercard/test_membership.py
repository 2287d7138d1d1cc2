"""Tier changes and renewals on the card (issue 14, item 5): a record write with its own
request_id, on both stack paths; the tier rules from config; the v1 -> v2 migration and what
a terminal that reads v1 only does with a v2 card (refuses, writing nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import parse_config
from daemon.errors import (
    ConfigError,
    InvalidArgument,
    MacInvalid,
    RequestIdReused,
    UnknownCardFormat,
)
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard import layout
from daemon.membercard.jobs import card_job
from daemon.membercard.layout import (
    FORMAT_V2,
    HEADER_BLOCK,
    KEY_GROUP_APP,
    SLOT_HEADER_BLOCKS,
    Header,
)
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import (
    AdjustPoints,
    ChangeTier,
    Debit,
    ReadCard,
    RenewCard,
    ReplaceCard,
)
from daemon.membercard.rules import Programme, Tier
from daemon.membercard.service import MembershipResult
from daemon.readers.apdu import KeyType
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from tests.membercard.terminal import TODAY, issue, terminal, uid_for
from tests.membercard.till import Till
from tests.test_config import EXAMPLE_TEXT

UID = uid_for(5150)
DOC = (Path(__file__).resolve().parents[2] / "docs" / "card-layout.md").read_text("utf-8")


def _block(memory: bytes, block: int) -> bytes:
    return memory[block * 16 : block * 16 + 16]


# --- both stack paths ------------------------------------------------------------------------


def test_tier_change_and_renewal_through_the_reader_worker(till: Till) -> None:
    card = till.issue(UID)
    svc, reader = till.service, till.profiles[0]
    up = till.run(card_job(svc, reader, ChangeTier("tier-1", 3, expected_uid=UID.hex())))
    assert isinstance(up, MembershipResult)
    assert (up.decision, up.rule, up.tier_before, up.tier) == ("upgrade", "requested", 2, 3)
    assert up.migrated
    assert up.format_version == FORMAT_V2
    assert (up.balance, up.points) == (100_000, 50)  # money never moves
    assert Header.decode(_block(card.memory, HEADER_BLOCK)).version == FORMAT_V2
    info = till.run(card_job(svc, reader, ReadCard()))
    assert (info.tier, info.tier_name, info.balance) == (3, "白金卡", 100_000)
    renewed = till.run(card_job(svc, reader, RenewCard("renew-1", dt.date(2030, 6, 30))))
    assert (renewed.decision, renewed.valid_until_before, renewed.valid_until) == (
        "renew", "2028-12-31", "2030-06-30",
    )  # fmt: skip
    assert not renewed.migrated
    paid = till.run(card_job(svc, reader, Debit("sale-1", 10_000)))  # a v2 debit keeps it all
    assert paid.balance == 90_000
    assert till.view() == (90_000, 50 + 5)  # 白金卡: 5 points per 100 yuan
    # from the card alone, at a PC that never saw it
    fresh = till.fresh_view()
    assert fresh == (90_000, 55)
    # a replay returns the recorded decision and writes nothing
    before = card.memory
    again = till.run(card_job(svc, reader, ChangeTier("tier-1", 3, expected_uid=UID.hex())))
    assert again.replayed
    assert again.decision == "upgrade"
    assert card.memory == before
    record = till.journal.get("renew-1")
    assert record is not None
    assert record.state is RequestState.COMMITTED


def test_a_membership_request_id_moved_to_another_card_is_refused(till: Till) -> None:
    till.issue(UID)
    till.run(card_job(till.service, till.profiles[0], ChangeTier("tier-x", 1)))
    other = till.issue(uid_for(5151), member="8800005151")
    before = other.memory
    with pytest.raises(RequestIdReused):
        till.run(card_job(till.service, till.profiles[0], ChangeTier("tier-x", 1)))
    assert other.memory == before


# --- rules -----------------------------------------------------------------------------------

RULES = Programme(
    tiers=(
        Tier("普通会员", 9500, 1, upgrade_points=0),
        Tier("银卡", 9000, 2, upgrade_points=100),
        Tier("金卡", 8500, 3, upgrade_points=500),
    ),
    renew_months=12,
)


def test_rules_upgrade_downgrade_and_renew_months(tmp_path: Path) -> None:
    with terminal(Keystore.generate(), tmp_path / "j.db") as term:
        term.programme = RULES
        term.__post_init__()  # services over the rules
        card = issue(term, UID, points=120, tier=2, valid_until=dt.date(2027, 1, 31))
        with term.storage() as sc:
            down = term.service.change_tier(sc, ChangeTier("requalify-2026"))
        assert (down.decision, down.rule, down.tier) == ("downgrade", "upgrade_points", 1)
        with term.storage() as sc:
            term.service.adjust_points(sc, AdjustPoints("p", 400))
        with term.storage() as sc:
            up = term.service.change_tier(sc, ChangeTier("requalify-2027"))
        assert (up.decision, up.tier) == ("upgrade", 2)
        with term.storage() as sc:
            same = term.service.change_tier(sc, ChangeTier("requalify-again"))
        assert same.decision == "unchanged"
        with term.storage() as sc:
            renewed = term.service.renew(sc, RenewCard("renew"))
        assert (renewed.rule, renewed.valid_until) == ("renew_months", "2028-01-31")
        with term.storage() as sc:
            cut = term.service.renew(sc, RenewCard("cut", TODAY + dt.timedelta(days=1)))
        assert cut.decision == "shorten"
        with term.storage() as sc:
            forever = term.service.renew(sc, RenewCard("forever", no_expiry=True))
        assert forever.valid_until is None
        with term.storage() as sc:
            info = term.service.read(sc)
        assert (info.tier, info.valid_until, info.points) == (2, None, 520)
        assert any(_block(card.memory, b)[:2] == b"\xcd\x02" for b in SLOT_HEADER_BLOCKS)


def test_an_unknown_tier_is_refused_naming_the_field(tmp_path: Path) -> None:
    with terminal(Keystore.generate(), tmp_path / "j.db") as term:
        card = issue(term, UID)
        before = card.memory
        with pytest.raises(InvalidArgument, match="tier"), term.storage() as sc:
            term.service.change_tier(sc, ChangeTier("t", 9))
        assert card.memory == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "t", "tier": -1}, "tier"),
        ({"request_id": "t", "tier": True}, "tier"),
        ({"request_id": "t", "expected_uid": "zz"}, "expected_uid"),
    ],
)
def test_change_tier_fields_are_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        ChangeTier(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"request_id": "r", "valid_until": "2030-01-01"}, "valid_until"),
        ({"request_id": "r", "valid_until": dt.date(1999, 12, 31)}, "valid_until"),
        ({"request_id": "r", "valid_until": dt.date(2030, 1, 1), "no_expiry": True}, "no_expiry"),
        ({"request_id": "r", "no_expiry": 1}, "no_expiry"),
    ],
)
def test_renew_fields_are_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        RenewCard(**kwargs)  # type: ignore[arg-type]


def test_the_example_config_has_the_tier_rules() -> None:
    programme = parse_config(EXAMPLE_TEXT).membercard
    assert programme.renew_months == 12
    assert [t.upgrade_points for t in programme.tiers] == [0, 1000, 5000, None]
    assert programme.tier_by_rules(3, 1200) == (1, "upgrade_points")  # re-qualified down


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("renew_months = 12", "renew_months = 0", "membercard.renew_months"),
        ("renew_months = 12", 'renew_months = "x"', "membercard.renew_months"),
        ("upgrade_points = 1000", "upgrade_points = -5", "membercard.tiers[1].upgrade_points"),
        ("upgrade_points = 1000", "upgrade_spend = 5", "membercard.tiers[1].upgrade_spend"),
    ],
)
def test_config_key_errors_are_named(old: str, new: str, key: str) -> None:
    assert old in EXAMPLE_TEXT
    with pytest.raises(ConfigError) as info:
        parse_config(EXAMPLE_TEXT.replace(old, new, 1))
    assert info.value.key == key, str(info.value)


# --- a terminal that reads v1 only -------------------------------------------------------------


def test_a_v1_terminal_refuses_a_v2_card_writing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keystore = Keystore.generate()
    with terminal(keystore, tmp_path / "new.db") as term:
        card = issue(term, UID)
        with term.storage() as sc:
            term.service.change_tier(sc, ChangeTier("up", 3))
        term.reader.remove()
    monkeypatch.setattr(layout, "FORMAT_VERSIONS", (1,))  # a build that knows v1 only
    with terminal(keystore, tmp_path / "old.db") as old:
        old.reader.insert(card)
        before = card.memory
        for run in (
            lambda sc: old.service.read(sc),
            lambda sc: old.service.debit(sc, Debit("old-sale", 100)),
        ):
            with (
                pytest.raises(UnknownCardFormat, match=r"format version 2.*nothing"),
                old.storage() as sc,
            ):
                run(sc)
        assert card.memory == before


def test_a_replacement_after_a_tier_change_carries_the_new_tier(tmp_path: Path) -> None:
    with terminal(Keystore.generate(), tmp_path / "j.db") as term:
        issue(term, UID)
        with term.storage() as sc:
            term.service.change_tier(sc, ChangeTier("up", 4))
        with term.storage() as sc:
            term.service.renew(sc, RenewCard("renew", dt.date(2031, 3, 1)))
        term.reader.remove()
        term.reader.insert(SimCard.blank(uid=uid_for(5152)))
        with term.storage() as sc:
            replace_card(term.issuer, sc, ReplaceCard(old_uid=UID.hex(), request_id="lost"))
        with term.storage() as sc:
            info = term.service.read(sc)
        assert (info.tier, info.valid_until, info.balance) == (4, dt.date(2031, 3, 1), 100_000)


@pytest.mark.parametrize("fresh", [False, True], ids=["same PC", "fresh PC"])
def test_a_tier_raised_with_key_a_in_a_record_header_is_refused(
    tmp_path: Path, fresh: bool
) -> None:
    """Key A may write a slot's header block, but the record's MAC covers it: a raised tier
    makes the newest record fail its MAC, and the purse still shows its balance."""
    keystore = Keystore.generate()
    with terminal(keystore, tmp_path / "j.db") as term:
        card = issue(term, UID, tier=1)
        with term.storage() as sc:
            term.service.change_tier(sc, ChangeTier("up", 2))  # counter 2, slot 1
        with term.storage() as sc:
            term.service.debit(sc, Debit("sale", 10_000))  # counter 3, slot 0, v2 form
        forged = bytearray(_block(card.memory, SLOT_HEADER_BLOCKS[0]))
        forged[10] = 4  # 黑金卡
        with term.storage() as sc:
            key = keystore.card_key(sc.uid(), sector_group=KEY_GROUP_APP, key_type="A")
            sc.load_key(key.reveal(), 0, KeyType.A)
            sc.authenticate(SLOT_HEADER_BLOCKS[0], KeyType.A, 0)
            sc.write_block(SLOT_HEADER_BLOCKS[0], bytes(forged))
        before = card.memory
        if fresh:
            term.reader.remove()
        with terminal(keystore, tmp_path / "fresh.db") as other:
            reader = other if fresh else term
            if fresh:
                other.reader.insert(card)
            with pytest.raises(MacInvalid), reader.storage() as sc:
                reader.service.read(sc)
        assert card.memory == before


def test_tap_budget_of_membership_changes(tmp_path: Path) -> None:
    """What docs/card-layout.md says (ACR1252U, a terminal that knows the card): migration 17
    APDUs once, a later change 12, a v2 debit 16 (one more than v1: the header block)."""
    with terminal(Keystore.generate(), tmp_path / "j.db") as term:
        issue(term, UID)
        with term.storage() as sc:
            term.service.read(sc)

        def apdus(run: Callable[[StorageCard], object]) -> int:
            n0 = term.reader.apdu_count
            with term.storage() as sc:
                run(sc)
            return term.reader.apdu_count - n0

        assert apdus(lambda sc: term.service.change_tier(sc, ChangeTier("t", 3))) == 17
        assert apdus(lambda sc: term.service.renew(sc, RenewCard("r"))) == 12
        assert apdus(lambda sc: term.service.debit(sc, Debit("d", 100))) == 16
        assert "of a v1 card, 17 APDUs)" in DOC
        assert "(12 APDUs on an ACR1252U)" in DOC
