"""The sd_notify protocol: readiness, status, stopping and the watchdog, for ``Type=notify``.

The protocol (sd_notify(3)) is one datagram of ``KEY=value`` lines to the ``AF_UNIX`` socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` is Linux's abstract namespace). Written here in a
few lines rather than taken from a library: ``sdnotify`` was last released in 2017 and
``systemd-python`` is a C extension needing libsystemd headers.

* ``READY=1`` once every listener is bound and the journal is open (``daemon.api.run``);
  missing hardware is not a reason to fail the start, it shows in ``STATUS=`` and health.
* ``STATUS=`` one line, e.g. ``2 reader(s), 1/1 printer(s) up, 1/1 scanner(s) up``.
* ``STOPPING=1`` when a signal starts the shutdown.
* ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2``, but only while the station says every reader
  worker, printer thread and scanner thread is alive (:meth:`Station.health`): a wedged worker
  stops the pings, and systemd (``WatchdogSec=``, ``Restart=on-failure``) restarts the daemon.

Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Final

__all__ = ["MIN_STALE_S", "Notifier"]

logger = logging.getLogger(__name__)

#: a reader worker whose heartbeat job has waited this long at least counts as wedged
MIN_STALE_S: Final = 1.0


class Notifier:
    """sd_notify to ``$NOTIFY_SOCKET`` (read once, from ``environ``)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + path[1:] if path.startswith("@") else path) or None
        self.watchdog_s: float | None = _watchdog_interval(env)
        self.pings = 0
        self._status: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of ``fields`` (``KEY=value``); False if not under systemd or it failed."""
        if self.address is None:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
            except OSError as exc:
                logger.warning("sd_notify %s failed: %s", fields[0].split("=", 1)[0], exc)
                return False
        return True

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, status: str) -> None:
        """``STATUS=`` when it changed."""
        if status != self._status:
            self._status = status
            self.send(f"STATUS={_one_line(status)}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    @property
    def stale_after_s(self) -> float:
        """How long a worker may leave its heartbeat waiting before it counts as wedged."""
        return max(self.watchdog_s or 0.0, MIN_STALE_S)

    async def keep_alive(self, problems: Callable[[float], Sequence[str]]) -> None:
        """Ping the watchdog every ``WATCHDOG_USEC / 2`` while ``problems(stale_after_s)`` is
        empty; log (once per change) and skip the ping while it names something wedged or
        dead. Runs until cancelled; returns at once when systemd asked for no watchdog."""
        if self.watchdog_s is None or self.address is None:
            return
        reported: tuple[str, ...] = ()
        while True:
            found = tuple(problems(self.stale_after_s))
            if not found:
                if reported:
                    logger.warning("watchdog: every worker is alive again, pinging")
                if self.send("WATCHDOG=1"):
                    self.pings += 1
            elif found != reported:
                logger.error("watchdog: not pinging systemd: %s", "; ".join(found))
                self.send(f"STATUS=unhealthy: {_one_line('; '.join(found))}")
                self._status = None
            reported = found
            await asyncio.sleep(self.watchdog_s)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, when it is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # set for another process (we were exec'd by a wrapper)
    return int(usec) / 2 / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())
