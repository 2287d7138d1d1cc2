"""A private ``pcscd`` with vpcd readers, isolated from any system pcscd (tests, benches, demo).

pcsc-lite 1.9.9's server socket path (``/run/pcscd/pcscd.comm``) is fixed at compile time, so
:class:`PrivatePcscd` runs ``pcscd`` in a private mount namespace (``unshare --mount``) with a
tmpfs on ``/run`` and our own directory bind-mounted on ``/run/pcscd``: the socket appears in that
directory, the host's ``/run/pcscd`` is never touched, and real USB readers are not picked up
(no ``/run/udev`` inside). Its ``reader.conf.d`` holds one vpcd entry per simulated reader, each
on its own free TCP port pair (vpcd always creates two slots; we use slot ``00``) and with its
own copy of the driver (ifd-vpcd cannot serve two entries from one loaded copy).

Clients reach it through ``PCSCLITE_CSOCK_NAME``. libpcsclite 1.9.9 reads that variable once,
on the first ``SCardEstablishContext`` of the process, and caches it: it must be set before
anything in the process talks to PC/SC (``tests/conftest.py`` does so at import time with a
per-run path; :func:`client_socket_path` returns it). Subprocesses get :meth:`client_env`.

Needs root (mount namespace, pcscd). vpcd listens on all interfaces: never on store PCs.

pcscd's log goes to ``pcscd.log`` in a private (0700) temporary directory that :meth:`close`
deletes. ``--apdu`` (every APDU in clear, LOAD KEY's key bytes included) is off unless
``log_apdus=True`` is asked for by hand; :meth:`PrivatePcscd.log_tail`, which error messages
quote, shows APDUs and responses through :func:`redact_apdu_log` (headers and status words only).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from daemon.errors import ConfigError, PcscUnavailable

__all__ = [
    "CSOCK_ENV",
    "VPCD_DRIVER",
    "PrivatePcscd",
    "VpcdSlot",
    "client_socket_path",
    "free_port_pair",
    "redact_apdu_log",
]

logger = logging.getLogger(__name__)

CSOCK_ENV = "PCSCLITE_CSOCK_NAME"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
_SOCKET_NAME = "pcscd.comm"
_START_TIMEOUT_S = 10.0


_APDU_LINE = re.compile(r"(APDU: (?:[0-9A-Fa-f]{2} ){4})[0-9A-Fa-f ]*")
_SW_LINE = re.compile(r"(SW: )((?:[0-9A-Fa-f]{2} )*)([0-9A-Fa-f]{2} [0-9A-Fa-f]{2} ?)$", re.M)


def redact_apdu_log(text: str) -> str:
    """pcscd ``--apdu`` lines with only the command header (CLA INS P1 P2) and the status word
    left: LOAD KEY data, trailer writes and trailer reads carry key bytes."""
    text = _APDU_LINE.sub(lambda m: m.group(1) + "..", text)
    return _SW_LINE.sub(lambda m: m.group(1) + (".. " if m.group(2) else "") + m.group(3), text)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the starting thread dies, so a test run killed
    half-way never leaves a pcscd (and its vpcd ports open on all interfaces) behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _pcscd_path() -> str:
    """pcscd lives in /usr/sbin, which a cron job's or a sanitised CI PATH leaves out."""
    return shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin") or "pcscd"


def client_socket_path() -> str | None:
    """The pcscd socket this process's libpcsclite will use (``None``: the system default)."""
    return os.environ.get(CSOCK_ENV)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - vpcd itself binds all interfaces
        except OSError:
            return False
    return True


def free_port_pair(exclude: Iterable[int] = ()) -> int:
    """A port ``p`` with ``p`` and ``p + 1`` free (vpcd opens one port per slot, two slots)."""
    taken = set(exclude)
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))  # noqa: S104
            port = int(s.getsockname()[1])
        if port >= 0xFFFF or port in taken or port + 1 in taken:
            continue
        if _bindable(port + 1):
            return port
    raise PcscUnavailable("no free TCP port pair for a vpcd reader")


@dataclass(frozen=True, slots=True)
class VpcdSlot:
    """One simulated reader: its reader.conf FRIENDLYNAME, TCP port and PC/SC reader name."""

    friendly_name: str
    port: int

    @property
    def reader_name(self) -> str:
        # pcsc-lite names a reader "<FRIENDLYNAME> <index> <slot>"; distinct friendly names
        # always get index 00 and we use slot 00.
        return f"{self.friendly_name} 00 00"

    def conf_entry(self, libpath: str = VPCD_DRIVER) -> str:
        return (
            f'FRIENDLYNAME "{self.friendly_name}"\n'
            f"DEVICENAME /dev/null:0x{self.port:X}\n"
            f"LIBPATH {libpath}\n"
            f"CHANNELID 0x{self.port:X}\n"
        )


