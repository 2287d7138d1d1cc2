"""``carddaemon readers`` when a reader of the config is not plugged in: a ``carddaemon serve``
process on real pcscd + vpcd whose ``[readers.side]`` matches no reader there is (the store
config of ``tests/api/test_readers.py``). The technician sees the reader, the pattern it
expects, and exit 1 (a device needs attention), in the table and in ``--json``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.pcscd import PrivatePcscd
from tests.api.test_readers import SIDE_MATCH, serve_unplugged
from tests.cli.conftest import Store

pytestmark = pytest.mark.pcscd

NOT_CONNECTED = f"not connected (expects a reader matching {SIDE_MATCH!r})"


@pytest.fixture(scope="module")
def unplugged(
    tmp_path_factory: pytest.TempPathFactory, private_pcscd: PrivatePcscd
) -> Iterator[Store]:
    with serve_unplugged(tmp_path_factory.mktemp("unplugged"), private_pcscd) as served:
        yield Store(served)


def test_the_table_shows_the_missing_reader_and_what_it_expects_and_exits_1(
    unplugged: Store,
) -> None:
    run = unplugged.run("readers")
    assert (run.code, run.err) == (1, "")
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "READER", "STATE", "UID", "CARD", "ATR", "DIALECT", "FIRMWARE", "PC/SC", "NAME",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert list(rows) == [
        "readers/back",
        "readers/back-2",
        "readers/front",
        "readers/front-2",
        "readers/side",
    ]
    assert rows["readers/side"] == ["readers/side", "not", "connected", *["-"] * 6]
    assert rows["readers/front"][:2] == ["readers/front", "empty"]
    assert rows["readers/front"][5:7] == ["acr1252u", "-"]
    assert lines[-1] == f"readers/side: {NOT_CONNECTED}"


def test_json_gives_the_state_the_pattern_and_the_problem_and_exits_1(unplugged: Store) -> None:
    run = unplugged.run("readers", "--json")
    assert run.code == 1
    readers = {item["name"]: item for item in run.json()["readers"]}
    side = readers["readers/side"]
    assert (side["state"], side["match"], side["pcsc_name"], side["dialect"]) == (
        "STATE_DETACHED",
        SIDE_MATCH,
        "",
        "",
    )
    assert side["problems"] == [NOT_CONNECTED]
    assert "card" not in side
    front = readers["readers/front"]
    assert (front["state"], front["match"], front["problems"]) == (
        "STATE_EMPTY",
        "ACS ACR1252*PICC*",
        [],
    )
    assert [name for name, item in readers.items() if item["problems"]] == ["readers/side"]


def test_commands_on_the_missing_reader_say_it_is_not_connected(unplugged: Store) -> None:
    run = unplugged.run("read", "side")
    assert run.code == 2  # DEVICE_NOT_FOUND, as for every reader the daemon cannot reach by id
    assert run.err.startswith(
        "carddaemon read: DEVICE_NOT_FOUND: READER 'side': configured but not connected: "
        f"no reader matching {SIDE_MATCH!r} is attached (readers: readers/back, "
    )
    run = unplugged.run("watch", "nope")  # bad input: the list now names readers/side too
    assert run.code == 2
    assert run.err.strip() == (
        "carddaemon watch: READER 'nope': no such reader on this PC (readers: readers/back, "
        "readers/back-2, readers/front, readers/front-2, readers/side)"
    )
