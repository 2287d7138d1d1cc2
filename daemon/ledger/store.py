"""One store PC's part of the chain ledger: outbox, shipper and online check, started and
stopped together by the station (``[ledger]`` configured) or by a test, demo or benchmark."""

from __future__ import annotations

import logging
from typing import Self

from daemon.journal import Journal
from daemon.ledger.link import LedgerLink
from daemon.ledger.online import OnlineCheck
from daemon.ledger.outbox import Outbox
from daemon.ledger.settings import LedgerConfig, read_conninfo
from daemon.ledger.shipper import Shipper

__all__ = ["StoreLedger"]

logger = logging.getLogger(__name__)


class StoreLedger:
    """``StoreLedger(config, journal).start()``; ``check`` goes to the member card service."""

    def __init__(self, config: LedgerConfig, journal: Journal, conninfo: str | None = None) -> None:
        self.config = config
        self.outbox = Outbox(journal)
        try:
            self.link = LedgerLink(
                conninfo if conninfo is not None else read_conninfo(config),
                reconnect_timeout_s=min(300.0, max(1.0, config.backoff_max_ms / 1000)),
            )
        except BaseException:
            self.outbox.close()
            raise
        self.shipper = Shipper(config, self.outbox, self.link, journal)
        self.check = OnlineCheck(config, self.link, self.outbox, journal)
        self._closed = False

    def start(self) -> Self:
        self.shipper.start()
        logger.info(
            "ledger: store %s terminal %s, mode %s, floor limit %d fen, %d row(s) to ship",
            self.config.store, self.config.terminal, self.config.mode, self.config.floor_limit,
            self.outbox.backlog(),
        )  # fmt: skip
        return self

    def close(self) -> None:
        """Stop shipping (what is left stays in the outbox for the next start)."""
        if self._closed:
            return
        self._closed = True
        self.shipper.close()
        self.check.close()
        self.link.close()
        self.outbox.close()
