"""Fixtures of the member card tests: a till over the reader contract stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.journal import Journal
from daemon.keystore import Keystore
from daemon.membercard import MemberCardService, Personaliser
from daemon.membercard.jobs import ReaderProfile
from daemon.readers.workers import ReaderPool
from tests.membercard.terminal import PROGRAMME, TODAY
from tests.membercard.till import Till
from tests.pcscd_stack import Stack


@pytest.fixture
def till(stack: Stack, tmp_path: Path) -> Iterator[Till]:
    keystore = Keystore.generate()
    with Journal(tmp_path / "journal.db") as journal, ReaderPool(stack.backend.connect) as pool:
        profiles = []
        for i in range(len(stack.readers)):
            pool.reader_attached(stack.name(i))
            profiles.append(ReaderProfile.for_reader(stack.name(i)))
        yield Till(
            stack, keystore, journal, pool, profiles,
            MemberCardService(keystore, journal, PROGRAMME, today=lambda: TODAY),
            Personaliser(keystore, journal, PROGRAMME, today=lambda: TODAY),
        )  # fmt: skip
