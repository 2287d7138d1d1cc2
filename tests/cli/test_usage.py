"""What every command owes its user whatever they type: ``--help`` with a line for each
argument, ``--version``, exit 3 with no daemon, a quiet end on a closed pipe, never a
traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from daemon.cli import build_parser
from tests.cli.conftest import CARDDAEMON, Store

#: commands that call the daemon (every one of them must say "no daemon" the same way)
CLIENT_COMMANDS = [
    ["readers"],
    ["watch"],
    ["probe", "front"],
    ["dump", "front"],
    ["selftest", "front"],
    ["trace", "front"],
    ["card", "history", "9E1A4B01"],
    ["tiers"],
    ["issue", "front", "--member", "1", "--tier", "0"],
    ["issue-batch", "x.csv", "--reader", "front"],
    ["erase", "front", "--uid", "9E1A4B01"],
    ["replace", "front", "9E1A4B01"],
    ["hotlist", "list"],
    ["printers"],
    ["print-test"],
    ["jobs"],
    ["reprint", "1"],
    ["confirm-printed", "1"],
    ["drawer", "open"],
    ["scans"],
]


def _leaves(
    parser: argparse.ArgumentParser, path: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    found = []
    for name, child in subs[0].choices.items():
        found.extend(_leaves(child, [*path, name]))
    return found


def test_every_argument_of_every_command_has_a_help_line_and_choices_are_listed() -> None:
    for path, parser in _leaves(build_parser(), []):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            where = f"carddaemon {' '.join(path)} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no help line"
        text = parser.format_help()
        for action in parser._actions:
            if action.choices and not isinstance(action, argparse._SubParsersAction):
                assert all(str(c) in text for c in action.choices), path


def test_version_and_help_as_real_commands() -> None:
    version = subprocess.run([CARDDAEMON, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0
    assert version.stdout.startswith("carddaemon 0.")
    helped = subprocess.run(
        [CARDDAEMON, "issue", "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0
    for flag in ("READER", "--member", "--tier", "--balance", "--valid-until", "--json"):
        assert flag in helped.stdout


def test_no_daemon_is_exit_3_for_every_client_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARDDAEMON_SOCKET"}
    env["CARDDAEMON_RUN_DIR"] = str(tmp_path / "run")
    running = [  # all at once: each is a Python start-up
        subprocess.Popen(
            [CARDDAEMON, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for argv in CLIENT_COMMANDS
    ]
    for argv, process in zip(CLIENT_COMMANDS, running, strict=True):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 3, (argv, err)
        assert err.startswith(f"carddaemon {argv[0]}"), err
        assert "no daemon on " in err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["probe"], "READER is required"),
        (["hotlist", "add", "X", "--reason", "gone"], "argument --reason: invalid choice: 'gone'"),
        (["scans", "--kind", "coupon"], "argument --kind: invalid choice: 'coupon'"),
        (["dump", "front", "--format", "png"], "argument --format: invalid choice: 'png'"),
        (["trace", "front", "--limit", "-1"], "argument --limit: '-1' is not a whole number"),
    ],
)
def test_a_wrong_flag_value_names_the_flag_and_exits_2(
    store: Store, argv: list[str], said: str
) -> None:
    done = store.run(*argv)
    assert done.code == 2
    assert said in done.err


def test_a_closed_pipe_ends_quietly(store: Store) -> None:
    """``carddaemon watch | head -1``: the reader of stdout goes away; no traceback, exit 0."""
    done = subprocess.run(
        f"{CARDDAEMON} watch | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
        env=store.env(),
        check=False,
    )
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""
    assert done.returncode == 0
    table = subprocess.run(
        f"{CARDDAEMON} dump --all front 2>&1 | head -1",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
        env=store.env(),
        check=False,
    )
    assert "Traceback" not in table.stdout
