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
# it: point every test at the private pcscd of the ``private_pcscd`` fixture below (never the
# system one) before anything can make that call.
os.environ["PCSCLITE_CSOCK_NAME"] = f"/tmp/carddaemon-test-pcscd-{os.getpid()}/pcscd.comm"

from daemon.readers.pcsc import PcscBackend
from sim.backend import SimBackend
from sim.pcscd import CSOCK_ENV, PrivatePcscd
from sim.vpcd import VpcdBridge
from tests.pcscd_stack import READERS, Stack, make_readers

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


# --- the reader contract stack (tests/pcscd_stack.py): in-process sim, then real pcscd ---


@pytest.fixture(scope="session")
def private_pcscd() -> Iterator[PrivatePcscd]:
    """One private pcscd for the session (restart tests put it back as they found it)."""
    run_dir = os.path.dirname(os.environ[CSOCK_ENV])
    with PrivatePcscd([name for name, _ in READERS], run_dir=run_dir) as pcscd:
        yield pcscd
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(params=["sim", pytest.param("pcsc", marks=pytest.mark.pcscd)])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The contract stack on the in-process simulator, then on real pcscd + vpcd + pyscard."""
    readers = make_readers()
    if request.param == "sim":
        result = Stack("sim", SimBackend(readers), readers)
    else:
        pcscd: PrivatePcscd = request.getfixturevalue("private_pcscd")
        wanted = [name for name, _ in READERS]
        if not pcscd.running or [s.friendly_name for s in pcscd.slots] != wanted:
            pcscd.stop()
            pcscd.start(wanted)
        ports = [pcscd.slot(name).port for name, _ in READERS]
        bridge = VpcdBridge(zip(readers, ports, strict=True))
        result = Stack("pcsc", PcscBackend(), readers, pcscd, bridge)
        for i in range(len(readers)):  # pcscd may still think the last test's card is there
            result.wait_until(i, False)
    try:
        yield result
    finally:
        result.close()
