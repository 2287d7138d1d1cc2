"""The survival tests run real ``carddaemon serve`` processes over real pcscd + vpcd
(``bench/crash_campaign.py``'s :class:`StorePc`: a private pcscd, the simulated readers and
their member cards in this process, which outlive the daemon) and reach them with real gRPC
clients. gRPC's process-wide client threads are started once, before the leak guard looks (as
in tests/api)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.crash_campaign import StorePc
from tests.api.conftest import grpc_runtime

__all__ = ["grpc_runtime", "issued_store"]


@pytest.fixture
def issued_store(tmp_path: Path) -> Iterator[tuple[StorePc, dict[str, str]]]:
    """A serving daemon with a member card issued on each lane: ``(store, lane -> UID)``."""
    with StorePc(tmp_path / "store") as store:
        store.start(wait_cards=False)
        uids = store.issue_cards()
        yield store, uids
        assert store.stop() == 0, store.lines[-20:]
