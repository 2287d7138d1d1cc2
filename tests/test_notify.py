"""sd_notify and the watchdog against a real ``NOTIFY_SOCKET`` datagram socket bound by the test
(no mock), with a real ``carddaemon serve`` process on the simulated store: READY=1 with a
STATUS= line once the sockets exist, WATCHDOG=1 at half of WATCHDOG_USEC, no ping while a
reader worker is wedged (and pings again once it is free), STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.systemd import MIN_STALE_S, Notifier
from tests.api.conftest import store_folder

LAUNCHER = Path(__file__).with_name("wedgeable_serve.py")
WATCHDOG_USEC = 400_000  # pings every 0.2 s


class NotifySocket:
    """The datagram socket systemd would bind; ``messages`` as (monotonic time, fields)."""

    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-socket")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key: str, timeout_s: float = 30.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, fields in self.messages:
                if key in fields:
                    return fields
            time.sleep(0.02)
        raise AssertionError(f"no {key} in {self.messages}")

    def pings(self, since: float, until: float | None = None) -> list[float]:
        end = until if until is not None else float("inf")
        return [t for t, f in self.messages if "WATCHDOG" in f and since <= t <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    try:
        yield sock
    finally:
        sock.close()


def _serve(config: Path, notify: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC=str(WATCHDOG_USEC))
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def test_ready_status_watchdog_wedge_and_stopping(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    config = store_folder(tmp_path / "store")
    process = _serve(config, tmp_path / "notify.sock")
    output: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    drain = threading.Thread(target=lambda: output.extend(stdout), name="serve-stdout")
    drain.start()
    try:
        ready = notify_socket.wait_for("READY")
        # READY only after every listener is bound
        for role in ("pos", "technician", "issuer"):
            assert (config.parent / "run" / f"{role}.sock").exists(), role
        assert ready["READY"] == "1"
        assert "reader(s)" in ready["STATUS"]
        assert "printer(s) up" in ready["STATUS"]
        assert "scanner(s) up" in ready["STATUS"]

        # healthy: pings at about half of WATCHDOG_USEC
        start = time.monotonic()
        time.sleep(1.5)
        healthy = notify_socket.pings(start)
        assert len(healthy) >= 4, notify_socket.messages
        gaps = [b - a for a, b in itertools.pairwise(healthy)]
        assert max(gaps) < 0.6, gaps
        status = [f["STATUS"] for _, f in notify_socket.messages if "STATUS" in f]
        assert any(s.startswith("2 reader(s)") for s in status), status

        # a wedged reader worker: the pings stop (systemd would restart the daemon)
        process.send_signal(signal.SIGUSR1)
        wedged_at = time.monotonic()
        time.sleep(MIN_STALE_S + 2.0)
        late = notify_socket.pings(wedged_at + MIN_STALE_S + 0.5)
        assert late == [], f"still pinging with a wedged worker: {late}"
        reasons = [
            f["STATUS"] for t, f in notify_socket.messages if t >= wedged_at and "STATUS" in f
        ]
        assert any("unhealthy" in r and "wedged" in r for r in reasons), reasons
        assert process.poll() is None  # the daemon itself still runs: only systemd kills it

        # the job ends: pings again
        process.send_signal(signal.SIGUSR2)
        freed_at = time.monotonic()
        time.sleep(1.5)
        assert len(notify_socket.pings(freed_at)) >= 3, notify_socket.messages

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert notify_socket.wait_for("STOPPING")["STOPPING"] == "1"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        drain.join(10)
        stdout.close()
    assert "wedged readers/front" in "".join(output)


def test_abstract_socket_and_fields(tmp_path: Path) -> None:
    name = f"@carddaemon-test-{os.getpid()}"
    sock = NotifySocket("\0" + name[1:])
    try:
        notifier = Notifier({"NOTIFY_SOCKET": name})
        assert notifier.enabled
        assert notifier.watchdog_s is None
        notifier.ready("1 reader(s),\n 0/0 printer(s) up")
        notifier.status("1 reader(s),\n 0/0 printer(s) up")  # unchanged: not sent again
        notifier.stopping()
        sock.wait_for("STOPPING")
        fields = [f for _, f in sock.messages]
        assert fields[0] == {"READY": "1", "STATUS": "1 reader(s), 0/0 printer(s) up"}
        assert fields[1] == {"STOPPING": "1", "STATUS": "stopping"}
        assert len(fields) == 2
    finally:
        sock.close()


def test_no_socket_is_a_no_op_and_watchdog_for_another_pid() -> None:
    quiet = Notifier({})
    assert not quiet.enabled
    assert quiet.send("READY=1") is False
    asyncio.run(quiet.keep_alive(lambda _s: []))  # returns at once
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})  # fmt: skip
    assert other.watchdog_s is None
    mine = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000"})
    assert mine.watchdog_s == 0.5
    assert mine.send("READY=1") is False  # nobody listening: logged, never raised
