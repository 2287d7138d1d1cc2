"""``tiers``, ``issue``, ``erase``, ``replace``, ``hotlist`` and ``issue-batch`` over the issuer
socket, as subprocesses; the batch killed with SIGKILL mid-way and run again issues every card
exactly once."""

from __future__ import annotations

import csv
import os
import pty
import select
import signal
import subprocess
from pathlib import Path

from tests.cli.conftest import CARDDAEMON, Run, Store


def test_issue_erase_and_hotlist(store: Store) -> None:
    assert store.run("sim", "present", "front", "blank").code == 0
    try:
        tiers = store.run("tiers", "--json").json()
        assert [t["name"] for t in tiers["tiers"]] == ["普通会员", "银卡", "金卡", "白金卡"]
        wrong = store.run("issue", "front", "--member", "8800000900", "--tier", "gold")
        assert wrong.code == 2
        assert "--tier 'gold': not a tier of this store (tiers: 0 普通会员, 1 银卡" in wrong.err
        money = store.run(
            "issue", "front", "--member", "8800000900", "--tier", "1", "--balance", "1.234"
        )
        assert money.code == 2
        assert "--balance '1.234'" in money.err
        issued = store.run(
            "issue", "front", "--member", "8800000900", "--tier", "银卡", "--balance", "12.50",
            "--json",
        )  # fmt: skip
        assert issued.code == 0, issued.err
        card = issued.json()["card"]
        assert (card["uid"], card["balance"]["amount_fen"]) == ("9E1A4B03", "1250")
        again = store.run(
            "issue", "front", "--member", "8800000900", "--tier", "银卡", "--balance", "12.50"
        )
        assert again.code == 0
        assert "already done by an earlier run: nothing written twice" in again.out
        held = store.run("erase", "front", "--uid", "9E1A4B03")
        assert held.code == 2
        assert "1250 fen" in held.err
        assert store.run("erase", "front", "--uid", "9E1A4B03", "--force").code == 0
        added = store.run("hotlist", "add", "9E1A4B03", "--reason", "lost", "--note", "t")
        assert added.code == 0
        listed = store.run("hotlist", "list", "--json").json()["entries"]
        assert [(e["uid"], e["reason"]) for e in listed] == [("9E1A4B03", "HOTLIST_REASON_LOST")]
        bad = store.run("hotlist", "add", "9E1A4B03", "--reason", "gone")
        assert bad.code == 2
        assert "--reason: invalid choice: 'gone' (choose from 'lost', 'stolen', 'fraud'" in bad.err
        assert store.run("hotlist", "remove", "9E1A4B03", "--note", "found").code == 0
        assert store.run("hotlist", "list").out.strip().endswith("the hotlist is empty")
    finally:
        store.run("sim", "remove", "front")


def _batch(store: Store, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CARDDAEMON, "issue-batch", str(path), "--reader", "front", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=store.env(),
    )


