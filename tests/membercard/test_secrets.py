"""Key bytes never leave the keystore: not in logs (any level), errors, audit rows, the journal
file itself, or the APDU traces the storage layer logs when a card misbehaves.

Every operation that loads or writes keys (issue, debit, credit, points, read, replace, erase)
runs here, cleanly and with one write torn (the torn runs are the ones that dump APDU traces),
with logging captured at the lowest level.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.errors import CardDaemonError
from daemon.keystore import KeyPurpose, Keystore
from daemon.membercard.issuing import IssueSpec
from daemon.membercard.replace import replace_card
from daemon.membercard.requests import (
    AdjustPoints,
    Credit,
    Debit,
    EraseCard,
    IssueCard,
    ReplaceCard,
)
from daemon.mifare.mad import MAD_KEY_A
from daemon.readers.storage import StorageCard
from sim.card import SimCard
from tests.membercard.terminal import Terminal, terminal, uid_for

UID = uid_for(4242)
NEW_UID = uid_for(4243)
SPEC = IssueSpec("7700012345", 1, None, 5_000, 10)
Op = Callable[[Terminal, StorageCard], object]

OLD_CARD_OPS: list[Op] = [
    lambda t, sc: t.issuer.issue(sc, IssueCard(SPEC, request_id="i")),
    lambda t, sc: t.service.debit(sc, Debit(request_id="d", amount=100)),
    lambda t, sc: t.service.credit(sc, Credit(request_id="c", amount=1_000)),
    lambda t, sc: t.service.adjust_points(sc, AdjustPoints(request_id="p", delta=3)),
    lambda t, sc: t.service.read(sc),
]
NEW_CARD_OPS: list[Op] = [
    lambda t, sc: replace_card(
        t.issuer, sc, ReplaceCard(old_uid=UID.hex().upper(), request_id="r")
    ),
    lambda t, sc: t.service.read(sc),
    lambda t, sc: t.issuer.erase(sc, EraseCard(request_id="e", force=True)),
]


def _forms(secret: bytes) -> list[bytes]:
    """The ways a key could show up in text or in a file."""
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        secret.hex(" ").encode(),
        secret.hex(" ").upper().encode(),
        secret.hex(":").encode(),
        repr(secret).encode(),
    ]


def _secrets(ks: Keystore, *uids: bytes) -> list[bytes]:
    keys = [ks.master(p, v).reveal() for p in KeyPurpose for v in ks.versions(p)]
    for uid in uids:
        for group in (0, 1):
            for key_type in "AB":
                key = ks.card_key(uid, sector_group=group, key_type=key_type).reveal()
                assert key != MAD_KEY_A
                keys.append(key)
    return keys


def _leaks(haystack: bytes, keys: list[bytes]) -> list[str]:
    """Which keys (by a short hint, never the key) occur in ``haystack``."""
    return [f"key #{i}" for i, k in enumerate(keys) for form in _forms(k) if form in haystack]


def _run(t: Terminal, card: SimCard, ops: list[Op], errors: list[str]) -> None:
    for op in ops:
        try:
            with t.storage() as sc:
                op(t, sc)
        except CardDaemonError as exc:
            errors += [str(exc), repr(exc)]
        if t.reader.card is None:
            t.reader.insert(card)


@pytest.mark.parametrize("tear_at", [None, 5, 30, 46, 60, 75, 95, 110, 140, 170])
def test_no_key_bytes_in_logs_errors_audit_or_journal_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tear_at: int | None
) -> None:
    caplog.set_level(1)
    ks = Keystore.generate()
    errors: list[str] = []
    with terminal(ks, tmp_path / "journal.db") as t:
        old, new = SimCard.blank(uid=UID), SimCard.blank(uid=NEW_UID)
        t.reader.faults.arm()
        if tear_at is not None:
            t.reader.faults.tear(tear_at, "garbage")
        t.reader.insert(old)
        _run(t, old, OLD_CARD_OPS, errors)
        t.reader.remove()
        t.reader.insert(new)
        _run(t, new, NEW_CARD_OPS, errors)
        sent, unfired = t.reader.faults.count, t.reader.faults.pending
        t.reader.faults.clear()
        audit = repr(t.journal.audit_events()).encode()
        assert t.journal.audit_events("key_use")  # key uses are audited (purpose, version)
    if tear_at is None:
        assert sent > 170  # the torn runs above reach into every operation
        assert errors == []
    else:
        assert unfired == ()  # the tear happened (some are absorbed: a purse left behind)
    journal_file = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    keys = _secrets(ks, UID, NEW_UID)
    assert caplog.records
    assert _leaks(caplog.text.encode(), keys) == []
    assert _leaks("\n".join(errors).encode(), keys) == []
    assert _leaks(audit, keys) == []
    assert _leaks(journal_file, keys) == []


def test_every_value_change_and_key_use_is_audited(tmp_path: Path) -> None:
    """Each confirmed change - including one confirmed only by the next read after a tear - has
    a ``value_change`` row with its figures; each tap lists the keys it used by purpose and
    version (card keys by group; the MAC key when a record is verified or sealed)."""
    ks = Keystore.generate()
    with terminal(ks, tmp_path / "journal.db") as t:
        card = SimCard.blank(uid=UID)
        t.reader.insert(card)
        with t.storage() as sc:
            t.issuer.issue(sc, IssueCard(SPEC, request_id="i"))
        for op in OLD_CARD_OPS[1:4]:  # debit, credit, points
            with t.storage() as sc:
                op(t, sc)
        t.reader.faults.arm()
        t.reader.faults.tear(10, "new")  # MAC block written, response lost: applied
        with pytest.raises(CardDaemonError, match="WRITE_UNCONFIRMED"), t.storage() as sc:
            t.service.debit(sc, Debit(request_id="torn", amount=7))
        t.reader.insert(card)
        with t.storage() as sc:
            info = t.service.read(sc)
        assert info.resolved == ("torn",)
        changes = {e["request_id"]: e["detail"] for e in t.journal.audit_events("value_change")}
        assert set(changes) == {"d", "c", "p", "torn"}
        assert (changes["d"]["amount"], changes["d"]["balance"]) == (100, 4_900)
        assert (changes["c"]["amount"], changes["c"]["balance"]) == (1_000, 5_900)
        assert (changes["p"]["points_delta"], changes["p"]["points"]) == (3, 13)
        assert (changes["torn"]["amount"], changes["torn"]["balance"]) == (7, info.balance)
        uses = [u for e in t.journal.audit_events("key_use") for u in e["detail"]["uses"]]
    purposes = {(u["purpose"], u["version"], u["group"]) for u in uses}
    assert purposes >= {("card_a", 1, 1), ("card_b", 1, 1), ("mac", 1, None)}
    assert all(set(u) == {"purpose", "version", "group"} for u in uses)
