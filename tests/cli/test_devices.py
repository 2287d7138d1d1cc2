"""``printers``, ``jobs``, ``reprint``, ``confirm-printed``, ``drawer open`` and ``scans`` as
subprocesses against one station of the simulated store whose listeners run in this process
(so the test can pull the printer's cable mid-receipt and pull a scanner's trigger)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.api.v1 import printer_service_pb2_grpc as pg
from tests.api.conftest import Api, run_api
from tests.api.test_printers import uncertain_job
from tests.api.test_scanners import WECHAT, WECHAT_MASKED, front
from tests.cli.conftest import CARDDAEMON, Run, Store


class _ApiStore(Store):
    """A :class:`Store` whose daemon is the in-process station's listeners."""

    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def run_dir(self) -> Path:
        return self.api.run_dir


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ApiStore]:
    with run_api(tmp_path_factory.mktemp("devices")) as api:
        yield _ApiStore(api)


@pytest.mark.allow_leaks  # the module's station: its channel lives as long as the station
def test_an_uncertain_job_is_shown_first_and_settled(station: _ApiStore) -> None:
    printers = station.run("printers", "--json")
    assert printers.code == 0, printers.err
    (printer,) = printers.json()["printers"]
    assert (printer["name"], printer["problems"]) == ("printers/receipt", [])
    pos = pg.PrinterServiceStub(station.api.channel("pos"))
    name = uncertain_job(pos, station.api, "cli-un-1")
    number = name.rsplit("/", 1)[-1]
    waiting = station.run("printers")
    assert waiting.code == 1
    assert "1 UNCERTAIN job(s): see `carddaemon jobs`" in waiting.out
    jobs = station.run("jobs", "--json")
    assert jobs.code == 1
    assert jobs.json()["uncertain"] == 1
    text = station.run("jobs")
    first = text.out.splitlines()[3].split()
    assert first[:2] == [number, "UNCERTAIN"]
    assert "`carddaemon confirm-printed JOB` if it printed" in text.out
    copy = station.run("reprint", number, "--json")
    assert copy.code == 0, copy.err
    assert copy.json()["reprint_of"] == name
    twice = station.run("reprint", number)
    assert "already done: nothing printed twice" in twice.out
    assert station.run("jobs", "--uncertain").code == 0
    wrong = station.run("confirm-printed", "abc")
    assert (wrong.code, wrong.err.strip()) == (
        2,
        "carddaemon confirm-printed: JOB 'abc': a job number as `carddaemon jobs` lists it, e.g. 7",
    )
    missing = station.run("reprint", "999")
    assert missing.code == 2
    assert "JOB '999': no such print job" in missing.err
    nowhere = station.run("print-test", "--printer", "kitchen")
    assert nowhere.code == 2
    assert "--printer 'kitchen': no such printer (printers: printers/receipt)" in nowhere.err
    drawer = station.run("drawer", "open", "--request-id", "cli-drawer-1", "--json")
    assert drawer.code == 0, drawer.err
    assert drawer.json()["replayed"] is False
    again = station.run("drawer", "open", "--request-id", "cli-drawer-1", "--json")
    assert again.json()["replayed"] is True


@pytest.mark.allow_leaks
def test_scans_are_live_and_masked_on_the_technician_socket(station: _ApiStore) -> None:
    scanner = front(station.api)
    live = subprocess.Popen(
        [CARDDAEMON, "scans", "--scans-only", "--json", "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=station.env(),
    )
    try:
        deadline = time.monotonic() + 30
        while live.poll() is None and time.monotonic() < deadline:
            scanner.inject(WECHAT.encode(), aim="]Q1")  # until the watcher is subscribed
            time.sleep(0.5)
        out, err = live.communicate(timeout=30)
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    assert live.returncode == 0, err
    (line,) = Run(0, out, err).lines()
    assert line["scan"]["text"] == WECHAT_MASKED
    assert line["scan"]["masked"] is True
    assert WECHAT not in out
    typo = station.run("scans", "back")
    assert typo.code == 2
    assert "SCANNER 'back': no such scanner (scanners: scanners/front)" in typo.err
