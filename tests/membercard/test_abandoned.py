"""Clean-up of abandoned claims (issue 14, item 7).

``kill -9`` between claiming a ``request_id`` and journalling its intent leaves the request
``CLAIMED`` for ever. Older than ``[membercard] abandoned_claim_age_s`` and with no intent, it is
closed as never started (``ABORTED``, audited ``claim_abandoned``) when a service starts and then
periodically; a retry with the same id still executes once. A claim still executing, or younger
than the age, is left alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from daemon.config import parse_config
from daemon.errors import ConfigError
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard import MemberCardService, Programme
from daemon.membercard.requests import Debit, value_params
from tests.membercard.terminal import PROGRAMME, TODAY, issue, terminal, uid_for

UID = uid_for(5401)
DAEMON = "[daemon]\nkeystore_credentials = true\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_claims_left_by_a_killed_process_are_closed_and_can_be_retried(tmp_path: Path) -> None:
    ks = Keystore.generate()
    clock = Clock()
    programme = replace(PROGRAMME, abandoned_claim_age_s=600)
    with terminal(ks, tmp_path / "a.db") as t:
        card = issue(t, UID, balance=10_000)
    with Journal(tmp_path / "a.db", clock=clock) as journal:
        for rid in ("killed-1", "killed-2"):  # the process died right after each claim
            with journal.claim(rid, "debit", value_params(Debit(rid, 1_000))):
                pass
        clock.now += 300
        with journal.claim("recent", "debit", {"amount": 1}):
            pass
        clock.now += 301  # killed-* are 601 s old, recent 301 s
        with journal.claim("running", "debit", {"amount": 2}):
            clock.now += 10_000
            service = MemberCardService(ks, journal, programme, today=lambda: TODAY)
            running = journal.get("running")
            assert running is not None
            assert running.state is RequestState.CLAIMED  # executing here: never closed
        for rid in ("killed-1", "killed-2", "recent"):
            rec = journal.get(rid)
            assert rec is not None
            assert (rec.state, rec.outcome) == (RequestState.ABORTED, {"error": "ABANDONED"})
        audited = journal.audit_events("claim_abandoned")
        assert [e["request_id"] for e in audited] == ["killed-1", "killed-2", "recent"]
        assert service.sweep() == ("running",)  # once it is no longer executing, and old
    with terminal(ks, tmp_path / "a.db") as t:
        t.reader.insert(card)
        with t.storage() as sc:
            paid = t.service.debit(sc, Debit("killed-1", 1_000))  # the retry still works
        assert (paid.balance, paid.replayed) == (9_000, False)


def test_young_claims_stay(tmp_path: Path) -> None:
    clock = Clock()
    with Journal(tmp_path / "j.db", clock=clock) as journal:
        with journal.claim("r", "debit", {}):
            pass
        clock.now += 3599
        MemberCardService(Keystore.generate(), journal, Programme())  # default: one hour
        rec = journal.get("r")
        assert rec is not None
        assert rec.state is RequestState.CLAIMED


@pytest.mark.parametrize("value", ["0", "59", "2592001", '"1h"', "true", "60.5"])
def test_the_age_is_validated_naming_its_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"membercard\.abandoned_claim_age_s"):
        parse_config(f"{DAEMON}[membercard]\nabandoned_claim_age_s = {value}\n")


def test_the_age_is_read_from_the_membercard_section() -> None:
    config = parse_config(f"{DAEMON}[membercard]\nabandoned_claim_age_s = 900\n")
    assert config.membercard.abandoned_claim_age_s == 900
    assert parse_config(DAEMON).membercard.abandoned_claim_age_s == 3600
