"""`make run`: `carddaemon-demo serve`, the daemon on the simulated store, as a real process."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon.journal import Journal

BIN = Path(sys.executable).parent


def _start(folder: Path) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [str(BIN / "carddaemon-demo"), "serve", "--folder", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":
            break
    return process, lines


def test_make_run_serves_the_store_prints_working_commands_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "store"
    process, lines = _start(folder)
    try:
        assert lines[-1:] == ["ready"], lines
        text = "\n".join(lines)
        run = folder / "run"
        for role in ("pos", "technician", "issuer"):
            assert f"{role:<11} {run / f'{role}.sock'}" in text
            assert (run / f"{role}.sock").is_socket()
        assert "gold     9E1A4B01  on readers/front" in text
        assert "silver   9E1A4B02  on readers/back" in text
        assert "blank    9E1A4B03  in the drawer" in text
        commands = [line.strip() for line in lines if " --socket " in line]
        assert [c.split()[-1] for c in commands[:2]] == ["readers", "readers/front"]
        # the printed commands work as printed, from another terminal
        done = [
            subprocess.run(shlex.split(c), capture_output=True, text=True, timeout=60, check=False)
            for c in commands
        ]
        assert [d.returncode for d in done] == [0] * len(commands), [d.stderr for d in done]
        assert "9E1A4B01" in done[0].stdout  # the card on readers/front, in the readers table
        assert "金卡" in done[1].stdout
        assert "¥500.00" in done[1].stdout
        assert "presented blank (9E1A4B03) on readers/back" in done[-1].stdout
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip().endswith("stopped")
    assert "Traceback" not in err
    assert not any(run.iterdir())  # the sockets are gone
    with Journal(folder / "state" / "journal.sqlite3") as journal:
        assert journal.pending() == []  # no intent left open


def test_a_folder_of_an_earlier_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "carddaemon.toml").write_text("# an earlier run\n", encoding="utf-8")
    done = subprocess.run(
        [str(BIN / "carddaemon-demo"), "serve", "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not an empty folder" in done.stderr
    assert (tmp_path / "carddaemon.toml").read_text(encoding="utf-8") == "# an earlier run\n"


def test_the_story_is_still_there() -> None:
    done = subprocess.run(
        [str(BIN / "carddaemon-demo"), "story", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "--realtime" in done.stdout
