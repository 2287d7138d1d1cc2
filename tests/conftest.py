"""Shared fixtures. The autouse leak guard fails any test that leaves threads or sockets behind."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

# libpcsclite reads PCSCLITE_CSOCK_NAME once, at the first PC/SC call of the process, and caches
# it: point every test at the private pcscd of tests/fixtures_pcscd.py (never the system one)
# before anything can make that call.
os.environ["PCSCLITE_CSOCK_NAME"] = f"/tmp/carddaemon-test-pcscd-{os.getpid()}/pcscd.comm"

# python-escpos makes a temp dir in every process that imports it (``mkdtemp()`` is evaluated even
# when ESCPOS_CAPABILITIES_PICKLE_DIR is set) and never removes it: 25+ dirs per run. Subprocesses
# get TMPDIR = one dir per run, removed at the end; this process keeps the system temp dir (pytest's
# tmp_path lives there) except while it imports escpos here, once.
_RUN_TMP = tempfile.mkdtemp(prefix="carddaemon-test-tmp-")
_SYSTEM_TMP = tempfile.gettempdir()
os.environ["TMPDIR"] = _RUN_TMP
tempfile.tempdir = _RUN_TMP
import escpos.capabilities  # noqa: E402,F401

tempfile.tempdir = _SYSTEM_TMP


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RUN_TMP, ignore_errors=True)


def _open_sockets() -> set[str]:
    found: set[str] = set()
    fd_dir = "/proc/self/fd"
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{name}->{target}")
    return found


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads or sockets behind (session-scoped fixtures excepted)."""
    threads_before = _live_threads()
    sockets_before = _open_sockets()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    deadline = time.monotonic() + 2.0
    while True:
        new_threads = _live_threads() - threads_before
        new_sockets = _open_sockets() - sockets_before
        if not new_threads and not new_sockets:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    problems = []
    if new_threads:
        problems.append("threads left running: " + ", ".join(sorted(t.name for t in new_threads)))
    if new_sockets:
        problems.append(f"sockets left open: {len(new_sockets)}")
    pytest.fail("; ".join(problems))
