"""One operation per card UID at a time at one store PC (issue 14, item 1).

A clone (gen1a/CUID: same UID, same data) and the original, presented on the two readers of
one PC and debited at the same moment through ``ReaderPool`` + ``card_job``, must not both be
charged on the same counter: the second tap of the UID is refused (``CARD_BUSY``, audited as a
clone signal), the first is refused at its intent because the UID was contended, nothing is
written, and a retry with one card only works. The same holds for two threads calling the
service on one reader. The journal also refuses an intent on a counter that another intent
already starts from, atomically in SQLite (a second journal object on the same file).

The overlap is forced by a journal whose intent write is slow (a subclass: a real journal,
just late), never by luck.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import CardBusy, CardDaemonError, CounterRollback
from daemon.journal import Journal, RequestState
from daemon.keystore import Keystore
from daemon.membercard import MemberCardService
from daemon.membercard.jobs import card_job
from daemon.membercard.requests import Debit
from sim.card import SimCard
from tests.membercard.terminal import PROGRAMME, TODAY, issue, terminal, uid_for
from tests.membercard.till import WAIT, Till

UID = uid_for(5101)
SLOW_S = 0.6  # how long the intent write is held back: far longer than a tap's reads


class SlowIntent(Journal):
    """A journal whose intent write starts late, so two operations overlap for sure."""

    def record_intent(
        self,
        request_id: str,
        uid: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        **options: Any,
    ) -> None:
        time.sleep(SLOW_S)
        super().record_intent(request_id, uid, before, after, **options)


def _outcome(future: concurrent.futures.Future[Any]) -> object:
    try:
        return future.result(WAIT)
    except CardDaemonError as exc:
        return exc


def test_clone_and_original_on_two_readers_are_not_both_charged(till: Till, tmp_path: Path) -> None:
    original = till.issue(UID, 0)
    clone = SimCard(original.uid, memory=original.memory)  # a magic card with the same image
    till.present(clone, 1)
    with SlowIntent(tmp_path / "slow.db") as journal:
        service = till.twin(journal, UID)
        futures = [
            till.pool.submit(
                till.name(i),
                card_job(service, till.profiles[i], Debit(f"race-{i}", 30_000)),
                time.monotonic() + WAIT,
            )
            for i in (0, 1)
        ]
        outcomes = [_outcome(f) for f in futures]
        # neither is charged on a counter the other also used: the second tap is refused at
        # once, the first at its intent (the UID was seen on two readers at once)
        assert all(isinstance(o, CardBusy) for o in outcomes), outcomes
        for i in (0, 1):
            rec = journal.get(f"race-{i}")
            assert rec is not None
            assert rec.state is RequestState.ABORTED
        busy = journal.audit_events("card_busy", uid=UID.hex().upper())
        assert len(busy) == 1
        assert till.fresh_view(0) == (100_000, 50)  # nothing written on either card
        assert till.fresh_view(1) == (100_000, 50)
        # one card only: the retry with the same request_id is charged once
        till.stack.remove(1)
        till.pool.card_removed(till.name(1))
        paid = till.run(card_job(service, till.profiles[0], Debit("race-0", 30_000)), 0)
        assert paid.balance == 70_000
        assert till.view(service, 0) == (70_000, paid.points)
        # the clone, still at the old counter, is now a rollback at this PC
        till.present(clone, 1)
        with pytest.raises(CounterRollback):
            till.view(service, 1)


def test_two_threads_on_one_reader_never_write_one_counter(tmp_path: Path) -> None:
    """The service called from two threads on the same card: one is refused, never both
    acknowledged at one counter (the card would later read ``VALUE_BLOCK_MISMATCH``)."""
    keystore = Keystore.generate()
    with terminal(keystore, tmp_path / "a.db") as t:
        issue(t, UID)
        with SlowIntent(tmp_path / "slow.db") as journal:
            service = MemberCardService(keystore, journal, PROGRAMME, today=lambda: TODAY)
            with t.storage() as sc:
                service.read(sc)  # this PC knows the card
            results: dict[int, object] = {}

            def pay(i: int) -> None:
                try:
                    with t.storage() as sc:
                        results[i] = service.debit(sc, Debit(f"thread-{i}", 1_000 * (i + 1)))
                except CardDaemonError as exc:
                    results[i] = exc

            threads = [threading.Thread(target=pay, args=(i,)) for i in (0, 1)]
            for th in threads:
                th.start()
                time.sleep(0.05)
            for th in threads:
                th.join(WAIT)
            assert all(isinstance(r, CardBusy) for r in results.values()), results
            with t.storage() as sc:
                info = service.read(sc)  # the card reads fine: no double write on a counter
            assert info.balance == 100_000


def test_intent_on_a_counter_already_taken_is_refused_atomically(tmp_path: Path) -> None:
    """Two journal objects on one file (as two processes would): the second intent starting
    from the same counter is refused in the same SQLite transaction that would record it."""
    path = tmp_path / "j.db"
    with Journal(path) as a, Journal(path) as b:
        for j, rid in ((a, "r-a"), (b, "r-b")):
            with j.claim(rid, "debit", {"amount": 1}):
                pass
        a.record_intent("r-a", "U1", {"state": {"counter": 4}}, {"state": {"counter": 5}},
                        expect_counter=4)  # fmt: skip
        with pytest.raises(CardBusy, match="r-a is writing counter 5"):
            b.record_intent("r-b", "U1", {"state": {"counter": 4}}, {"state": {"counter": 5}},
                            expect_counter=4)  # fmt: skip
        rec = b.get("r-b")
        assert rec is not None
        assert rec.state is RequestState.CLAIMED  # nothing recorded
        a.observe("U2", "1", 7, {})
        with pytest.raises(CardBusy, match="saw counter 7"):
            b.record_intent("r-b", "U2", {"state": {"counter": 6}}, {"state": {"counter": 7}},
                            expect_counter=6)  # fmt: skip
