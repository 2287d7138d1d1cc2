"""pcscd dies and comes back, and a reader is unplugged and plugged back, while POS clients
debit: the daemon (the same process, nobody restarts it) serves both lanes again by itself,
and every acknowledged debit is in the journal and on its card, every cut one settled."""

from __future__ import annotations

import time

import pytest

from bench.crash_campaign import LANES, StorePc
from daemon.api.v1 import reader_service_pb2 as r
from daemon.api.v1 import reader_service_pb2_grpc as rg
from tests.survive.load import Load

NAMES = [name for name, _ in LANES.values()]


def reader_ids(store: StorePc) -> set[str]:
    with store.channel("technician") as channel:
        reply = rg.ReaderServiceStub(channel).ListReaders(r.ListReadersRequest(), timeout=10)
    return {x.name for x in reply.readers if x.state != r.Reader.STATE_DETACHED}  # attached


def wait_reader(store: StorePc, reader: str, attached: bool, timeout_s: float = 20) -> None:
    """Until ``reader`` is listed (or not). vpcd gives pcscd two slots per reader; the
    second (``… 00 01``, never a card) is listed as ``readers/<id>-2``."""
    deadline = time.monotonic() + timeout_s
    while ((found := reader_ids(store)) & {reader} != set()) != attached:
        assert time.monotonic() < deadline, f"readers {found}: {reader} attached={attached}?"
        time.sleep(0.05)


@pytest.mark.pcscd
def test_pcscd_killed_and_restarted_under_load(
    issued_store: tuple[StorePc, dict[str, str]],
) -> None:
    store, uids = issued_store
    pid = store.pid
    with Load(store, uids) as load:
        load.wait_acknowledged(10)
        for _ in range(2):  # twice: the second crash finds the daemon's recovered context
            store.pcscd.restart(kill=True)
            for lane in LANES:  # both lanes debit again, with nobody touching the daemon
                load.wait_acknowledged(5, lane)
    assert store.pid == pid
    assert store.alive()
    assert any("UNAVAILABLE" in why or "CARD" in why for why in load.refusals())
    load.verify()


@pytest.mark.pcscd
def test_a_reader_unplugged_and_plugged_back_under_load(
    issued_store: tuple[StorePc, dict[str, str]],
) -> None:
    store, uids = issued_store
    back = store.readers["back"]
    with Load(store, uids) as load:
        load.wait_acknowledged(10)
        back.unplug()  # through vpcd a reader leaves only with a pcscd restart without it
        store.pcscd.restart([LANES["front"][0]], kill=False)
        wait_reader(store, "readers/back", attached=False)
        load.wait_acknowledged(5, "front")  # the other lane goes on
        refused = len(load.refusals())
        time.sleep(0.3)
        assert len(load.refusals()) > refused  # the unplugged lane's till is told, not hung
        back.replug()
        store.pcscd.restart(NAMES, kill=False)
        wait_reader(store, "readers/back", attached=True)
        load.wait_acknowledged(5, "back")
    assert any("NOT_FOUND" in why for why in load.refusals()), load.refusals()[:5]
    load.verify()
