"""The disk holding the journal fills up while POS clients debit: value operations are refused
with ``JOURNAL_FULL`` (RESOURCE_EXHAUSTED) before anything is written (no claim in the journal,
the cards untouched), reads are still served, nothing is ever INTERNAL; once space is freed the
same daemon takes debits again, and every acknowledged debit is in the journal and on its card.

The daemon's state directory is a 64 MiB tmpfs mounted in a mount namespace of the daemon's
own (``StorePc(state_size=...)``); this test fills it through ``/proc/<pid>/root``. The real
disk is never filled.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bench.crash_campaign import LANES, StorePc, cny, describe
from daemon.api.v1 import issuing_service_pb2 as i
from daemon.api.v1 import issuing_service_pb2_grpc as ig
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.journal import MIN_FREE_BYTES
from tests.survive.load import Load

STATE = m.GetOperationResponse


@pytest.fixture
def small_disk_store(tmp_path: Path) -> Iterator[tuple[StorePc, dict[str, str]]]:
    with StorePc(tmp_path / "store", state_size="64m") as store:
        store.start(wait_cards=False)
        uids = store.issue_cards()
        yield store, uids
        assert store.stop() == 0, store.lines[-20:]


def fill(path: Path, leave: int) -> None:
    """Write ``path`` until the filesystem has at most ``leave`` bytes free (0: until full)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = b"\0" * 65536
        while (free := os.statvfs(path).f_bavail * os.statvfs(path).f_frsize) > leave:
            try:
                os.write(fd, chunk[: max(4096, min(len(chunk), free - leave))])
            except OSError:  # ENOSPC: full
                return
    finally:
        os.close(fd)


def debit(stub: mg.MemberCardServiceStub, uid: str, rid: str) -> grpc.RpcError | None:
    try:
        stub.Debit(
            m.DebitRequest(reader="readers/front", request_id=rid, expected_uid=uid, amount=cny(7)),
            timeout=10,
        )
    except grpc.RpcError as exc:
        return exc
    return None


@pytest.mark.pcscd
def test_a_full_journal_disk_refuses_value_operations_and_still_serves_reads(
    small_disk_store: tuple[StorePc, dict[str, str]],
) -> None:
    store, uids = small_disk_store
    filler = store.state_path(store.folder / "state") / "filler"
    with Load(store, uids, clients=2, pace_s=0.05) as load, store.channel() as channel:
        stub = mg.MemberCardServiceStub(channel)
        load.wait_acknowledged(5)
        fill(filler, leave=MIN_FREE_BYTES // 4)  # below what a value operation needs
        time.sleep(0.3)  # the debits in flight when it filled end
        cards = {lane: store.read(lane).card for lane in LANES}  # reads are served
        refused = debit(stub, uids["front"], "sale-on-a-full-disk")
        assert refused is not None
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, describe(refused)
        assert "JOURNAL_FULL" in refused.details()
        assert "journal" in refused.details()
        assert "is full" in refused.details()
        op = stub.GetOperation(m.GetOperationRequest(request_id="sale-on-a-full-disk"), timeout=10)
        assert op.state == STATE.STATE_NOT_RECORDED  # refused before even the claim
        time.sleep(0.5)  # the tills keep trying and are refused the same way
        assert {lane: store.read(lane).card for lane in LANES} == cards  # no card touched
        reasons = load.refusals()
        assert any("JOURNAL_FULL" in why for why in reasons), reasons[-3:]
        assert not any("INTERNAL" in why for why in reasons), reasons
        issuer = ig.IssuingServiceStub(store.channel("issuer"))
        with pytest.raises(grpc.RpcError) as erase:  # the issuing station: refused the same way
            issuer.EraseCard(
                i.EraseCardRequest(reader="readers/back", request_id="erase-on-a-full-disk",
                                   expected_uid=uids["back"], force=True),
                timeout=10,
            )  # fmt: skip
        assert erase.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, describe(erase.value)
        assert "JOURNAL_FULL" in erase.value.details()
        op = stub.GetOperation(m.GetOperationRequest(request_id="erase-on-a-full-disk"), timeout=10)
        assert op.state == STATE.STATE_NOT_RECORDED
        assert store.read("back").card == cards["back"]  # still the member's card
        fill(filler, leave=0)  # and now completely full
        refused = debit(stub, uids["front"], "sale-on-a-full-disk-2")
        assert refused is not None
        assert "JOURNAL_FULL" in refused.details(), describe(refused)
        with contextlib.suppress(grpc.RpcError):  # served, or refused with the reason
            store.read("back")
        filler.unlink()  # store IT frees space: no restart, no person at the till
        load.wait_acknowledged(5, "front")
        load.wait_acknowledged(5, "back")
    assert not any("INTERNAL" in why for why in load.refusals())
    assert store.alive()
    load.verify()
