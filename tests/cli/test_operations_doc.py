"""docs/operations.md's "Store IT walkthrough" stays true: every command line in its ``sh``
boxes is run, in order, as a real ``carddaemon`` process against a daemon on the simulated
store (the station and its listeners in this process, so the test can cut a receipt off
mid-print as a pulled cable would), and must exit as the doc says (``# exit N``, else 0)."""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
import time
from pathlib import Path

from daemon.api.v1 import printer_service_pb2_grpc as pg
from tests.api.conftest import Api
from tests.api.test_printers import uncertain_job
from tests.cli.conftest import CARDDAEMON

DOC = Path(__file__).parents[2] / "docs" / "operations.md"
_BLOCK = re.compile(
    r"(^<!-- test: (?P<note>[^\n]*) -->\n\s*)?^```(?P<lang>sh|csv)\n(?P<body>.*?)^```",
    re.S | re.M,
)


def walkthrough() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Store IT walkthrough")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _feed_blanks(api: Api, members: list[str], stop: threading.Event) -> None:
    """An operator laying blank cards: the next one once the previous member has a card."""
    journal = api.station.journal
    assert journal is not None
    for member, card in zip(members[:-1], ["blank-2"], strict=False):
        while not stop.is_set() and journal.bound_uid(member) is None:
            time.sleep(0.05)
        if stop.is_set():
            return
        subprocess.run([CARDDAEMON, "sim", "swap", "front", card], check=True, env=_env(api))


def _env(api: Api) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("CARDDAEMON_SOCKET", "COLUMNS")}
    env["CARDDAEMON_RUN_DIR"] = str(api.run_dir)
    return env


def test_every_command_of_the_walkthrough_runs_as_the_doc_says(api: Api, tmp_path: Path) -> None:
    config = api.run_dir.parent / "carddaemon.toml"
    assert config.is_file()
    ran = 0
    pos = pg.PrinterServiceStub(api.channel("pos"))
    csv_text = ""
    for block in _BLOCK.finditer(walkthrough()):
        note = block.group("note") or ""
        if block.group("lang") == "csv":
            csv_text = block.group("body")
            continue
        stop = threading.Event()
        feeder: threading.Thread | None = None
        if note.startswith("two receipts cut off"):
            assert uncertain_job(pos, api, "doc-1").endswith("/jobs/2")
            assert uncertain_job(pos, api, "doc-2").endswith("/jobs/3")
        elif note.startswith("the member card gold"):
            subprocess.run([CARDDAEMON, "sim", "swap", "front", "gold"], check=True, env=_env(api))
        elif note.startswith("blank cards"):
            (tmp_path / "new-members.csv").write_text(csv_text, encoding="utf-8")
            subprocess.run([CARDDAEMON, "sim", "swap", "front", "blank"], check=True, env=_env(api))
            members = [line.split(",")[0] for line in csv_text.splitlines()[1:]]
            feeder = threading.Thread(target=_feed_blanks, args=(api, members, stop))
            feeder.start()
        else:
            assert not note, f"a test note this test does not know: {note!r}"
        try:
            for line in block.group("body").splitlines():
                command, _, comment = line.partition("#")
                want = int(m.group(1)) if (m := re.search(r"exit (\d)", comment)) else 0
                argv = shlex.split(command.replace("/etc/carddaemon/carddaemon.toml", str(config)))
                assert argv[0] == "carddaemon", line
                done = subprocess.run(
                    [CARDDAEMON, *argv[1:]],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                    cwd=tmp_path,
                    env=_env(api),
                )
                assert done.returncode == want, f"{line}\n{done.stdout}\n{done.stderr}"
                assert "Traceback" not in done.stderr
                ran += 1
        finally:
            stop.set()
            if feeder is not None:
                feeder.join(30)
    assert ran >= 20
    results = (tmp_path / "new-members.csv.results.csv").read_text(encoding="utf-8")
    assert results.count(",issued,") == 2
    assert (tmp_path / "suspect-9E1A4B01.json").is_file()
