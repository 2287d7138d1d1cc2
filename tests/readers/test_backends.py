"""Backend registry: lazy imports, unknown names named, the sim backend scriptable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daemon import registry
from daemon.errors import ConfigError, InvalidArgument, PcscUnavailable, ReaderUnavailable
from daemon.readers.backends import ReaderBackend, create_backend
from daemon.readers.connection import ClosesOnExit
from daemon.readers.monitor import ReaderMonitor
from daemon.readers.pcsc import PcscBackend
from daemon.readers.storage import StorageCard
from daemon.readers.workers import ReaderPool, ReaderWorker
from sim.backend import SimBackend
from sim.reader import SimReader
from sim.store import transport_card
from sim.vpcd import VpcdBridge


def test_importing_the_daemon_does_not_import_pyscard() -> None:
    code = (
        "import sys\n"
        "import daemon, daemon.readers, daemon.readers.backends, daemon.readers.pcsc\n"
        "import daemon.readers.monitor, daemon.readers.atr\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('smartcard', 'sim'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unknown_backend_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        create_backend("pcsc-lite")
    assert err.value.key == "readers.backend"
    assert "pcsc-lite" in str(err.value)
    assert "pcsc, sim" in str(err.value)


def test_registry_creates_both_backends() -> None:
    assert registry.names("readers") == ("pcsc", "sim")
    reader = SimReader("R 00 00")
    sim = create_backend("sim", readers=[reader])
    try:
        assert isinstance(sim, SimBackend)
        assert isinstance(sim, ReaderBackend)
        assert sim.list_readers() == ["R 00 00"]
    finally:
        sim.close()
    pcsc = create_backend("pcsc")
    try:
        assert isinstance(pcsc, ReaderBackend)
    finally:
        pcsc.close()


def test_sim_backend_scripting_and_bad_input() -> None:
    a, b = SimReader("A 00 00"), SimReader("B 00 00")
    backend = SimBackend([a])
    backend.add_reader(b)
    with pytest.raises(InvalidArgument, match="already attached"):
        backend.add_reader(SimReader("A 00 00"))
    with pytest.raises(ReaderUnavailable, match="nobody"):
        backend.reader("nobody")
    b.insert(transport_card())
    states = backend.wait_for_change(None, 0)
    assert states["B 00 00"].present
    assert not states["A 00 00"].present
    b.unplug()
    assert backend.list_readers() == ["A 00 00"]
    with pytest.raises(ReaderUnavailable, match="unplugged"):
        backend.connect("B 00 00")
    backend.stop_service()
    with pytest.raises(PcscUnavailable):
        backend.list_readers()
    backend.start_service()
    assert backend.list_readers() == ["A 00 00"]
    backend.close()
    with pytest.raises(PcscUnavailable):
        backend.list_readers()


def test_every_reader_side_object_closes_on_exit_and_twice() -> None:
    """The lifecycle promise: ``with`` closes it, a second ``close()`` is harmless, and no
    thread or socket outlives it (the autouse leak guard checks that part)."""
    reader = SimReader("R 00 00")
    reader.insert(transport_card())
    backend = SimBackend([reader])
    handle = reader.connect()
    objects: list[ClosesOnExit] = [
        PcscBackend(),
        backend,
        backend.connect("R 00 00"),
        handle,
        StorageCard(reader.connect()),
        ReaderWorker("R 00 00", reader.connect),
        ReaderPool(backend.connect),
        ReaderMonitor(backend),
        VpcdBridge(),
    ]
    for obj in objects:
        with obj as entered:
            assert entered is obj
        obj.close()
    with pytest.raises(PcscUnavailable):
        backend.list_readers()
    with pytest.raises(ReaderUnavailable, match="closed"):
        handle.transmit(bytes.fromhex("FFCA000000"))  # GET DATA UID on a closed handle
