"""``carddaemon-sim serve`` tells the truth: "serving" only once pcscd's vpcd has spoken to it;
nothing listening (no pcscd) and a vpcd slot held by another simulator are said, exit 1."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from sim.pcscd import PrivatePcscd
from tests.api.conftest import BIN

SIM = str(BIN / "carddaemon-sim")


def _serve(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIM, "serve", "--port", str(port), "--wait", "1", *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nothing_listening_on_the_vpcd_port_is_said() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    done = _serve(port)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"carddaemon-sim serve: nothing listens on vpcd port 127.0.0.1:{port} (Connection "
        "refused): is pcscd running with the vsmartcard vpcd driver (Debian: pcscd "
        "vsmartcard-vpcd)?\n"
    )


def test_a_port_that_accepts_but_never_speaks_is_said() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        done = _serve(mute.getsockname()[1])
    assert done.returncode == 1
    assert "accepts connections but no vpcd speaks on it" in done.stderr
    assert "serving" not in done.stdout


@pytest.mark.pcscd
def test_serving_through_real_pcscd_and_a_slot_already_taken(
    private_pcscd: PrivatePcscd,
) -> None:
    slot = private_pcscd.slots[0]
    with subprocess.Popen(
        [SIM, "serve", "--uid", "0A0B0C0D", "--port", str(slot.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as first:
        try:
            assert first.stdout is not None
            line = first.stdout.readline()
            assert line.startswith("serving a simulated acr1252u card (UID 0A0B0C0D) to vpcd at")
            started = time.monotonic()
            second = _serve(slot.port, "--uid", "01020304")
            assert second.returncode == 1, second.stdout
            assert "another card simulator holds this vpcd slot" in second.stderr
            assert time.monotonic() - started < 10
        finally:
            first.terminate()
            first.communicate(timeout=10)
