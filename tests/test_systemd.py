"""systemd/: the unit passes `systemd-analyze verify` with no warning and scores an exposure of
at most 1.5 (the same ``systemd/check.sh`` that ``make systemd`` runs), and the check really
fails on a warning and on a weaker sandbox; sysusers/tmpfiles files apply in a scratch root;
the udev rules name the daemon's group with well-formed ids; the polkit rule allows exactly
the carddaemon user the two pcsc-lite actions (run in Node.js against a stand-in ``polkit``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.api.settings import ApiConfig

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "carddaemon.service"
CHECK = SYSTEMD / "check.sh"
BINARY = Path(sys.executable).parent / "carddaemon"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _check(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), str(unit), str(BINARY)], capture_output=True, text=True, timeout=120
    )


def _unit_lines() -> list[str]:
    return UNIT.read_text(encoding="utf-8").splitlines()


@needs_analyze
def test_unit_verifies_without_warnings_and_exposure_at_most_1_5() -> None:
    done = _check(UNIT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no warnings" in done.stdout
    exposure = re.search(r"exposure ([0-9.]+) \(max 1\.5\)", done.stdout)
    assert exposure is not None, done.stdout
    assert float(exposure.group(1)) <= 1.5


@needs_analyze
def test_check_fails_on_a_mistyped_key(tmp_path: Path) -> None:
    bad = tmp_path / "carddaemon.service"
    bad.write_text(UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs="), encoding="utf-8")
    done = _check(bad)
    assert done.returncode == 1
    assert "WatchdogSecs" in done.stderr


@needs_analyze
def test_check_fails_on_a_weaker_sandbox(tmp_path: Path) -> None:
    weak = tmp_path / "carddaemon.service"
    kept = [
        line
        for line in _unit_lines()
        if not line.startswith(("ProtectSystem=", "SystemCallFilter=", "ProtectHome="))
    ]
    weak.write_text("\n".join(kept) + "\n", encoding="utf-8")
    done = _check(weak)
    assert done.returncode == 1
    assert "is above 1.5" in done.stderr


def test_unit_has_the_settings_the_daemon_relies_on() -> None:
    lines = set(_unit_lines())
    for wanted in (
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "WatchdogSec=30s",
        "LoadCredential=carddaemon-keys:/etc/carddaemon/keys.toml",
        "RuntimeDirectory=carddaemon",
        "StateDirectory=carddaemon",
        "UMask=0027",
        "ExecStart=/usr/bin/carddaemon serve --config /etc/carddaemon/carddaemon.toml",
        "DevicePolicy=closed",
        "DeviceAllow=char-usb_device rw",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-hidraw rw",
    ):
        assert wanted in lines, wanted
    assert not any(line.startswith(("PrivateDevices=", "PrivateUsers=")) for line in lines)
    # the sockets live where [api] runtime_dir points by default
    assert ApiConfig().runtime_dir == Path("/run/carddaemon")


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or os.geteuid() != 0,
    reason="needs systemd-sysusers/tmpfiles and root (chown in a scratch root)",
)
def test_sysusers_and_tmpfiles_apply_in_a_scratch_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "sysusers.d/carddaemon.conf")],
        check=True,
        capture_output=True,
    )
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    user = next(line.split(":") for line in passwd if line.startswith("carddaemon:"))
    assert user[6] == "/usr/sbin/nologin"
    groups = {
        line.split(":")[0]: line.split(":")[3]
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    for role in ("carddaemon-pos", "carddaemon-tech", "carddaemon-issuer"):
        assert groups[role] == "carddaemon", role  # the daemon may chown its sockets
    subprocess.run(
        [
            "systemd-tmpfiles",
            f"--root={tmp_path}",
            "--create",
            str(SYSTEMD / "tmpfiles.d/carddaemon.conf"),
        ],
        check=True,
        capture_output=True,
    )
    state = (tmp_path / "var/lib/carddaemon").stat()
    assert state.st_uid == int(user[2])
    assert oct(state.st_mode & 0o777) == "0o750"


_RULE_KEY = re.compile(r'^(?P<key>[A-Z_]+(?:\{[A-Za-z_]+\})?)(?P<op>==|!=|\+=|=|:=)"(?P<v>[^"]*)"$')


def test_udev_rules_give_the_daemons_group_known_ids_with_their_source() -> None:
    text = (SYSTEMD / "udev/70-carddaemon.rules").read_text(encoding="utf-8")
    assert "linux-usb.org/usb.ids" in text  # where the ids come from
    rules = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    ids = set()
    for rule in rules:
        fields = {}
        for part in (p.strip() for p in rule.split(", ")):
            match = _RULE_KEY.match(part)
            assert match is not None, f"not a udev key: {part!r} in {rule!r}"
            fields[match["key"]] = match["v"]
        if "GROUP" not in fields:
            continue
        assert fields["GROUP"] == "carddaemon"
        assert fields["MODE"] in ("0660", "0640")
        vendor = fields.get("ATTR{idVendor}") or fields.get("ATTRS{idVendor}")
        assert vendor is not None, rule
        assert re.fullmatch(r"[0-9a-f]{4}", vendor), rule
        product = fields.get("ATTR{idProduct}") or fields.get("ATTRS{idProduct}")
        if product is not None:
            assert re.fullmatch(r"[0-9a-f]{4}", product), rule
            ids.add(f"{vendor}:{product}")
    assert "0c2e:0b61" in ids  # the HID-POS scanner of docs/scanners.md
    assert "04b8:0202" in ids  # an Epson TM-T88 receipt printer


_POLKIT_HARNESS = """
const fs = require("fs");
let rule = null;
const polkit = {
  Result: { YES: "yes", NO: "no", NOT_HANDLED: null },
  addRule(fn) { rule = fn; },
};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map(([id, user]) => rule({ id }, { user }))));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_polkit_rule_allows_only_carddaemon_the_pcsc_actions() -> None:
    cases = [
        ["org.debian.pcsc-lite.access_pcsc", "carddaemon"],
        ["org.debian.pcsc-lite.access_card", "carddaemon"],
        ["org.debian.pcsc-lite.access_pcsc", "nobody"],
        ["org.freedesktop.login1.reboot", "carddaemon"],
    ]
    done = subprocess.run(
        [
            "node",
            "-e",
            _POLKIT_HARNESS,
            str(SYSTEMD / "polkit/50-carddaemon-pcscd.rules"),
            json.dumps(cases),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == ["yes", "yes", None, None]