def test_a_batch_killed_mid_way_and_run_again_issues_every_card_exactly_once(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    # what Excel writes for "CSV UTF-8": a BOM and CRLF
    path.write_bytes(
        "\ufeffmember_id,tier,balance_yuan\r\n8800000801,金卡,10\r\n8800000802,0,\r\n".encode()
    )
    blanks = iter(["blank", "blank-2"])
    first = _batch(store, path)
    assert first.stdout is not None
    killed_after = None
    for line in first.stdout:
        if '"STATE_WAITING_FOR_CARD"' in line:
            assert store.run("sim", "swap", "front", next(blanks)).code == 0
        if '"STATE_ISSUED"' in line:
            killed_after = line
            first.send_signal(signal.SIGKILL)  # the laptop's lid, a crash: no goodbye
            break
    first.wait(30)
    assert killed_after is not None
    assert first.returncode == -signal.SIGKILL
    first.stdout.close()
    assert first.stderr is not None
    first.stderr.close()
    store.run("sim", "remove", "front")
    second = _batch(store, path)
    assert second.stdout is not None
    events = []
    for line in second.stdout:
        events.append(line)
        if '"STATE_WAITING_FOR_CARD"' in line:
            assert store.run("sim", "swap", "front", next(blanks)).code == 0
    assert second.wait(60) == 0
    second.stdout.close()
    assert second.stderr is not None
    second.stderr.close()
    states = [e.split('"state":"')[1].split('"')[0] for e in events if '"state"' in e]
    assert states[0] == "STATE_SKIPPED"  # the card issued before the kill
    assert states[-1] == "STATE_ISSUED"
    with open(tmp_path / "members.csv.results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["member_id"], r["uid"], r["status"]) for r in rows] == [
        ("8800000801", "9E1A4B03", "issued"),
        ("8800000802", "9E1A4B04", "issued"),
    ]
    for member in ("8800000801", "8800000802"):
        history = store.run("card", "history", "--member", member, "--json").json()["entries"]
        issues = [
            e for e in history if e["type"] == "OPERATION_TYPE_ISSUE" and e["member_id"] == member
        ]
        assert len(issues) == 1, history
    store.run("sim", "remove", "front")
    for uid in ("9E1A4B03", "9E1A4B04"):  # blank again for the other tests of this module
        store.run("sim", "present", "front", "blank" if uid.endswith("3") else "blank-2")
        store.run("erase", "front", "--uid", uid, "--force")
        store.run("sim", "remove", "front")


def test_on_a_terminal_the_batch_shows_a_progress_bar_with_rate_and_eta(
    store: Store, tmp_path: Path
) -> None:
    """A real pseudo-terminal, as at the issuing desk: rich draws the bar on stderr."""
    path = tmp_path / "one.csv"
    path.write_text("member_id\n8800000601\n", encoding="utf-8")
    assert store.run("sim", "swap", "front", "blank").code == 0
    main, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [CARDDAEMON, "issue-batch", str(path), "--reader", "front"],
            stdin=child,
            stdout=child,
            stderr=child,
            env={**store.env(), "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(child)
        seen = b""
        while True:
            ready, _, _ = select.select([main], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(30) == 0
    finally:
        os.close(main)
    text = seen.decode("utf-8", "replace")
    assert "1/1" in text
    assert "cards/min" in text
    assert "ETA" in text
    assert "1 of 1 issued, 0 failed" in text
    store.run("erase", "front", "--uid", "9E1A4B03", "--force")
    store.run("sim", "remove", "front")


def test_a_bad_batch_file_lists_every_mistake_and_issues_nothing(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "member_id,tier,valid_until\n,gold,2028-13-01\n8800000701,2,\n", encoding="utf-8"
    )
    done: Run = store.run("issue-batch", str(path), "--reader", "front")
    assert done.code == 2
    assert "3 bad field(s), nothing issued" in done.err
    assert "line 2 member_id" in done.err
    assert "line 2 tier 'gold': not a tier of this store" in done.err
    assert "line 2 valid_until '2028-13-01': give a date as YYYY-MM-DD" in done.err
    assert not (tmp_path / "bad.csv.results.csv").exists()
    missing = store.run("issue-batch", str(tmp_path / "none.csv"), "--reader", "front")
    assert missing.code == 2
    assert "no such file" in missing.err
    zero = store.run("issue-batch", str(path), "--reader", "front", "--card-timeout", "0")
    assert (zero.code, zero.err.strip()) == (
        2,
        "carddaemon issue-batch: --card-timeout 0: give 1..120 seconds",
    )
    one = tmp_path / "one.csv"
    one.write_text("member_id\n8800000702\n", encoding="utf-8")
    store.run("sim", "remove", "front")
    waited = store.run("issue-batch", str(one), "--reader", "front", "--card-timeout", "1")
    assert waited.code == 1  # nobody laid a card: the batch stops, saying how to go on
    assert "no blank card presented within 1 s" in waited.err
    assert "run the same command again to go on" in waited.err


def test_replace_moves_the_member_to_a_new_card_and_blocks_the_old_one(store: Store) -> None:
    tiers = store.run("tiers")
    golden = Path(__file__).with_name("golden") / "tiers.txt"
    assert (tiers.code, tiers.out) == (0, golden.read_text(encoding="utf-8"))
    assert store.run("sim", "swap", "front", "blank").code == 0
    try:
        issued = store.run(
            "issue", "front", "--member", "8800000300", "--tier", "0", "--balance", "5"
        )
        assert issued.code == 0, issued.err
        assert store.run("sim", "swap", "front", "blank-2").code == 0
        replaced = store.run("replace", "front", "9e1a4b03", "--json")
        assert replaced.code == 0, replaced.err
        done = replaced.json()
        assert (done["old_uid"], done["card"]["uid"]) == ("9E1A4B03", "9E1A4B04")
        assert done["card"]["member_id"] == "8800000300"
        assert done["card"]["balance"]["amount_fen"] == "500"
        listed = store.run("hotlist", "list", "--json").json()["entries"]
        assert ("9E1A4B03", "HOTLIST_REASON_REPLACED") in [(e["uid"], e["reason"]) for e in listed]
        unknown = store.run("replace", "front", "04FFFFFF")
        assert unknown.code == 2
        assert "MEMBER_NOT_FOUND" in unknown.err
    finally:
        store.run("sim", "remove", "front")
