"""The card's int32 fields at their limits: balance, points and counter never overflow.

A request that would take balance or points past 2^31-1 (or the configured cap), or a card whose
counter is exhausted, is refused with a typed error naming the field, before the journal intent:
the card is not touched and the request is closed as ABORTED (a retry is refused the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.errors import AmountOutOfRange, CardDaemonError, InvalidAmount
from daemon.journal import RequestState
from daemon.keystore import Keystore
from daemon.membercard.layout import (
    HEADER_BLOCK,
    MAX_AMOUNT,
    PURSE_ADR,
    PURSE_BACKUP,
    PURSE_PRIMARY,
    SLOT_MAC_BLOCKS,
    SLOT_STATE_BLOCKS,
    SlotState,
    mac_slot,
    slot_for_counter,
)
from daemon.membercard.requests import AdjustPoints, Credit, Debit
from daemon.membercard.rules import Programme, Tier
from daemon.mifare.value import encode_value_block
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from tests.membercard.terminal import Terminal, issue, terminal, uid_for

UID = uid_for(77)
# a tier earning 10 000 points per 100 yuan, so a large payment earns a lot
RICH = Programme(tiers=(Tier("gold", 9000, 10_000),), balance_cap=MAX_AMOUNT)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    with terminal(Keystore.generate(), tmp_path / "journal.db") as t:
        t.service.programme = RICH
        t.service.guard.programme = RICH
        t.issuer.programme = RICH
        yield t


def _refused(
    t: Terminal,
    card: SimCard,
    run: Callable[[StorageCard], object],
    error: type[CardDaemonError],
    field: str,
) -> None:
    before = card.memory
    for _attempt in range(2):  # the retry with the same request_id is refused again
        with pytest.raises(error, match=field) as info, t.storage() as sc:
            run(sc)
        assert info.value.reason == error.reason
    assert card.memory == before
    rec = t.journal.get("x")
    assert rec is not None
    assert rec.state is RequestState.ABORTED


def _set_record(t: Terminal, card: SimCard, counter: int, balance: int, points: int) -> None:
    """Put a genuine (MAC'd) record on the card as another terminal would have written it."""
    header = card.block(HEADER_BLOCK)
    state = SlotState(counter, balance, points, b"\x01\x02\x03\x04")
    slot = slot_for_counter(counter)
    card.program(SLOT_STATE_BLOCKS[slot], state.encode())
    card.program(SLOT_MAC_BLOCKS[slot], mac_slot(t.keystore, card.uid, header, state))
    for block in (PURSE_PRIMARY, PURSE_BACKUP):
        card.program(block, encode_value_block(balance, PURSE_ADR))


POINTS_OVERFLOWS: dict[str, tuple[int, Callable[[Terminal, StorageCard], object]]] = {
    # points on the card before, and the request that would take them past 2^31-1
    "earned by tier": (
        MAX_AMOUNT - 5,
        lambda t, sc: t.service.debit(sc, Debit(request_id="x", amount=10_000)),  # earns 10 000
    ),
    "explicit on a debit": (
        MAX_AMOUNT - 1,
        lambda t, sc: t.service.debit(sc, Debit(request_id="x", amount=1, points=2)),
    ),
    "added": (
        MAX_AMOUNT - 1,
        lambda t, sc: t.service.adjust_points(sc, AdjustPoints(request_id="x", delta=2)),
    ),
}


@pytest.mark.parametrize("case", sorted(POINTS_OVERFLOWS))
def test_points_past_int32_are_refused(term: Terminal, case: str) -> None:
    points, run = POINTS_OVERFLOWS[case]
    card = issue(term, UID, balance=1_000_000, points=points, tier=0)
    _refused(term, card, lambda sc: run(term, sc), AmountOutOfRange, "points")


def test_top_up_past_int32_is_refused_even_with_the_cap_at_the_maximum(term: Terminal) -> None:
    card = issue(term, UID, balance=MAX_AMOUNT - 100, points=0, tier=0)
    _refused(
        term,
        card,
        lambda sc: term.service.credit(sc, Credit(request_id="x", amount=50, bonus=51)),
        AmountOutOfRange,
        "amount",
    )
    with term.storage() as sc:  # exactly to the limit is fine
        done = term.service.credit(sc, Credit(request_id="y", amount=50, bonus=50))
    assert done.balance == MAX_AMOUNT


def test_exhausted_counter_is_refused(term: Terminal) -> None:
    card = issue(term, UID, balance=1_000, points=0, tier=0)
    _set_record(term, card, MAX_AMOUNT, 1_000, 0)
    with term.storage() as sc:
        assert term.service.read(sc).counter == MAX_AMOUNT  # still readable
    _refused(
        term,
        card,
        lambda sc: term.service.debit(sc, Debit(request_id="x", amount=1)),
        AmountOutOfRange,
        "counter",
    )


@pytest.mark.parametrize("bonus", [-1, 0.5, True, 2**31, "5"])
def test_bad_bonus_override_is_refused_before_the_card_is_touched(
    term: Terminal, bonus: object
) -> None:
    card = issue(term, UID, balance=1_000, points=0, tier=0)
    before, count = card.memory, term.reader.apdu_count
    with pytest.raises(InvalidAmount, match="bonus"), term.storage() as sc:
        term.service.credit(sc, Credit(request_id="b", amount=100, bonus=bonus))  # type: ignore[arg-type]
    assert card.memory == before
    assert term.reader.apdu_count == count
    assert term.journal.get("b") is None


@pytest.mark.parametrize("points", [-1, 1.0, False, 2**31])
def test_bad_points_override_on_a_debit(term: Terminal, points: object) -> None:
    card = issue(term, UID, balance=1_000, points=0, tier=0)
    before = card.memory
    with pytest.raises(InvalidAmount, match="points"), term.storage() as sc:
        term.service.debit(sc, Debit(request_id="b", amount=100, points=points))  # type: ignore[arg-type]
    assert card.memory == before