class PrivatePcscd:
    """Start, kill and restart a private pcscd whose socket lives in ``run_dir``.

    Start it from a thread that outlives it (the main thread): pcscd is killed when the thread
    that started it ends, so that a crashed test run leaves no pcscd behind.

    ``readers`` are FRIENDLYNAMEs, one vpcd entry each. A reader keeps its port across
    restarts, so a vpcd bridge reconnects by itself; :meth:`restart` may drop readers (the
    only way a vpcd reader can "disappear": pcsc-lite 1.9.9 reads reader.conf.d at start only).
    """

    def __init__(
        self,
        readers: Sequence[str] = ("Virtual PCD",),
        *,
        run_dir: str | os.PathLike[str] | None = None,
        debug: bool = True,
        log_apdus: bool = False,
    ) -> None:
        if not readers:
            raise ConfigError("readers", "a private pcscd needs at least one reader")
        for name in readers:
            if not name or '"' in name or "\n" in name:
                raise ConfigError("readers", f"bad reader friendly name {name!r}")
        if len(set(readers)) != len(readers):
            raise ConfigError("readers", "reader friendly names must be distinct")
        self._slots: dict[str, VpcdSlot] = {}
        for name in readers:
            self._slots[name] = VpcdSlot(name, free_port_pair(self._used_ports()))
        self._base = Path(tempfile.mkdtemp(prefix="carddaemon-pcscd-"))  # 0700
        self._own_run_dir = run_dir is None
        self.run_dir = Path(run_dir) if run_dir is not None else self._base / "run"
        self.conf_dir = self._base / "reader.conf.d"
        self.log_path = self._base / "pcscd.log"
        self.debug = debug
        self.log_apdus = log_apdus
        self._active: tuple[str, ...] = tuple(readers)
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False

    # --- introspection -------------------------------------------------------------------

    @property
    def socket_path(self) -> str:
        return str(self.run_dir / _SOCKET_NAME)

    @property
    def slots(self) -> tuple[VpcdSlot, ...]:
        """Slots of the readers configured for the current (or next) run."""
        return tuple(self._slots[n] for n in self._active)

    def slot(self, friendly_name: str) -> VpcdSlot:
        try:
            return self._slots[friendly_name]
        except KeyError:
            raise ConfigError("readers", f"no vpcd reader named {friendly_name!r}") from None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def client_env(self) -> dict[str, str]:
        """Environment for a subprocess (``pcsc_scan``, a bench) that must use this pcscd."""
        return {**os.environ, CSOCK_ENV: self.socket_path}

    def log_tail(self, chars: int = 4000) -> str:
        """The end of pcscd's log, APDU data redacted (safe to put in an error message)."""
        try:
            return redact_apdu_log(self.log_path.read_text(errors="replace"))[-chars:]
        except OSError:
            return ""

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, readers: Sequence[str] | None = None) -> None:
        """Start pcscd (optionally with a subset of the known readers); wait for its socket."""
        if self._closed:
            raise PcscUnavailable("private pcscd is closed")
        if self.running:
            raise PcscUnavailable(f"private pcscd already running (pid {self.pid})")
        if readers is not None:
            for name in readers:
                self.slot(name)
            self._active = tuple(readers)
        self._write_conf()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (_SOCKET_NAME, "pcscd.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / stale).unlink()
        flags = "--foreground" + (" --debug" if self.debug else "")
        flags += " --apdu" if self.log_apdus else ""
        script = (
            "set -e; mount -t tmpfs tmpfs /run; mkdir /run/pcscd; "
            f"mount --bind {shlex.quote(str(self.run_dir))} /run/pcscd; "
            f"exec {shlex.quote(_pcscd_path())} {flags} -c {shlex.quote(str(self.conf_dir))}"
        )
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own paths
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
            )
        self._wait_socket()
        logger.info(
            "private pcscd pid %s socket %s readers %s",
            self._proc.pid,
            self.socket_path,
            ", ".join(f"{s.reader_name}@{s.port}" for s in self.slots),
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop pcscd (SIGTERM, or SIGKILL with ``kill=True`` as a crash would). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        logger.info("private pcscd pid %s stopped (%s)", proc.pid, "killed" if kill else "term")

    def restart(self, readers: Sequence[str] | None = None, *, kill: bool = True) -> None:
        """Kill and start again in a fresh namespace (same socket path, same ports)."""
        self.stop(kill=kill)
        self.start(readers)

    def close(self) -> None:
        """Stop pcscd and remove its temporary files. Idempotent."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        shutil.rmtree(self._base, ignore_errors=True)
        if not self._own_run_dir:
            for stale in (_SOCKET_NAME, "pcscd.pid"):
                with contextlib.suppress(OSError):
                    (self.run_dir / stale).unlink()

    def __enter__(self) -> PrivatePcscd:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _used_ports(self) -> set[int]:
        return {p for s in self._slots.values() for p in (s.port, s.port + 1)}

    def _write_conf(self) -> None:
        if self.conf_dir.exists():
            shutil.rmtree(self.conf_dir)
        self.conf_dir.mkdir(parents=True)
        drivers = self._base / "drivers"
        drivers.mkdir(exist_ok=True)
        for i, name in enumerate(self._active):
            # ifd-vpcd keeps its sockets in per-library static state indexed by slot, so two
            # entries sharing one LIBPATH (pcscd loads it once) talk over the same socket: each
            # entry gets its own copy of the driver, which dlopen loads as a separate object.
            slot = self._slots[name]
            driver = drivers / f"libifdvpcd-{slot.port}.so"
            if not driver.exists():
                shutil.copyfile(VPCD_DRIVER, driver)
            (self.conf_dir / f"{i:02d}-vpcd").write_text(slot.conf_entry(str(driver)))

    def _wait_socket(self) -> None:
        """Wait until pcscd accepts connections on its socket (it loads readers before)."""
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PcscUnavailable(
                    f"private pcscd exited with {self._proc.returncode}: {self.log_tail(800)}"
                )
            if os.path.exists(self.socket_path):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    try:
                        s.connect(self.socket_path)
                    except OSError:
                        pass
                    else:
                        return
            time.sleep(0.02)
        self.stop(kill=True)
        raise PcscUnavailable(f"private pcscd did not start within {_START_TIMEOUT_S:.0f} s")
