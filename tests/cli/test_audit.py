"""`carddaemon audit` and `carddaemon dispute` against `carddaemon serve` of the simulated store:
a member complains about a lunch charge; the technician answers from the journal."""

from __future__ import annotations

import datetime as dt

import grpc

from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from tests.cli.conftest import Store

GOLD = "9E1A4B01"


def pay(store: Store, request_id: str, fen: int) -> m.DebitResponse:
    with grpc.insecure_channel(f"unix:{store.run_dir / 'pos.sock'}") as channel:
        pos = mg.MemberCardServiceStub(channel)
        card = pos.ReadCard(m.ReadCardRequest(reader="readers/front"), timeout=20).card
        money = common_pb2.Money(currency_code="CNY", amount_fen=fen)
        return pos.Debit(
            m.DebitRequest(reader="readers/front", request_id=request_id, amount=money,
                           expected_uid=card.uid),
            timeout=20,
        )  # fmt: skip


def test_a_dispute_lists_the_days_charges_and_the_audit_log_shows_them(store: Store) -> None:
    assert store.run("sim", "present", "front", "gold").code == 0
    try:
        paid = pay(store, "dispute-lunch-1", 3_850).result
        member = paid.member_id

        answer = store.run("dispute", "--member", member)
        assert answer.code == 0, answer.err
        assert f"member {member}, {dt.date.today().isoformat()}" in answer.out
        line = next(row for row in answer.out.splitlines() if "dispute-lunch-1" in row)
        assert "debit" in line
        assert "¥38.50" in line
        assert "committed" in line
        before, after = paid.balance_before.amount_fen, paid.balance_after.amount_fen
        assert (
            f"¥{before // 100:,}.{before % 100:02d} → ¥{after // 100:,}.{after % 100:02d}" in line
        )

        doc = store.run("dispute", "--card", GOLD.lower(), "--json").json()
        assert doc["unsettled"] == []
        assert doc["paid_fen"] >= 3_850
        assert doc["refunded_fen"] == 0
        assert "dispute-lunch-1" in [
            e.get("requestId", e.get("request_id")) for e in doc["entries"]
        ]

        old = store.run("dispute", "--member", member, "--day", "2020-01-01", "--json").json()
        assert (old["value_changes"], old["entries"]) == (0, [])

        audit = store.run("audit", "--card", GOLD, "--kind", "value_change", "--json").json()
        rows = [
            e
            for e in audit["events"]
            if e.get("requestId", e.get("request_id")) == "dispute-lunch-1"
        ]
        assert len(rows) == 1
        assert rows[0]["detail"]["amount"] == 3_850
        table = store.run("audit", "--kind", "key_use", "--limit", "2")
        assert table.code == 0, table.err
        assert table.out.splitlines()[0].split()[:3] == ["TIME", "#", "EVENT"]
        assert len([row for row in table.out.splitlines() if "key_use" in row]) == 2
    finally:
        store.run("sim", "remove", "front")


def test_bad_input_names_the_flag(store: Store) -> None:
    both = store.run("dispute", "--card", GOLD, "--member", "1")
    assert both.code == 2
    assert "--card UID" in both.err
    day = store.run("dispute", "--card", GOLD, "--day", "yesterday")
    assert day.code == 2
    assert "--day 'yesterday': not a date" in day.err
    since = store.run("audit", "--since", "noon")
    assert since.code == 2
    assert "--since 'noon'" in since.err
    kind = store.run("audit", "--kind", "Value Change")
    assert kind.code == 2
    assert "--kind" in kind.err
    card = store.run("audit", "--card", "zz")
    assert card.code == 2
    assert "--card" in card.err
